// decodeCbor (spec/01-conventions.md §2.2): valid text is kept exactly as sent, and the value it returns
// owns its byte strings (no view into a buffer the caller may reuse or the relay's pool may recycle).
import { type CborValue, decodeCbor, encodeCbor, fromUtf8, readCbor, utf8 } from '@parley/core';
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

describe('fromUtf8: the same rule outside CBOR', () => {
  it('keeps a leading U+FEFF (an app reading a plaintext as text gets what was sent) and still refuses invalid UTF-8', () => {
    for (const text of [BOM, `${BOM}hello`, `${BOM}${BOM}x`, `a${BOM}`]) expect(fromUtf8(utf8(text))).toBe(text);
    expect(() => fromUtf8(Uint8Array.of(0xc3, 0x28))).toThrow(TypeError);
  });
});

describe('decodeCbor: ownership of byte strings', () => {
  // Short (own buffers) and long (one shared buffer per value) byte strings, nested.
  const sample = (): Uint8Array =>
    encodeCbor([
      'send',
      new Uint8Array(1000).fill(7),
      [new Uint8Array(3).fill(1), new Uint8Array(0), new Uint8Array(64).fill(2), new Uint8Array(65).fill(3)],
      [[new Uint8Array(300).fill(4)]],
    ]);
  type Sample = [string, Uint8Array, [Uint8Array, Uint8Array, Uint8Array, Uint8Array], [[Uint8Array]]];
  const strings = (v: Sample): Uint8Array[] => [v[1], ...v[2], v[3][0][0]];
  const fills = [7, 1, 0, 2, 3, 4];

  it('shares no memory with the input: overwriting the input leaves the value unchanged', () => {
    const input = sample();
    const value = decodeCbor(input, 'x', 4096) as Sample;
    for (const s of strings(value)) expect(s.buffer).not.toBe(input.buffer);
    input.fill(0xee);
    strings(value).forEach((s, i) =>
      expect(
        s.every((b) => b === fills[i]),
        `${i}`,
      ).toBe(true),
    );
  });

  it('reaches nothing but byte string contents through .buffer: short ones alone, long ones in one buffer', () => {
    const value = decodeCbor(sample(), 'x', 4096) as Sample;
    const all = strings(value);
    for (const s of all.filter((s) => s.length <= 64)) {
      expect(s.byteOffset).toBe(0);
      expect(s.buffer.byteLength).toBe(s.byteLength);
    }
    const long = all.filter((s) => s.length > 64);
    const shared = new Set(long.map((s) => s.buffer));
    expect(shared.size).toBe(1);
    // Exactly the long byte strings, none overlapping (the input's heads and text are not in it).
    expect([...shared][0]?.byteLength).toBe(1000 + 65 + 300);
    const ranges = long.map((s) => [s.byteOffset, s.byteOffset + s.length]).sort((a, b) => (a[0] as number) - (b[0] as number));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]?.[0]).toBeGreaterThanOrEqual(ranges[i - 1]?.[1] as number);
    // Writing one byte string (a key zeroed after use) leaves the others alone.
    value[1].fill(0);
    strings(value)
      .slice(1)
      .forEach((s, i) => expect(s.every((b) => b === fills[i + 1])).toBe(true));
  });

  it('returns plain Uint8Array copies from a Node Buffer input, also a pooled one whose memory is reused', () => {
    const bytes = sample();
    // Buffer.from(array) of a small size comes from Node's shared pool: other Buffers live in the same memory.
    const pooled = Buffer.from(Array.from(bytes));
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    const value = decodeCbor(pooled, 'x', 4096) as Sample;
    for (const s of strings(value)) {
      expect(s.constructor).toBe(Uint8Array);
      expect(s.buffer).not.toBe(pooled.buffer);
    }
    pooled.fill(0);
    strings(value).forEach((s, i) => expect(s.every((b) => b === fills[i])).toBe(true));
    // A byte string at the top level is copied too.
    const top = Buffer.from(Array.from(encodeCbor(new Uint8Array(100).fill(9))));
    const alone = decodeCbor(top, 'x', 4096) as Uint8Array;
    expect(alone.constructor).toBe(Uint8Array);
    top.fill(0);
    expect(alone.every((b) => b === 9)).toBe(true);
  });

  it('readCbor, the relay per-frame variant, still hands out views (its callers copy what they keep)', () => {
    const input = sample();
    const value = readCbor(input, 'x', 4096) as Sample;
    for (const s of strings(value)) expect(s.buffer).toBe(input.buffer);
  });
});
