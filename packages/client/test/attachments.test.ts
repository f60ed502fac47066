/**
 * Encrypted attachments (spec/11-attachments.md): round trips across chunk
 * boundaries, streaming without holding the input, seeking, every kind of
 * tampering, backend parity, the pointer codec, and secret hygiene.
 * Byte-exact behaviour is pinned separately by attachments-vectors.test.ts.
 */
import { inspect } from 'node:util';
import { type CryptoBackend, ParleyError, cryptoProvider, encodeCbor, isParleyError, nobleBackend, toHex } from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import { deterministicProvider } from '@parley/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AttachmentError,
  type AttachmentFailure,
  type AttachmentKeyInfo,
  type AttachmentPointer,
  AttachmentReader,
  DEFAULT_CHUNK_SIZE,
  HEADER_BYTES,
  MAX_POINTER_BYTES,
  TAG_BYTES,
  ciphertextRangeFor,
  decodeAttachmentPointer,
  decryptAttachment,
  decryptAttachmentStream,
  decryptRange,
  encodeAttachmentPointer,
  encryptAttachment,
  encryptAttachmentStream,
  layoutOf,
} from '../src/attachments/index.ts';
import { readAll, streamOf } from './support/streams.ts';

const BACKENDS: readonly CryptoBackend[] = [nobleBackend, nodeBackend];
const node = cryptoProvider(nodeBackend);

// ---- helpers ----------------------------------------------------------------

