// Core's strict CBOR reader (spec/01-conventions.md §2.2), through both entry points (decodeCbor: byte strings
// copied; readCbor: views), against an oracle that shares no parsing code with it: the decoder core had before
// session 6 (cbor-x, a subset walk, and the canonical re-encode check; test/support/cbor-oracle.ts). The same
// inputs accepted with the same values, the same refused with the same codes, over random canonical items and
// damaged ones. (test-vectors/test/cbor.test.ts runs both entry points over the CborDecoding vectors, and the
// vector verifier runs them on cborg.) Then hostile bytes: every valid CBOR input in test-vectors/ and random
// values, mutated the ways an attacker would (a bit flipped, a byte inserted or deleted, the input cut, a head
// replaced or widened, a piece of another input spliced in), bounded by count and by time.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { type CborValue, ParleyError, decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { oracleDecodeCbor } from './support/cbor-oracle.ts';
import { prng } from './support/prng.ts';

const INTS = [0, 1, 23, 24, 255, 256, 65535, 65536, 0xffffffff, 1234567];
const TEXTS = [
  '',
  'send',
  'ack',
  'a'.repeat(70),
  'é',
  '日本語',
  '😀',
  'x'.repeat(23),
  'y'.repeat(24),
  '\ufeffab',
  `\ufeff${'é'.repeat(40)}`,
];

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

/** Byte strings compared by content (the reader's are views or copies, cbor-x's views, of differing classes). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

/** A text string that cbor-x rewrites: a leading U+FEFF in more than 64 UTF-8 bytes (it drops the U+FEFF). */
function hasLongBom(v: unknown): boolean {
  if (typeof v === 'string') return v.startsWith('\ufeff') && Buffer.byteLength(v) > 64;
  return Array.isArray(v) && v.some(hasLongBom);
}

const tally = { oracleFault: 0 };

/**
 * Both entry points against the oracle. They agree with it, except where the oracle is known to be at fault:
 * it refuses a text with a leading U+FEFF over 64 bytes. There the reader must accept, and its value must
 * encode back to exactly the input (the canonical rule itself, checked without cbor-x's decoder).
 */
function agree(input: Uint8Array, maxBytes: number): Outcome {
  const reference = outcome(() => plain(oracleDecodeCbor(input, 'x', maxBytes)));
  const owned = outcome(() => decodeCbor(input, 'x', maxBytes));
  const views = outcome(() => readCbor(input, 'x', maxBytes));
  const hex = Buffer.from(input).toString('hex');
  const result = owned.ok ? { ok: true as const, value: plain(owned.value) } : owned;
  expect(views.ok ? { ok: true, value: plain(views.value) } : views, hex).toEqual(result);
  if (owned.ok) expect(Buffer.from(encodeCbor(owned.value as CborValue)).toString('hex'), hex).toBe(hex);
  if (!reference.ok && owned.ok && hasLongBom(owned.value)) {
    tally.oracleFault++;
    return result;
  }
  expect(result, hex).toEqual(reference);
  return result;
}

const compare = (input: Uint8Array, maxBytes = 4096): Outcome => agree(input, maxBytes);

