// readCbor against decodeCbor (spec/01-conventions.md §2.2): the same inputs accepted with the same values,
// the same refused with the same codes, over random canonical items and random damage to them.
// (test-vectors/test/cbor.test.ts runs both over the CborDecoding vectors.)
import { type CborValue, ParleyError, decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';

/** A small deterministic PRNG (mulberry32): the same cases every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffff, 1234567];
const TEXTS = ['', 'send', 'ack', 'a'.repeat(70), 'é', '日本語', '😀', 'x'.repeat(23), 'y'.repeat(24)];

function randomValue(r: () => number, depth: number): CborValue {
  const k = Math.floor(r() * (depth < 4 ? 7 : 5));
  switch (k) {
    case 0:
      return INTS[Math.floor(r() * INTS.length)] as number;
    case 1:
      return Uint8Array.from({ length: [0, 1, 23, 24, 40, 300][Math.floor(r() * 6)] as number }, () => Math.floor(r() * 256));
    case 2:
      return TEXTS[Math.floor(r() * TEXTS.length)] as string;
    case 3:
      return [true, false, null][Math.floor(r() * 3)] as CborValue;
    case 4:
      return Math.floor(r() * 100000);
    default:
      return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
  }
}

/** Damage of the kinds strict decoding is about: a byte changed, cut, added, or a head replaced by another form. */
function damage(r: () => number, input: Uint8Array): Uint8Array {
  const b = Array.from(input);
  const at = Math.floor(r() * b.length);
  switch (Math.floor(r() * 5)) {
    case 0:
      b[at] = Math.floor(r() * 256);
      break;
    case 1:
      b.length = at;
      break;
    case 2:
      b.splice(at, 0, Math.floor(r() * 256));
      break;
    case 3:
      // The byte's major type kept, its additional info set to a long, indefinite or reserved form.
      b[at] = ((b[at] as number) & 0xe0) | [24, 25, 26, 27, 28, 31][Math.floor(r() * 6)]!;
      break;
    default:
      b[at] = [0x1b, 0x20, 0xa0, 0xc0, 0xf7, 0xf9, 0xfa, 0xfb, 0xff, 0x5f, 0x7f, 0x9f][Math.floor(r() * 12)]!;
  }
  return Uint8Array.from(b);
}

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

function outcome(decode: () => unknown): Outcome {
  try {
    return { ok: true, value: decode() };
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    return { ok: false, code: (e as ParleyError).code };
  }
}

/** Byte strings compared by content (the reader's are views, cbor-x's too, of differing classes). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function compare(input: Uint8Array, maxBytes = 4096): Outcome {
  const reference = outcome(() => decodeCbor(input, 'x', maxBytes));
  const fast = outcome(() => readCbor(input, 'x', maxBytes));
  expect(plain(fast.ok ? fast.value : fast), Buffer.from(input).toString('hex')).toEqual(plain(reference.ok ? reference.value : reference));
  return fast;
}

describe('readCbor', () => {
  it('accepts and refuses what decodeCbor does, over random items and damaged ones', () => {
    const r = prng(15);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const input = encodeCbor(randomValue(r, 0));
      expect(compare(input).ok).toBe(true);
      accepted++;
      for (let j = 0; j < 4; j++) {
        if (compare(damage(r, input)).ok) accepted++;
        else refused++;
      }
    }
    // Both sides of the comparison were exercised.
    expect(refused).toBeGreaterThan(5000);
    expect(accepted).toBeGreaterThan(3000);
  });

  it('refuses nesting past depth 8, an over-long input before parsing, and trailing bytes', () => {
    let deep: CborValue = 1;
    for (let i = 0; i < 8; i++) deep = [deep];
    expect(compare(encodeCbor(deep)).ok).toBe(true);
    expect(compare(encodeCbor([deep]))).toEqual({ ok: false, code: 'MALFORMED' });
    expect(compare(encodeCbor([1, 2, 3]), 3)).toEqual({ ok: false, code: 'OVERSIZED' });
    expect(compare(Uint8Array.of(0x01, 0x01))).toEqual({ ok: false, code: 'MALFORMED' });
    expect(compare(new Uint8Array(0))).toEqual({ ok: false, code: 'MALFORMED' });
  });

  it('refuses an array head that claims more items than there are bytes, without allocating them', () => {
    // array of 2^32-1 items in 5 bytes.
    expect(compare(Uint8Array.of(0x9a, 0xff, 0xff, 0xff, 0xff))).toEqual({ ok: false, code: 'MALFORMED' });
  });

  it('keeps a leading U+FEFF in any text string (the one documented difference: cbor-x drops it from long ones)', () => {
    for (const n of [3, 100]) {
      const text = `\ufeff${'a'.repeat(n)}`;
      expect(readCbor(encodeCbor(text), 'x', 4096)).toBe(text);
    }
    expect(decodeCbor(encodeCbor('\ufeffab'), 'x', 4096)).toBe('\ufeffab');
    expect(outcome(() => decodeCbor(encodeCbor(`\ufeff${'a'.repeat(100)}`), 'x', 4096))).toEqual({ ok: false, code: 'MALFORMED' });
  });

  it('hands byte strings out as views into the input (no copy)', () => {
    const input = encodeCbor(['send', new Uint8Array(1000).fill(7)]);
    const value = readCbor(input, 'x', 4096) as [string, Uint8Array];
    expect(value[1].buffer).toBe(input.buffer);
    expect(value[1].every((b) => b === 7)).toBe(true);
  });
});
