// The PQ chunk erasure code (spec/design/erasure-code.md): the design's
// reference values, test-vectors/pq-chunks.json, "any k of 255 decode", and
// typed refusals.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import { ParleyError } from '../src/errors.ts';
import {
  PQ_CHUNK_BYTES,
  PQ_MAX_PAYLOAD_BYTES,
  dataChunkCount,
  decodeChunks,
  encodeChunk,
  encodeChunks,
  gfInv,
  gfMul,
} from '../src/pq/erasure.ts';
import { PQ_CHUNKS_FILE, buildPqChunks } from './support/pq-chunks-vectors.ts';

const TEXT = readFileSync(PQ_CHUNKS_FILE, 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
const VECTORS: any = JSON.parse(TEXT);
// biome-ignore lint/suspicious/noExplicitAny: as above.
const group = (type: string): any[] => VECTORS.testGroups.find((g: { type: string }) => g.type === type).tests;
const ALL = Array.from({ length: 255 }, (_, i) => i);

function refusal(f: () => unknown): { code: string; reason: unknown } {
  try {
    f();
  } catch (e) {
    if (e instanceof ParleyError) return { code: e.code, reason: e.details.reason };
    throw e;
  }
  return { code: 'no error', reason: undefined };
}

describe('GF(2^8) and the reference values of erasure-code.md', () => {
  it('multiplies and inverts as §1 states', () => {
    expect(gfMul(0x80, 0x02)).toBe(0x1d);
    expect(gfInv(0x02)).toBe(0x8e);
    expect(gfMul(0x53, 0xca)).toBe(0x8f);
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
  });

  it('gives the §3 table for payload 00..9f', () => {
    const p = Uint8Array.from({ length: 160 }, (_, i) => i);
    const table: [number, string, string][] = [
      [0, '0001020304050607', 'fdeab9acf3710362'],
      [2, '8081828384858687', 'e1b9ba978b175b10'],
      [3, 'c0c1c2c3c4c5c6c7', 'd8d770023fd9c854'],
      [4, '1d1c1f1e19181b1a', '2414e02774d8d778'],
      [254, '7170737275747776', '7e27b486fec0806d'],
    ];
    for (const [i, head, hash] of table) {
      const c = encodeChunk(p, i);
      expect(toHex(c.subarray(0, 8))).toBe(head);
      expect(createHash('sha256').update(c).digest('hex').slice(0, 16)).toBe(hash);
    }
  });
});

describe('test-vectors/pq-chunks.json', () => {
  it('equals the generator output byte for byte', () => {
    expect(TEXT === buildPqChunks()).toBe(true);
  });

  const encodeTests = new Map(group('ErasureEncode').map((t) => [t.tcId, t]));

  for (const t of group('ErasureEncode')) {
    it(`encode ${t.tcId}: ${t.comment}`, () => {
      expect(dataChunkCount(t.length)).toBe(t.k);
      expect(encodeChunks(fromHex(t.payload), ALL).map(toHex)).toEqual(t.chunks);
    });
  }

  for (const t of group('ErasureDecode')) {
    it(`decode ${t.tcId}: ${t.comment}`, () => {
      const e = encodeTests.get(t.payloadTcId);
      const chunks = t.indices.map((index: number) => ({ index, bytes: fromHex(e.chunks[index]) }));
      expect(toHex(decodeChunks(chunks, e.length))).toBe(e.payload);
    });
  }

  for (const t of group('ErasureDecodeInvalid')) {
    it(`refuse ${t.tcId}: ${t.comment}`, () => {
      const chunks = t.chunks.map((c: { index: number; bytes: string }) => ({ index: c.index, bytes: fromHex(c.bytes) }));
      expect(refusal(() => decodeChunks(chunks, t.length))).toEqual({ code: t.error, reason: t.reason });
    });
  }
});

describe('erasure code properties', () => {
  const payload = fc.uint8Array({ minLength: 1, maxLength: 1184 });

  it('any k distinct chunks of 255 decode to the payload, in any order', () => {
    fc.assert(
      fc.property(payload, fc.infiniteStream(fc.nat()), fc.nat(4), (p, stream, extra) => {
        const k = dataChunkCount(p.length);
        const order = [...ALL];
        const it = stream[Symbol.iterator]();
        for (let i = order.length - 1; i > 0; i--) {
          const j = (it.next().value as number) % (i + 1);
          [order[i], order[j]] = [order[j] as number, order[i] as number];
        }
        const chosen = order.slice(0, k + extra);
        const bytes = encodeChunks(p, chosen);
        const decoded = decodeChunks(
          chosen.map((index, n) => ({ index, bytes: bytes[n] as Uint8Array })),
          p.length,
        );
        expect(toHex(decoded)).toBe(toHex(p));
      }),
      { numRuns: 40 },
    );
  });

  it('refuses k - 1 chunks, a repeated index and a wrong-length chunk with PQ_CHUNK_INVALID', () => {
    fc.assert(
      fc.property(payload, fc.nat(254), fc.nat(PQ_CHUNK_BYTES * 2), (p, start, badLen) => {
        fc.pre(badLen !== PQ_CHUNK_BYTES);
        const k = dataChunkCount(p.length);
        const indices = Array.from({ length: k }, (_, n) => (start + n) % 255);
        const chunks = encodeChunks(p, indices).map((bytes, n) => ({ index: indices[n] as number, bytes }));
        expect(refusal(() => decodeChunks(chunks.slice(1), p.length))).toEqual({ code: 'PQ_CHUNK_INVALID', reason: 'too_few' });
        expect(refusal(() => decodeChunks([...chunks, chunks[0] as (typeof chunks)[0]], p.length)).code).toBe('PQ_CHUNK_INVALID');
        const wrong = [...chunks];
        wrong[wrong.length - 1] = { index: indices[k - 1] as number, bytes: new Uint8Array(badLen) };
        expect(refusal(() => decodeChunks(wrong, p.length))).toEqual({ code: 'PQ_CHUNK_INVALID', reason: 'length' });
      }),
      { numRuns: 40 },
    );
  });

  it('bounds the payload and the indices of the encoder (caller misuse is a RangeError)', () => {
    expect(() => dataChunkCount(0)).toThrow(RangeError);
    expect(() => dataChunkCount(PQ_MAX_PAYLOAD_BYTES + 1)).toThrow(RangeError);
    expect(dataChunkCount(PQ_MAX_PAYLOAD_BYTES)).toBe(32);
    expect(() => encodeChunk(new Uint8Array(10), 255)).toThrow(RangeError);
    expect(() => encodeChunk(new Uint8Array(0), 0)).toThrow(RangeError);
    expect(
      refusal(() =>
        decodeChunks(
          ALL.concat(0).map((index) => ({ index, bytes: new Uint8Array(64) })),
          64,
        ),
      ).reason,
    ).toBe('too_many');
  });
});