describe('the strict reader (decodeCbor, readCbor) against the oracle', () => {
  it('accepts and refuses what the oracle does, over random items and damaged ones', () => {
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

  it('pays only for the items it reads, not for the lengths heads claim (an 8 MiB input in a 64 MB heap)', () => {
    // Seven nested heads each claim ~8M items, then a refusal after 40 bytes: allocated from the claims,
    // that was 7 arrays of 8M slots (450 MB) before the first refusal.
    const run = spawnSync(
      process.execPath,
      ['--max-old-space-size=64', '--import', 'tsx', new URL('./support/cbor-claims.ts', import.meta.url).pathname],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.stdout, run.stderr.slice(-500)).toBe('MALFORMED\n'.repeat(4));
    expect(run.status).toBe(0);
  });

  it('keeps a leading U+FEFF in any text string, where the oracle (cbor-x) drops it from long ones and refuses', () => {
    const before = tally.oracleFault;
    for (const n of [3, 61, 62, 100]) {
      const text = `\ufeff${'a'.repeat(n)}`;
      expect(compare(encodeCbor(text))).toEqual({ ok: true, value: text });
      expect(compare(encodeCbor(['x', text]))).toEqual({ ok: true, value: ['x', text] });
    }
    // Only the two strings over 64 bytes (62 and 100 "a"), each alone and in an array, hit the oracle's fault.
    expect(tally.oracleFault - before).toBe(4);
    expect(outcome(() => oracleDecodeCbor(encodeCbor(`\ufeff${'a'.repeat(100)}`), 'x', 4096))).toEqual({ ok: false, code: 'MALFORMED' });
  });

  it('hands byte strings out as views into the input (no copy)', () => {
    const input = encodeCbor(['send', new Uint8Array(1000).fill(7)]);
    const value = readCbor(input, 'x', 4096) as [string, Uint8Array];
    expect(value[1].buffer).toBe(input.buffer);
    expect(value[1].every((b) => b === 7)).toBe(true);
  });
});

/** The vector files: every valid CBOR item in them (cbor.json's, push and ack frames, wire structures) is a seed. */
const VECTORS = new URL('../../../test-vectors/', import.meta.url);
/** Larger than every vector; OVERSIZED is compared separately (the same check at the top of both). */
const MAX_BYTES = 1 << 20;
/** Mutated inputs compared at most, and the time the loop may take (whichever comes first). */
const MUTATIONS = 40_000;
const BUDGET_MS = 6_000;

/** Every hex string in the vector files that is one canonical CBOR item. */
function vectorSeeds(): Uint8Array[] {
  const seen = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.length >= 2 && v.length % 2 === 0 && v.length <= 2 * MAX_BYTES && /^[0-9a-f]+$/.test(v)) seen.add(v);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(visit);
  };
  for (const name of readdirSync(VECTORS)) if (name.endsWith('.json')) visit(JSON.parse(readFileSync(new URL(name, VECTORS), 'utf8')));
  const seeds: Uint8Array[] = [];
  for (const hex of seen) {
    const input = Uint8Array.from(Buffer.from(hex, 'hex'));
    try {
      decodeCbor(input, 'seed', MAX_BYTES);
      seeds.push(input);
    } catch {
      // Not CBOR (a key, a hash, a ciphertext) or an invalid vector: a mutation source only if valid.
    }
  }
  return seeds;
}

/** Heads of every major type and length form, and the simple/float/break bytes outside the subset. */
const HEADS = [
  0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x38, 0x58, 0x59, 0x5a, 0x5b, 0x5f, 0x78, 0x79, 0x7a, 0x7f, 0x98, 0x99, 0x9a, 0x9b, 0x9f,
];
const HEADS2 = [0xa0, 0xbf, 0xc0, 0xd8, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xff, 0xed, 0xc3, 0x80];

