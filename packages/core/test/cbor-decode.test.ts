// decodeCbor (spec/01-conventions.md §2.2): valid text is kept exactly as sent, and the value it returns
// owns its byte strings (no view into a buffer the caller may reuse or the relay's pool may recycle).
import { type CborValue, decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';

const BOM = '\ufeff';

describe('decodeCbor: text', () => {
  it('keeps a leading U+FEFF in text strings of every length, alone or inside arrays (valid UTF-8 is never rewritten)', () => {
    // cbor-x dropped the BOM from strings long enough for its TextDecoder path (about 64 bytes and up),
    // and the re-encode check then refused a valid input as "non-canonical".
    for (const n of [0, 1, 3, 20, 60, 61, 62, 63, 64, 65, 100, 300, 5000]) {
      const text = `${BOM}${'a'.repeat(n)}`;
      for (const value of [text, [1, text], [[text, new Uint8Array(3)]]] as CborValue[]) {
        expect(decodeCbor(encodeCbor(value), 'x', 1 << 16), `${n}`).toEqual(value);
      }
    }
    // Non-ASCII after the BOM, and a BOM that is not first (no decoder path ever strips that one).
    for (const text of [`${BOM}é${'日本'.repeat(40)}`, `${BOM}${BOM}${'b'.repeat(80)}`, `a${BOM}${'c'.repeat(80)}`]) {
      expect(decodeCbor(encodeCbor(text), 'x', 4096)).toBe(text);
      expect(readCbor(encodeCbor(text), 'x', 4096)).toBe(text);
    }
  });
});

describe('decodeCbor: ownership of byte strings', () => {
  const sample = (): Uint8Array => encodeCbor(['send', new Uint8Array(1000).fill(7), [new Uint8Array(3).fill(1), new Uint8Array(0)]]);

  it('returns byte strings that share no memory with the input: overwriting the input leaves the value unchanged', () => {
    const input = sample();
    const value = decodeCbor(input, 'x', 4096) as [string, Uint8Array, [Uint8Array, Uint8Array]];
    const strings = [value[1], value[2][0], value[2][1]];
    for (const s of strings) {
      expect(s.buffer).not.toBe(input.buffer);
      // Each owns exactly its bytes: nothing of the input before or after it is reachable through .buffer.
      expect(s.byteOffset).toBe(0);
      expect(s.buffer.byteLength).toBe(s.byteLength);
    }
    // No two byte strings share a buffer either (one may be handed to code that writes it).
    expect(new Set(strings.map((s) => s.buffer)).size).toBe(strings.length);
    input.fill(0xee);
    expect(value[1].every((b) => b === 7)).toBe(true);
    expect(Array.from(value[2][0])).toEqual([1, 1, 1]);
  });

  it('returns plain Uint8Array copies from a Node Buffer input, also a pooled one whose memory is reused', () => {
    const bytes = sample();
    // Buffer.from(array) of a small size comes from Node's shared pool: other Buffers live in the same memory.
    const pooled = Buffer.from(Array.from(bytes));
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    const value = decodeCbor(pooled, 'x', 4096) as [string, Uint8Array, [Uint8Array, Uint8Array]];
    expect(value[1].constructor).toBe(Uint8Array);
    expect(value[2][0].constructor).toBe(Uint8Array);
    expect(value[1].buffer).not.toBe(pooled.buffer);
    pooled.fill(0);
    expect(value[1].every((b) => b === 7)).toBe(true);
  });

  it('readCbor, the relay per-frame variant, still hands out views (its callers copy what they keep)', () => {
    const input = sample();
    const value = readCbor(input, 'x', 4096) as [string, Uint8Array];
    expect(value[1].buffer).toBe(input.buffer);
  });
});
