/**
 * `AttachmentFiles` on a Node folder: where the CLI (and any Node app)
 * saves received attachments. spec/10-client.md §7.4.
 *
 * A file is written under `<name>.part` and renamed only once its stream
 * closed (every chunk and the whole-blob digest verified). Removing
 * overwrites the bytes with zeros and syncs before unlinking: on a
 * copy-on-write or wear-levelled disk the old blocks may survive anyway
 * (only full-disk encryption covers that), but the file's name and bytes
 * are gone from the file system and from a plain copy of the folder.
 */
import { once } from 'node:events';
import { closeSync, createWriteStream, fstatSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { AttachmentFiles } from './downloads.ts';

/** Attempts at a free name ("clip (1).mp4", "clip (2).mp4", ...) before giving up. */
const MAX_NAME_ATTEMPTS = 1000;
/** Zeros written per call when destroying a file. */
const WIPE_CHUNK = 1 << 16;

export class DownloadFolder implements AttachmentFiles {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async reserve(name: string): Promise<string> {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    // The name is the sender's: keep only a base name, never "." or "..".
    const base = basename(name).replace(/^\.+$/, '') || 'attachment';
    const ext = extname(base);
    for (let i = 0; i < MAX_NAME_ATTEMPTS; i++) {
      const path = join(this.#dir, i === 0 ? base : `${basename(base, ext)} (${i})${ext}`);
      try {
        // 'wx' claims the name atomically: two downloads never pick the same one.
        closeSync(openSync(path, 'wx', 0o600));
        return path;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
    throw new Error(`no free file name after ${MAX_NAME_ATTEMPTS} attempts`);
  }

  async write(location: string, data: ReadableStream<Uint8Array>): Promise<void> {
    const partial = `${location}.part`;
    const out = createWriteStream(partial, { mode: 0o600 });
    try {
      const reader = data.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!out.write(value)) await once(out, 'drain');
      }
      out.end();
      await once(out, 'finish');
      renameSync(partial, location);
    } catch (e) {
      out.destroy();
      await this.remove(location);
      throw e;
    }
  }

  async remove(location: string): Promise<void> {
    for (const path of [`${location}.part`, location]) destroy(path);
  }
}

/** Overwrites a file with zeros, syncs, and unlinks it. An absent file is fine. */
function destroy(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    const size = fstatSync(fd).size;
    const zeros = new Uint8Array(Math.min(WIPE_CHUNK, size));
    for (let at = 0; at < size; at += zeros.length) writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  unlinkSync(path);
}
