/**
 * test-vectors/attachments.json (spec/11-attachments.md): the file is
 * regenerated and compared byte for byte, then every case is checked against
 * the implementation with both backends: valid blobs re-encrypt to the same
 * bytes and decrypt (in memory, streaming, by range); invalid blobs fail with
 * the stated code and reason on every path; pointers decode, re-encode or
 * fail as stated; seek ranges map to the stated ciphertext ranges.
 */
import { readFileSync } from 'node:fs';
import { type CryptoBackend, cryptoProvider, fromHex, nobleBackend, toHex } from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import { describe, expect, it } from 'vitest';
import { VECTOR_FILE, buildAttachmentVectors, scriptedProvider } from '../scripts/attachment-vectors.ts';
import {
  AttachmentError,
  type AttachmentKeyInfo,
  AttachmentReader,
  ciphertextRangeFor,
  decodeAttachmentPointer,
  decryptAttachment,
  decryptAttachmentStream,
  decryptRange,
  encodeAttachmentPointer,
  encryptAttachment,
} from '../src/attachments/index.ts';
import { readAll, streamOf } from './support/streams.ts';

interface Failure {
  error: string;
  reason: string;
  chunk?: number;
}
interface KeyInfoJson {
  key: string;
  digest: string;
  plaintextSize: number;
  ciphertextSize: number;
  chunkSize: number;
}
interface Case extends Partial<KeyInfoJson>, Partial<Failure> {
  tcId: number;
  comment: string;
  result: 'valid' | 'invalid';
  [field: string]: unknown;
}
interface Group {
  type: string;
  tests: Case[];
}

const text = readFileSync(VECTOR_FILE, 'utf8');
const file = JSON.parse(text) as { numberOfTests: number; testGroups: Group[] };
const group = (type: string): Case[] => {
  const g = file.testGroups.find((x) => x.type === type);
  if (!g) throw new Error(`no group ${type}`);
  return g.tests;
};
const BACKENDS: readonly CryptoBackend[] = [nobleBackend, nodeBackend];

function keyInfo(c: Case): AttachmentKeyInfo {
  return {
    key: fromHex(c.key as string),
    digest: fromHex(c.digest as string),
    plaintextSize: c.plaintextSize as number,
    ciphertextSize: c.ciphertextSize as number,
    chunkSize: c.chunkSize as number,
  };
}

function expectFailure(e: unknown, f: Failure, where: string): void {
  expect(e, where).toBeInstanceOf(AttachmentError);
  const err = e as AttachmentError;
  // Only chunk-auth failures name a chunk in the vectors; others may add details of their own.
  const chunk = f.reason === 'chunk-auth' ? err.details.chunk : undefined;
  expect({ code: err.code, reason: err.reason, chunk }, where).toEqual({ code: f.error, reason: f.reason, chunk: f.chunk });
}

/** A seeking reader reading every chunk, one range request per chunk. */
async function readEveryChunk(info: AttachmentKeyInfo, blob: Uint8Array, backend: CryptoBackend): Promise<void> {
  const fetch = async (start: number, end: number) => blob.slice(start, end);
  const reader = await AttachmentReader.open(info, fetch, { provider: cryptoProvider(backend) });
  try {
    const chunks = Math.max(1, Math.ceil(info.plaintextSize / info.chunkSize));
    for (let i = 0; i < chunks; i++) await reader.readChunks(i, i);
  } finally {
    reader.close();
  }
}