/** A stream of `bytes` in pieces of the given sizes (cycled), created lazily as the consumer pulls. */
/** Reads a stream to its end, returning what it emitted and how it ended. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<{ emitted: Uint8Array; error: unknown }> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { emitted: new Uint8Array(Buffer.concat(parts)), error: undefined };
      parts.push(value);
    }
  } catch (error) {
    return { emitted: new Uint8Array(Buffer.concat(parts)), error };
  }
}

function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function expectFailure(error: unknown, reason: AttachmentFailure, code?: string): AttachmentError {
  expect(error).toBeInstanceOf(AttachmentError);
  expect(isParleyError(error)).toBe(true);
  const e = error as AttachmentError;
  expect(e.reason).toBe(reason);
  expect(e.details.reason).toBe(reason);
  if (code !== undefined) expect(e.code).toBe(code);
  return e;
}

function failureOf(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a failure');
}

async function streamFailure(
  ciphertext: Uint8Array,
  info: AttachmentKeyInfo,
  pieces: readonly number[] = [7],
): Promise<{ emitted: Uint8Array; error: unknown }> {
  return drain(decryptAttachmentStream(streamOf(ciphertext, pieces), info, { provider: node }));
}

const fetcher = (blob: Uint8Array, log?: [number, number][]) => async (start: number, end: number) => {
  log?.push([start, end]);
  return blob.slice(start, end);
};

// ---- round trips ----------------------------------------------------------

describe('attachment round trips', () => {
  it.each(BACKENDS.map((b) => [b.name, b] as const))(
    'sizes around every chunk boundary round-trip in memory and streaming (%s)',
    async (_, backend) => {
      const provider = cryptoProvider(backend);
      const C = 32;
      for (const size of [0, 1, C - 1, C, C + 1, 2 * C - 1, 2 * C, 2 * C + 1, 5 * C]) {
        const plaintext = pattern(size, size + 1);
        const { ciphertext, info } = encryptAttachment(plaintext, { provider, chunkSize: C });
        const chunks = Math.max(1, Math.ceil(size / C));
        expect(info).toMatchObject({ plaintextSize: size, chunkSize: C, ciphertextSize: HEADER_BYTES + size + chunks * TAG_BYTES });
        expect(ciphertext.length).toBe(info.ciphertextSize);
        expect(toHex(info.digest)).toBe(toHex(backend.sha256(ciphertext)));
        expect(toHex(decryptAttachment(ciphertext, info, { provider }))).toBe(toHex(plaintext));
        expect(toHex(await readAll(decryptAttachmentStream(streamOf(ciphertext, [5, 64, 1]), info, { provider })))).toBe(toHex(plaintext));
      }
    },
  );

  it('random sizes and piece boundaries: streaming and in-memory encryption agree byte for byte, and either decrypts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 600 }),
        fc.constantFrom(16, 32, 64, 256),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.integer(),
        async (size, chunkSize, inPieces, outPieces, seed) => {
          const plaintext = pattern(size, seed);
          const memory = encryptAttachment(plaintext, { provider: deterministicProvider(nodeBackend, `rt${seed}`), chunkSize });
          const streamed = encryptAttachmentStream(streamOf(plaintext, inPieces), {
            provider: deterministicProvider(nodeBackend, `rt${seed}`),
            chunkSize,
          });
          const ciphertext = await readAll(streamed.ciphertext);
          const info = await streamed.info;
          expect(toHex(ciphertext)).toBe(toHex(memory.ciphertext));
          expect({ ...info, key: toHex(info.key), digest: toHex(info.digest) }).toEqual({
            ...memory.info,
            key: toHex(memory.info.key),
            digest: toHex(memory.info.digest),
          });
          expect(toHex(decryptAttachment(ciphertext, info, { provider: node }))).toBe(toHex(plaintext));
          expect(toHex(await readAll(decryptAttachmentStream(streamOf(ciphertext, outPieces), info, { provider: node })))).toBe(
            toHex(plaintext),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('uses 64 KiB chunks by default and a fresh key and salt for every attachment', () => {
    const plaintext = pattern(100_000);
    const a = encryptAttachment(plaintext);
    const b = encryptAttachment(plaintext);
    expect(a.info.chunkSize).toBe(DEFAULT_CHUNK_SIZE);
    expect(a.ciphertext[7]).toBe(16); // the chunk-size exponent byte
    expect(toHex(a.info.key)).not.toBe(toHex(b.info.key));
    expect(toHex(a.ciphertext.subarray(8, 24))).not.toBe(toHex(b.ciphertext.subarray(8, 24)));
    expect(toHex(a.ciphertext.subarray(HEADER_BYTES, HEADER_BYTES + 64))).not.toBe(
      toHex(b.ciphertext.subarray(HEADER_BYTES, HEADER_BYTES + 64)),
    );
  });

  it('the noble and node backends produce identical ciphertexts and decrypt each other', async () => {
    const plaintext = pattern(5000, 9);
    const [n, o] = BACKENDS.map((backend) =>
      encryptAttachment(plaintext, { provider: deterministicProvider(backend, 'parity'), chunkSize: 256 }),
    ) as [ReturnType<typeof encryptAttachment>, ReturnType<typeof encryptAttachment>];
    expect(toHex(n.ciphertext)).toBe(toHex(o.ciphertext));
    expect(toHex(n.info.digest)).toBe(toHex(o.info.digest));
    expect(toHex(decryptAttachment(n.ciphertext, n.info, { provider: cryptoProvider(nodeBackend) }))).toBe(toHex(plaintext));
    expect(toHex(decryptAttachment(o.ciphertext, o.info, { provider: cryptoProvider(nobleBackend) }))).toBe(toHex(plaintext));
    // The streaming digest (noble's incremental SHA-256) equals both backends' one-shot digest.
    const streamed = encryptAttachmentStream(streamOf(plaintext, [333]), {
      provider: deterministicProvider(nodeBackend, 'parity'),
      chunkSize: 256,
    });
    await readAll(streamed.ciphertext);
    expect(toHex((await streamed.info).digest)).toBe(toHex(nobleBackend.sha256(o.ciphertext)));
    expect(toHex((await streamed.info).digest)).toBe(toHex(nodeBackend.sha256(o.ciphertext)));
  });

  it('refuses misuse with TypeError / RangeError', () => {
    expect(() => encryptAttachment(pattern(10), { chunkSize: 1000 })).toThrow(RangeError);
    expect(() => encryptAttachment(pattern(10), { chunkSize: 8 })).toThrow(RangeError);
    expect(() => encryptAttachment(pattern(10), { chunkSize: 1 << 23 })).toThrow(RangeError);
    expect(() => encryptAttachment('text' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => encryptAttachmentStream(streamOf(pattern(10)), { chunkSize: 48 })).toThrow(RangeError);
    const { ciphertext, info } = encryptAttachment(pattern(10), { provider: node });
    expect(() => decryptAttachment(ciphertext, { ...info, key: 'k' as unknown as Uint8Array })).toThrow(TypeError);
  });
});

// ---- streaming --------------------------------------------------------------

describe('attachment streaming', () => {
  /** A generator-backed plaintext source of `total` bytes that records how far it has been read. */
  function countingSource(total: number, piece: number) {
    const state = { produced: 0, cancelled: false as unknown };
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (state.produced >= total) return controller.close();
          const n = Math.min(piece, total - state.produced);
          controller.enqueue(pattern(n, state.produced + 1));
          state.produced += n;
        },
        cancel(reason) {
          state.cancelled = reason ?? true;
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, state };
  }

  it('streams 8 MiB through encryption and decryption in small pieces without holding it', async () => {
    const total = 8 * 1024 * 1024 + 12_345;
    const piece = 1000;
    const chunkSize = 16 * 1024;

    // Pass 1: encrypt, keep only the key info; the source may run ahead of the
    // consumer by at most one chunk plus one piece (plus the stream's one queued chunk).
    const first = countingSource(total, piece);
    const enc = encryptAttachmentStream(first.stream, { provider: deterministicProvider(nodeBackend, 'big'), chunkSize });
    const reader = enc.ciphertext.getReader();
    let consumed = 0;
    let maxAhead = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      consumed += value.length;
      maxAhead = Math.max(maxAhead, first.state.produced - consumed);
    }
    const info = await enc.info;
    expect(info.plaintextSize).toBe(total);
    expect(maxAhead).toBeLessThanOrEqual(2 * chunkSize + piece);

    // Pass 2: the same ciphertext again (same key and salt), decrypted as it streams;
    // the plaintext is compared piece by piece with a regenerated source.
    const second = countingSource(total, piece);
    const again = encryptAttachmentStream(second.stream, { provider: deterministicProvider(nodeBackend, 'big'), chunkSize });
    const plain = decryptAttachmentStream(again.ciphertext, info, { provider: node }).getReader();
    const expected = countingSource(total, piece).stream.getReader();
    let pending = new Uint8Array(0);
    let seen = 0;
    for (;;) {
      const { done, value } = await plain.read();
      if (done) break;
      while (pending.length < value.length) {
        const r = await expected.read();
        if (r.done) throw new Error('decrypted more than was encrypted');
        pending = new Uint8Array(Buffer.concat([pending, r.value]));
      }
      expect(Buffer.from(value).equals(Buffer.from(pending.subarray(0, value.length)))).toBe(true);
      pending = pending.subarray(value.length);
      seen += value.length;
    }
    expect(seen).toBe(total);
  });

  it('pulls from the source only as the ciphertext is consumed', async () => {
    const { stream, state } = countingSource(1 << 20, 4096);
    const enc = encryptAttachmentStream(stream, { provider: node, chunkSize: 4096 });
    const reader = enc.ciphertext.getReader();
    await reader.read(); // header
    await reader.read(); // chunk 0
    expect(state.produced).toBeLessThanOrEqual(4 * 4096);
    await reader.cancel('user stopped');
    expect(state.cancelled).toBe('user stopped');
    await expect(enc.info).rejects.toBeDefined();
  });

  it('emits each verified chunk before the rest of the ciphertext has arrived', async () => {
    const plaintext = pattern(100);
    const { ciphertext, info } = encryptAttachment(plaintext, { provider: node, chunkSize: 32 });
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const input = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
    const out = decryptAttachmentStream(input, info, { provider: node }).getReader();
    controller.enqueue(ciphertext.slice(0, HEADER_BYTES + 48)); // header and chunk 0 only
    const { value } = await out.read();
    expect(toHex(value as Uint8Array)).toBe(toHex(plaintext.subarray(0, 32)));
    controller.enqueue(ciphertext.slice(HEADER_BYTES + 48));
    controller.close();
    expect(
      toHex(
        await readAll(
          new ReadableStream({
            pull: async (c) => {
              const r = await out.read();
              r.done ? c.close() : c.enqueue(r.value);
            },
          }),
        ),
      ),
    ).toBe(toHex(plaintext.subarray(32)));
  });

  it('withholds the final chunk when the digest does not match, after emitting the verified ones', async () => {
    const plaintext = pattern(100);
    const { ciphertext, info } = encryptAttachment(plaintext, { provider: node, chunkSize: 32 });
    const digest = info.digest.slice();
    digest[0] = (digest[0] as number) ^ 1;
    const { emitted, error } = await streamFailure(ciphertext, { ...info, digest });
    expectFailure(error, 'digest-mismatch', 'DECRYPT_FAILED');
    expect(toHex(emitted)).toBe(toHex(plaintext.subarray(0, 96)));
  });

  it('a failing source fails the ciphertext stream and the key info with the same error', async () => {
    const boom = new Error('disk read failed');
    let n = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ < 3) c.enqueue(pattern(100, n));
        else c.error(boom);
      },
    });
    const enc = encryptAttachmentStream(source, { provider: node, chunkSize: 64 });
    expect((await drain(enc.ciphertext)).error).toBe(boom);
    await expect(enc.info).rejects.toBe(boom);
  });

  it('a source yielding something other than bytes is a TypeError', async () => {
    const source = new ReadableStream<Uint8Array>({ start: (c) => c.enqueue('text' as unknown as Uint8Array) });
    const enc = encryptAttachmentStream(source, { provider: node });
    expect((await drain(enc.ciphertext)).error).toBeInstanceOf(TypeError);
    await expect(enc.info).rejects.toBeInstanceOf(TypeError);
  });

  it('cancels the ciphertext input when decryption fails, and tolerates empty pieces', async () => {
    const { ciphertext, info } = encryptAttachment(pattern(70), { provider: node, chunkSize: 16 });
    let cancelled: unknown;
    let i = 0;
    const pieces = [new Uint8Array(0), ciphertext, new Uint8Array(0), Uint8Array.of(1), Uint8Array.of(2)];
    const input = new ReadableStream<Uint8Array>({
      pull: (c) => (i < pieces.length ? c.enqueue(pieces[i++] as Uint8Array) : c.close()),
      cancel: (reason) => void (cancelled = reason),
    });
    const { error } = await drain(decryptAttachmentStream(input, info, { provider: node }));
    expectFailure(error, 'trailing-data');
    expect(cancelled).toBe(error);
    // Empty pieces alone do not disturb a valid stream.
    const ok = new ReadableStream<Uint8Array>({
      start(c) {
        for (const p of [new Uint8Array(0), ciphertext.slice(0, 10), new Uint8Array(0), ciphertext.slice(10)]) c.enqueue(p);
        c.close();
      },
    });
    expect((await readAll(decryptAttachmentStream(ok, info, { provider: node }))).length).toBe(70);
  });
});

