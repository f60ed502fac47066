/**
 * The Node file helper for sendFile: `fs.createReadStream` goes in without a
 * cast under strict TypeScript (this file is typechecked), the bytes come out
 * whole and in order as plain Uint8Arrays, and a missing path or a folder is
 * the file system's error before any upload.
 */
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileFromPath, fileFromStream } from '../src/node.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-nodefile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    expect(value).toBeInstanceOf(Uint8Array);
    parts.push(value);
  }
  return Buffer.concat(parts);
}

describe('Node files for sendFile', () => {
  const bytes = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff);
  const path = join(dir, 'clip.MP4');
  writeFileSync(path, bytes);

  it('fileFromPath: size, name, media type and every byte', async () => {
    const file = await fileFromPath(path);
    expect(file).toMatchObject({ size: bytes.length, fileName: 'clip.MP4', contentType: 'video/mp4' });
    expect(Buffer.from(await readAll(file.stream)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('fileFromStream takes fs.createReadStream as it is', async () => {
    const file = fileFromStream(createReadStream(path, { highWaterMark: 1000 }), bytes.length, { fileName: 'a.png' });
    expect(file.contentType).toBe('image/png');
    expect(Buffer.from(await readAll(file.stream)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('a missing path or a folder fails before any upload', async () => {
    await expect(fileFromPath(join(dir, 'nope.mp4'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fileFromPath(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });
});