describe('attachment vectors', () => {
  it('the file is exactly what the generator writes', () => {
    expect(buildAttachmentVectors()).toBe(text);
    const counted = file.testGroups.reduce((n, g) => n + g.tests.length, 0);
    expect(file.numberOfTests).toBe(counted);
    expect(counted).toBe(71);
  });

  for (const backend of BACKENDS) {
    const provider = cryptoProvider(backend);

    it(`valid attachments re-encrypt byte for byte and decrypt on every path (${backend.name})`, async () => {
      const cases = group('AttachmentEncryption');
      expect(cases.length).toBe(8);
      for (const c of cases) {
        const plaintext = fromHex(c.plaintext as string);
        const expected = fromHex(c.ciphertext as string);
        const { ciphertext, info } = encryptAttachment(plaintext, {
          provider: scriptedProvider(backend, fromHex(c.key as string), fromHex(c.salt as string)),
          chunkSize: c.chunkSize as number,
        });
        expect(toHex(ciphertext), c.comment).toBe(c.ciphertext);
        expect(toHex(info.digest), c.comment).toBe(c.digest);
        expect([info.plaintextSize, info.ciphertextSize, info.chunkSize]).toEqual([c.plaintextSize, c.ciphertextSize, c.chunkSize]);
        const chunks = c.chunks as { sealed: string }[];
        expect(toHex(ciphertext.subarray(56)), c.comment).toBe(chunks.map((x) => x.sealed).join(''));
        expect(toHex(ciphertext.subarray(0, 24))).toBe(c.headerPrefix);
        expect(toHex(ciphertext.subarray(24, 56))).toBe(c.commitment);

        const k = keyInfo(c);
        expect(toHex(decryptAttachment(expected, k, { provider })), c.comment).toBe(c.plaintext);
        expect(toHex(await readAll(decryptAttachmentStream(streamOf(expected, [5]), k, { provider }))), c.comment).toBe(c.plaintext);
        const fetch = async (s: number, e: number) => expected.slice(s, e);
        expect(toHex(await decryptRange(k, fetch, 0, k.plaintextSize, { provider })), c.comment).toBe(c.plaintext);
      }
    });

    it(`invalid blobs fail with the stated code and reason on every path (${backend.name})`, async () => {
      const cases = group('AttachmentDecryption');
      expect(cases.length).toBe(26);
      for (const c of cases) {
        const where = `tcId ${c.tcId}: ${c.comment}`;
        const blob = fromHex(c.ciphertext as string);
        const info = keyInfo(c);
        const whole = { error: c.error as string, reason: c.reason as string, chunk: c.chunk };
        let memory: unknown;
        try {
          decryptAttachment(blob, info, { provider });
        } catch (e) {
          memory = e;
        }
        expectFailure(memory, whole, `${where} (in memory)`);
        for (const piece of [1, 16, 1000]) {
          const streamed = await readAll(decryptAttachmentStream(streamOf(blob, [piece]), info, { provider })).then(
            () => undefined,
            (e: unknown) => e,
          );
          expectFailure(streamed, whole, `${where} (streaming, ${piece}-byte pieces)`);
        }
        const seek = c.seek as Failure | null;
        const seeking = await readEveryChunk(info, blob, backend).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (seek === null) expect(seeking, `${where} (seeking)`).toBeUndefined();
        else expectFailure(seeking, seek, `${where} (seeking)`);
      }
    });
  }

  it('pointers decode and re-encode, or fail, as stated', () => {
    const cases = group('AttachmentPointer');
    expect(cases.length).toBe(30);
    for (const c of cases) {
      const where = `tcId ${c.tcId}: ${c.comment}`;
      const bytes = fromHex(c.encoding as string);
      if (c.result === 'valid') {
        const p = decodeAttachmentPointer(bytes);
        const want = c.pointer as KeyInfoJson & { id: string; contentType: string | null; fileName: string | null };
        expect(
          { ...p, key: toHex(p.key), digest: toHex(p.digest), contentType: p.contentType ?? null, fileName: p.fileName ?? null },
          where,
        ).toEqual(want);
        expect(toHex(encodeAttachmentPointer(p)), where).toBe(c.encoding);
      } else {
        let error: unknown;
        try {
          decodeAttachmentPointer(bytes);
        } catch (e) {
          error = e;
        }
        expectFailure(error, { error: c.error as string, reason: 'bad-pointer' }, where);
      }
    }
  });

  it('seek ranges map to the stated chunks and ciphertext ranges and decrypt to the stated bytes', async () => {
    const cases = group('AttachmentSeek');
    expect(cases.length).toBe(7);
    for (const c of cases) {
      const info = keyInfo(c);
      const start = c.start as number;
      const end = c.end as number;
      const span = ciphertextRangeFor(info, start, end);
      expect(span, c.comment).toEqual({ firstChunk: c.firstChunk, lastChunk: c.lastChunk, start: c.ciphertextStart, end: c.ciphertextEnd });
      const blob = fromHex(c.ciphertext as string);
      const asked: [number, number][] = [];
      const fetch = async (s: number, e: number) => {
        asked.push([s, e]);
        return blob.slice(s, e);
      };
      expect(toHex(await decryptRange(info, fetch, start, end, { provider: cryptoProvider(nodeBackend) })), c.comment).toBe(c.plaintext);
      if (end > start) expect(asked.at(-1), c.comment).toEqual([c.ciphertextStart, c.ciphertextEnd]);
    }
  });
});