// ---- seeking -------------------------------------------------------------------

describe('attachment seeking', () => {
  const C = 1024;
  const plaintext = pattern(20 * C + 500, 77);
  const { ciphertext, info } = encryptAttachment(plaintext, { provider: node, chunkSize: C });

  it('decrypts chunks N..M by fetching only the header and those chunks', async () => {
    const log: [number, number][] = [];
    const reader = await AttachmentReader.open(info, fetcher(ciphertext, log), { provider: node });
    const chunks = await reader.readChunks(7, 9);
    reader.close();
    expect(log).toEqual([
      [0, HEADER_BYTES],
      [HEADER_BYTES + 7 * (C + TAG_BYTES), HEADER_BYTES + 10 * (C + TAG_BYTES)],
    ]);
    expect(toHex(new Uint8Array(Buffer.concat(chunks)))).toBe(toHex(plaintext.subarray(7 * C, 10 * C)));
  });

  it('any plaintext range decrypts to the same bytes, from exactly the ciphertext range the layout names', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: plaintext.length }), fc.integer({ min: 0, max: plaintext.length }), async (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const log: [number, number][] = [];
        const bytes = await decryptRange(info, fetcher(ciphertext, log), start, end, { provider: node });
        expect(toHex(bytes)).toBe(toHex(plaintext.subarray(start, end)));
        const span = ciphertextRangeFor(info, start, end);
        expect(span.firstChunk).toBe(Math.min(Math.floor(start / C), 20));
        if (end > start) expect(log.slice(1)).toEqual([[span.start, span.end]]);
        else expect(log.length).toBe(1); // the header only
      }),
      { numRuns: 60 },
    );
  });

  it('a reader stream from a seek position delivers the rest in batches of chunks', async () => {
    const log: [number, number][] = [];
    const reader = await AttachmentReader.open(info, fetcher(ciphertext, log), { provider: node });
    const out = await readAll(reader.stream(5000, plaintext.length, 4));
    reader.close();
    expect(toHex(out)).toBe(toHex(plaintext.subarray(5000)));
    expect(log.length).toBe(1 + Math.ceil((20 - 4 + 1) / 4)); // chunks 4..20, four per request
  });

  it('a relay that serves the wrong bytes is caught chunk by chunk', async () => {
    const offset = (i: number) => HEADER_BYTES + i * (C + TAG_BYTES);
    // Chunk 3 served where chunk 2 was asked for.
    const swapping = async (start: number, end: number) =>
      start === offset(2) ? ciphertext.slice(offset(3), offset(3) + (end - start)) : ciphertext.slice(start, end);
    expectFailure(await decryptRange(info, swapping, 2 * C, 2 * C + 1, { provider: node }).catch((e) => e), 'chunk-auth', 'DECRYPT_FAILED');
    // The final chunk asked for, the blob cut short.
    const cut = ciphertext.slice(0, ciphertext.length - 100);
    expectFailure(
      await decryptRange(info, fetcher(cut), plaintext.length - 10, plaintext.length, { provider: node }).catch((e) => e),
      'truncated',
    );
    // More bytes than asked for.
    const generous = async (start: number, end: number) => ciphertext.slice(start, end + 1);
    expectFailure(await decryptRange(info, generous, 0, 10, { provider: node }).catch((e) => e), 'trailing-data');
    // A wrong key is refused after the header, before any chunk is fetched.
    const log: [number, number][] = [];
    const wrong = { ...info, key: pattern(32, 5) };
    expectFailure(await AttachmentReader.open(wrong, fetcher(ciphertext, log), { provider: node }).catch((e) => e), 'wrong-key');
    expect(log).toEqual([[0, HEADER_BYTES]]);
  });

  it('refuses ranges outside the attachment', async () => {
    const reader = await AttachmentReader.open(info, fetcher(ciphertext), { provider: node });
    await expect(reader.read(10, plaintext.length + 1)).rejects.toThrow(RangeError);
    await expect(reader.read(10, 5)).rejects.toThrow(RangeError);
    await expect(reader.readChunks(0, 21)).rejects.toThrow(RangeError);
    reader.close();
  });
});

