/**
 * What every BlobStore keeps (src/attachments/blob-store.ts), run against
 * each implementation: files (blob-store.test.ts) and PostgreSQL.
 */
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../src/attachments/blob-store.ts';

export interface BlobStoreHarness {
  readonly store: BlobStore;
  close(): Promise<void>;
}

let counter = 0;
/** A fresh valid id (22 base64url characters). */
export function blobId(): string {
  counter += 1;
  return `${Date.now().toString(36)}${counter.toString(36)}`.padEnd(22, 'A').slice(0, 22);
}

function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function* failingAfter(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
  throw new Error('connection dropped');
}

async function readAll(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return new Uint8Array(Buffer.concat(chunks));
}

export function describeBlobStoreContract(name: string, open: () => Promise<BlobStoreHarness>): void {
  describe(`BlobStore contract: ${name}`, () => {
    async function withStore(fn: (store: BlobStore) => Promise<void>): Promise<void> {
      const harness = await open();
      try {
        await fn(harness.store);
      } finally {
        await harness.close();
      }
    }

    it('a created blob is empty; the same id cannot be created twice', () =>
      withStore(async (store) => {
        const id = blobId();
        expect(await store.size(id)).toBeUndefined();
        await store.create(id);
        expect(await store.size(id)).toBe(0);
        await expect(store.create(id)).rejects.toThrow();
      }));

    it('appends in several calls and serves any range, across internal chunk boundaries', () =>
      withStore(async (store) => {
        const id = blobId();
        const data = pattern(2 * 1024 * 1024 + 12_345);
        await store.create(id);
        const first = await store.append(id, 0, pieces(data.subarray(0, 1_500_000), 64 * 1024), 16 * 1024 * 1024);
        expect(first).toEqual({ written: 1_500_000, overflow: false });
        const second = await store.append(id, 1_500_000, pieces(data.subarray(1_500_000), 100_000), 16 * 1024 * 1024);
        expect(second.written).toBe(data.length - 1_500_000);
        expect(await store.size(id)).toBe(data.length);
        // Buffer.equals: a deep equality over two million elements would take seconds.
        expect(Buffer.from(await readAll(store.read(id, 0, data.length - 1))).equals(data)).toBe(true);
        for (const [start, end] of [
          [0, 0],
          [1_048_570, 1_048_580],
          [1_499_990, 2_000_000],
          [data.length - 1, data.length - 1],
        ] as const) {
          const range = Buffer.from(await readAll(store.read(id, start, end)));
          expect(range.equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true);
        }
      }));

    it('an append at an offset drops what was stored past it first (a resumed upload)', () =>
      withStore(async (store) => {
        const id = blobId();
        await store.create(id);
        await store.append(id, 0, pieces(pattern(3000, 1), 1000), 10_000);
        await store.append(id, 1500, pieces(pattern(700, 2), 1000), 10_000);
        expect(await store.size(id)).toBe(2200);
        const expected = new Uint8Array(2200);
        expected.set(pattern(3000, 1).subarray(0, 1500));
        expected.set(pattern(700, 2), 1500);
        expect(await readAll(store.read(id, 0, 2199))).toEqual(expected);
      }));

    it('stops at maxBytes and reports the overflow', () =>
      withStore(async (store) => {
        const id = blobId();
        await store.create(id);
        const outcome = await store.append(id, 0, pieces(pattern(5000), 1024), 3000);
        expect(outcome).toEqual({ written: 3000, overflow: true });
        expect(await store.size(id)).toBe(3000);
      }));

    it('keeps the bytes that arrived before a source failed, and reports the failure', () =>
      withStore(async (store) => {
        const id = blobId();
        await store.create(id);
        const outcome = await store.append(id, 0, failingAfter(pattern(1234)), 10_000);
        expect(outcome.written).toBe(1234);
        expect((outcome.error as Error).message).toBe('connection dropped');
        expect(await store.size(id)).toBe(1234);
        expect(await readAll(store.read(id, 0, 1233))).toEqual(pattern(1234));
      }));

    it('an append to an unknown id fails; remove deletes, and removing twice is fine', () =>
      withStore(async (store) => {
        const id = blobId();
        await expect(store.append(id, 0, pieces(pattern(10), 10), 100)).rejects.toThrow();
        await store.create(id);
        await store.append(id, 0, pieces(pattern(10), 10), 100);
        await store.remove(id);
        expect(await store.size(id)).toBeUndefined();
        await store.remove(id);
      }));

    it('refuses anything but an attachment id (no path can be named)', () =>
      withStore(async (store) => {
        for (const bad of ['../../etc/passwd', '', 'short', 'x'.repeat(23), 'abcdefghijklmnopqrstu/']) {
          await expect(store.create(bad)).rejects.toThrow(RangeError);
          await expect(store.size(bad)).rejects.toThrow(RangeError);
          expect(() => store.read(bad, 0, 1)).toThrow(RangeError);
        }
      }));
  });
}