function mutate(r: () => number, input: Uint8Array, other: Uint8Array): Uint8Array {
  const b = Array.from(input);
  const at = Math.floor(r() * (b.length + 1));
  switch (Math.floor(r() * 9)) {
    case 0: // a bit flipped
      if (at < b.length) b[at] = (b[at] as number) ^ (1 << Math.floor(r() * 8));
      break;
    case 1: // a byte inserted
      b.splice(at, 0, Math.floor(r() * 256));
      break;
    case 2: // bytes deleted
      b.splice(at, 1 + Math.floor(r() * 4));
      break;
    case 3: // cut short
      b.length = Math.min(at, b.length);
      break;
    case 4: // a head replaced (length forms, indefinite, reserved, outside the subset)
      if (at < b.length) b[at] = [...HEADS, ...HEADS2][Math.floor(r() * (HEADS.length + HEADS2.length))] as number;
      break;
    case 5: {
      // a piece of another input spliced in (a valid item in the wrong place)
      const from = Math.floor(r() * other.length);
      b.splice(at, Math.floor(r() * 3), ...other.subarray(from, from + 1 + Math.floor(r() * 40)));
      break;
    }
    case 6: {
      // a head's argument widened to a longer form of the same value (the canonical-form attack)
      const head = b[at];
      if (head === undefined || (head & 0x1f) >= 24) break;
      const wide = [24, 25, 26, 27][Math.floor(r() * 4)] as number;
      const size = 1 << (wide - 24);
      const arg = Array.from({ length: size }, (_, k) => (k === size - 1 ? head & 0x1f : 0));
      b.splice(at, 1, (head & 0xe0) | wide, ...arg);
      break;
    }
    case 7: {
      // a long-form argument set to the edge of its form (the smallest it may hold, and one below)
      const info = (b[at] ?? 0) & 0x1f;
      if (at >= b.length || info < 24 || info > 26 || (b[at] as number) >= 0xe0) break;
      const size = 1 << (info - 24);
      const floor = [24, 0x100, 0x1_0000][info - 24] as number;
      const v = floor - (r() < 0.5 ? 1 : 0);
      for (let k = 0; k < size; k++) b[at + 1 + k] = Math.floor(v / 256 ** (size - 1 - k)) & 0xff;
      break;
    }
    default: // several bytes changed at random
      for (let k = 0; k < 3 && b.length > 0; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
  }
  return Uint8Array.from(b);
}

describe('the strict reader against the oracle, on the vectors', () => {
  it('agrees with the oracle on every input of cbor.json, valid and invalid, and gives each its vector result', () => {
    const file = JSON.parse(readFileSync(new URL('cbor.json', VECTORS), 'utf8')) as {
      testGroups: { maxBytes: number; tests: { input: string; result: string; error?: string }[] }[];
    };
    let n = 0;
    for (const group of file.testGroups) {
      for (const test of group.tests) {
        const result = agree(Uint8Array.from(Buffer.from(test.input, 'hex')), group.maxBytes);
        expect(result.ok ? 'valid' : `invalid ${result.code}`, test.input).toBe(
          test.result === 'valid' ? 'valid' : `invalid ${test.error}`,
        );
        n++;
      }
    }
    expect(n).toBeGreaterThan(70);
  });
});

describe('the strict reader against the oracle, mutated inputs', () => {
  it('gives the same value or error code for every mutation of every valid vector and random value', () => {
    const seeds = vectorSeeds();
    // Every kind of vector file contributes (cbor.json alone has dozens of valid items).
    expect(seeds.length).toBeGreaterThan(100);
    const r = prng(0x0c_b0_15);
    for (let i = 0; i < 300; i++) seeds.push(encodeCbor(randomValue(r, 0)));
    const counts = { same: 0, refused: 0, accepted: 0 };
    const started = performance.now();
    for (let i = 0; i < MUTATIONS; i++) {
      // Bounded in time too: on a slow machine fewer cases, never a slower test.
      if ((i & 255) === 0 && performance.now() - started > BUDGET_MS) break;
      const seed = seeds[Math.floor(r() * seeds.length)] as Uint8Array;
      let input = mutate(r, seed, seeds[Math.floor(r() * seeds.length)] as Uint8Array);
      if (r() < 0.3) input = mutate(r, input, seed);
      if (input.length === 0) continue;
      const result = agree(input, MAX_BYTES);
      counts.same++;
      if (result.ok) counts.accepted++;
      else counts.refused++;
    }
    // Both sides were exercised, many times.
    expect(counts.same).toBeGreaterThan(2000);
    expect(counts.accepted).toBeGreaterThan(200);
    expect(counts.refused).toBeGreaterThan(1000);
  });

  it('refuses what nests past the limit at any place, without recursing further (a 100,000-deep input)', () => {
    // 0x81 repeated: an array in an array ... cut off; the reader must stop at depth 8, not at the end.
    const deep = new Uint8Array(100_000).fill(0x81);
    expect(agree(deep, MAX_BYTES)).toEqual({ ok: false, code: 'MALFORMED' });
  });

  it('refuses lengths claiming more than the input has, in every head form, before reading on', () => {
    for (const major of [2, 3, 4]) {
      for (const head of [
        [24, 0xff],
        [25, 0xff, 0xff],
        [26, 0xff, 0xff, 0xff, 0xff],
        [27, 0, 0, 0, 1, 0, 0, 0, 0],
      ]) {
        const input = Uint8Array.of((major << 5) | (head[0] as number), ...head.slice(1), 0, 0, 0);
        expect(agree(input, MAX_BYTES)).toEqual({ ok: false, code: 'MALFORMED' });
      }
    }
  });
});