// ---- tampering ------------------------------------------------------------------

describe('attachment tampering', () => {
  const C = 16;
  const plaintext = pattern(5 * C + 3, 3); // six chunks, the last holding 3 bytes
  const { ciphertext, info } = encryptAttachment(plaintext, { provider: node, chunkSize: C });
  const offset = (i: number) => HEADER_BYTES + i * (C + TAG_BYTES);
  const chunk = (i: number) => ciphertext.subarray(offset(i), i === 5 ? ciphertext.length : offset(i + 1));
  const blob = (...chunks: Uint8Array[]) => new Uint8Array(Buffer.concat([ciphertext.subarray(0, HEADER_BYTES), ...chunks]));

  /** Both full-download paths must report the same failure. */
  async function bothFail(bytes: Uint8Array, reason: AttachmentFailure, keyInfo: AttachmentKeyInfo = info): Promise<void> {
    expectFailure(
      failureOf(() => decryptAttachment(bytes, keyInfo, { provider: node })),
      reason,
    );
    const { error } = await streamFailure(bytes, keyInfo, [5, 100, 1]);
    expectFailure(error, reason);
  }

  it('every single flipped bit anywhere in the blob is detected', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: ciphertext.length * 8 - 1 }), async (bit) => {
        const bytes = ciphertext.slice();
        bytes[bit >> 3] = (bytes[bit >> 3] as number) ^ (1 << (bit & 7));
        const where = bit >> 3;
        const reason: AttachmentFailure = where < 8 ? 'bad-header' : where < HEADER_BYTES ? 'wrong-key' : 'chunk-auth';
        expectFailure(
          failureOf(() => decryptAttachment(bytes, info, { provider: node })),
          reason,
        );
        const { error, emitted } = await streamFailure(bytes, info);
        expectFailure(error, reason);
        // Whatever was emitted before the failure is a prefix of the true plaintext.
        expect(toHex(emitted)).toBe(toHex(plaintext.subarray(0, emitted.length)));
      }),
      { numRuns: 120 },
    );
  });

  it('truncation at every length is detected', async () => {
    for (let n = 0; n < ciphertext.length; n++) await bothFail(ciphertext.subarray(0, n), 'truncated');
  });

  it('data after the final chunk is detected', async () => {
    await bothFail(new Uint8Array(Buffer.concat([ciphertext, Uint8Array.of(0)])), 'trailing-data');
    await bothFail(new Uint8Array(Buffer.concat([ciphertext, chunk(5)])), 'trailing-data');
  });

  it('reordered, duplicated and dropped-and-restated chunks are detected', async () => {
    await bothFail(blob(chunk(1), chunk(0), chunk(2), chunk(3), chunk(4), chunk(5)), 'chunk-auth');
    await bothFail(blob(chunk(0), chunk(1), chunk(1), chunk(3), chunk(4), chunk(5)), 'chunk-auth');
    // Drop a middle chunk and restate sizes and digest as an attacker holding only the blob could:
    // the later chunks no longer sit at their own index.
    const shorter = blob(chunk(0), chunk(2), chunk(3), chunk(4), chunk(5));
    const restated = { ...info, plaintextSize: 4 * C + 3, ciphertextSize: shorter.length, digest: nodeBackend.sha256(shorter) };
    await bothFail(shorter, 'chunk-auth', restated);
    // Cut after a full chunk and restate: that chunk was not sealed as final.
    const cut = blob(chunk(0), chunk(1));
    await bothFail(cut, 'chunk-auth', { ...info, plaintextSize: 2 * C, ciphertextSize: cut.length, digest: nodeBackend.sha256(cut) });
  });

  it('a pointer that disagrees with the blob is refused', async () => {
    await bothFail(ciphertext, 'wrong-key', { ...info, key: pattern(32, 8) });
    // One chunk either way, so the sizes agree and only the header's chunk size differs from the pointer's.
    const small = encryptAttachment(pattern(10), { provider: node, chunkSize: 16 });
    expectFailure(
      failureOf(() => decryptAttachment(small.ciphertext, { ...small.info, chunkSize: 32 }, { provider: node })),
      'bad-header',
      'MALFORMED',
    );
    expectFailure((await streamFailure(small.ciphertext, { ...small.info, chunkSize: 32 })).error, 'bad-header', 'MALFORMED');
    expectFailure(
      failureOf(() => decryptAttachment(ciphertext, { ...info, ciphertextSize: info.ciphertextSize + 1 })),
      'bad-pointer',
      'MALFORMED',
    );
    // Sizes are CBOR unsigned integers of at most 2^32 - 1 (spec/01-conventions.md §2.1).
    const huge = { ...info, plaintextSize: 2 ** 32, ciphertextSize: 2 ** 32 + 56 + 16 * 2 ** 28 };
    expectFailure(
      failureOf(() => decryptAttachment(ciphertext, huge)),
      'bad-pointer',
      'OVERSIZED',
    );
    expect(() => layoutOf(2 ** 32 - 100, 65536)).toThrow(RangeError);
    expectFailure(
      failureOf(() => decryptAttachmentStream(streamOf(ciphertext), { ...info, digest: info.digest.subarray(1) })),
      'bad-pointer',
    );
  });
});

// ---- pointer ----------------------------------------------------------------------

describe('attachment pointer', () => {
  const pointerArb: fc.Arbitrary<AttachmentPointer> = fc
    .record({
      id: fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/),
      key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      digest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      // Up to 2^31 - 64: within the 2^32 - 1 ciphertext bound even with 16-byte chunks (which double the size).
      plaintextSize: fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.integer({ min: 0, max: 2 ** 31 - 64 })),
      exponent: fc.integer({ min: 4, max: 22 }),
      contentType: fc.option(fc.constantFrom('video/mp4', 'image/jpeg', 'text/plain; charset=utf-8', 'application/octet-stream'), {
        nil: undefined,
      }),
      fileName: fc.option(
        fc
          .string({ unit: fc.constantFrom('a', 'Z', '0', '.', '-', '_', ' ', 'é', '語', '😀', '\u0301'), minLength: 1, maxLength: 60 })
          .filter((s) => s !== '.' && s !== '..'),
        { nil: undefined },
      ),
    })
    .map(({ exponent, ...p }) => {
      const chunkSize = 2 ** exponent;
      const ciphertextSize = layoutOf(p.plaintextSize, chunkSize).ciphertextSize;
      const { contentType, fileName, ...rest } = p;
      return { ...rest, chunkSize, ciphertextSize, ...(contentType ? { contentType } : {}), ...(fileName ? { fileName } : {}) };
    });

  it('round-trips through strict CBOR', () => {
    fc.assert(
      fc.property(pointerArb, (p) => {
        const bytes = encodeAttachmentPointer(p);
        const back = decodeAttachmentPointer(bytes);
        expect({ ...back }).toEqual(p);
        expect(toHex(encodeAttachmentPointer(back))).toBe(toHex(bytes));
      }),
      { numRuns: 200 },
    );
  });

  it('the largest pointer fits the decoder limit', () => {
    const { info } = encryptAttachment(pattern(1), { provider: node });
    const p = { ...info, id: 'a'.repeat(128), contentType: `video/${'x'.repeat(249)}`, fileName: '語'.repeat(85) };
    const bytes = encodeAttachmentPointer(p);
    expect(bytes.length).toBeLessThanOrEqual(MAX_POINTER_BYTES);
    expect(decodeAttachmentPointer(bytes).fileName).toBe(p.fileName);
    expect(() => encodeAttachmentPointer({ ...p, fileName: '語'.repeat(86) })).toThrow(RangeError);
  });

  it('file names that are paths, or carry control or bidi-override characters, are refused', () => {
    const { info } = encryptAttachment(pattern(1), { provider: node });
    const bad = ['', '.', '..', 'a/b', 'a\\b', 'a\u0000b', 'a\u001fb', 'a\u007fb', 'a\u0085b', 'gpj\u202eexe', 'a\u2066b', 'a\u2069b'];
    for (const fileName of bad) {
      expect(() => encodeAttachmentPointer({ ...info, id: 'x', fileName }), JSON.stringify(fileName)).toThrow(RangeError);
      const forged = encodeCbor([1, 'x', info.key, info.digest, info.plaintextSize, info.ciphertextSize, info.chunkSize, null, fileName]);
      expectFailure(
        failureOf(() => decodeAttachmentPointer(forged)),
        'bad-pointer',
        'MALFORMED',
      );
    }
    expect(decodeAttachmentPointer(encodeAttachmentPointer({ ...info, id: 'x', fileName: '..hidden' })).fileName).toBe('..hidden');
  });

  it('the encoder refuses what the decoder would refuse', () => {
    const { info } = encryptAttachment(pattern(1), { provider: node });
    const p = { ...info, id: 'abc' };
    expect(() => encodeAttachmentPointer({ ...p, id: 'a/b' })).toThrow(RangeError);
    expect(() => encodeAttachmentPointer({ ...p, fileName: 'x/y' })).toThrow(RangeError);
    expect(() => encodeAttachmentPointer({ ...p, ciphertextSize: 1 })).toThrow(RangeError);
    expect(() => encodeAttachmentPointer({ ...p, contentType: 'mp4' })).toThrow(RangeError);
  });
});

// ---- secrets --------------------------------------------------------------------

describe('attachment secrets', () => {
  it('errors, key info and pointers never show key bytes or plaintext', async () => {
    const plaintext = pattern(200, 42);
    const { ciphertext, info } = encryptAttachment(plaintext, { provider: node, chunkSize: 64 });
    const pointer = decodeAttachmentPointer(encodeAttachmentPointer({ ...info, id: 'blob1', fileName: 'a.bin' }));
    const errors: unknown[] = [
      failureOf(() => decryptAttachment(ciphertext, { ...info, key: pattern(32, 43) })),
      failureOf(() => decryptAttachment(ciphertext.subarray(0, 100), info)),
      failureOf(() => decryptAttachment(new Uint8Array(Buffer.concat([ciphertext, Uint8Array.of(1)])), info)),
      failureOf(() => decryptAttachment(ciphertext, { ...info, digest: pattern(32, 44) })),
      (await streamFailure(ciphertext, { ...info, digest: pattern(32, 44) })).error,
      failureOf(() => decodeAttachmentPointer(ciphertext)),
    ];
    const secrets = [
      toHex(info.key),
      Buffer.from(info.key).toString('base64'),
      toHex(plaintext.subarray(0, 16)),
      Array.from(info.key.subarray(0, 6)).join(', '),
    ];
    const render = (x: unknown) => [String(x), JSON.stringify(x), inspect(x, { depth: 5, showHidden: true })].join('\n');
    for (const e of errors) {
      expect(e).toBeInstanceOf(ParleyError);
      for (const s of secrets) expect(render(e)).not.toContain(s);
    }
    for (const s of secrets) {
      expect(inspect(info)).not.toContain(s);
      expect(inspect(pointer)).not.toContain(s);
    }
    expect(inspect(pointer)).toContain('AttachmentPointer');
    expect(inspect(pointer)).toContain('blob1');
  });
});
