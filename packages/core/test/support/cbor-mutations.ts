// Hostile variants of a valid CBOR encoding, for property tests of strict
// decoders: byte-level (truncate, extend, flip, overwrite, a huge declared
// length spliced in) and structure-level (a field replaced by another major
// type or an extreme value, removed, duplicated, swapped with a sibling,
// nested deeply). Sizes stay bounded so a property run stays fast; "huge"
// means declared, never allocated here.
import fc from 'fast-check';
import { type CborValue, decodeCbor, encodeCbor } from '../../src/codec/cbor.ts';
import { ParleyError } from '../../src/index.ts';

type Path = number[];

function paths(v: CborValue, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  return out;
}

function edit(
  v: CborValue,
  path: Path,
  f: (node: CborValue, parent: CborValue[] | null, index: number) => CborValue | undefined,
): CborValue {
  if (path.length === 0) return f(v, null, -1) ?? null;
  const [head, ...rest] = path as [number, ...number[]];
  const arr = (v as CborValue[]).slice();
  if (rest.length === 0) {
    const replaced = f(arr[head] as CborValue, arr, head);
    if (replaced === undefined) arr.splice(head, 1);
    else arr[head] = replaced;
    return arr;
  }
  arr[head] = edit(arr[head] as CborValue, rest, f);
  return arr;
}

const nested = (depth: number, inner: CborValue): CborValue => (depth === 0 ? inner : [nested(depth - 1, inner)]);

/** Values of every major type the Parley subset has, and a few at its edges. */
const otherValue: fc.Arbitrary<CborValue> = fc.oneof(
  fc.constantFrom<CborValue>(0, 1, 2, 23, 24, 255, 256, 0xffff, 0xffffffff, null, true, false, '', [], new Uint8Array(0)),
  fc.nat(0xffffffff),
  fc.string({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 80 }),
  fc.integer({ min: 0, max: 4096 }).map((n) => new Uint8Array(n)),
  fc.array(fc.nat(300), { maxLength: 6 }),
  fc.integer({ min: 2, max: 40 }).map((d) => nested(d, 0)),
);

type Mutation = (bytes: Uint8Array, tree: CborValue) => Uint8Array;

const byteMutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Truncate.
  fc
    .nat()
    .map((n) => (b: Uint8Array) => b.subarray(0, n % Math.max(1, b.length))),
  // Extend with trailing bytes.
  fc
    .uint8Array({ minLength: 1, maxLength: 16 })
    .map((extra) => (b: Uint8Array) => Uint8Array.from([...b, ...extra])),
  // Flip bits.
  fc
    .array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 })
    .map((flips) => (b: Uint8Array) => {
      const out = b.slice();
      for (const [at, bits] of flips) out[at % out.length] = (out[at % out.length] as number) ^ bits;
      return out;
    }),
  // A huge declared length (byte string, text, array, map; 32- and 64-bit) spliced in at a position.
  fc
    .tuple(fc.nat(), fc.constantFrom(0x5a, 0x5b, 0x7a, 0x7b, 0x9a, 0x9b, 0xba, 0xbb))
    .map(([at, head]) => (b: Uint8Array) => {
      const i = at % b.length;
      const len = head & 1 ? [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] : [0xff, 0xff, 0xff, 0xff];
      return Uint8Array.from([...b.subarray(0, i), head, ...len, ...b.subarray(i)]);
    }),
  // Indefinite lengths, tags, floats and undefined: outside the subset.
  fc
    .tuple(fc.nat(), fc.constantFrom(0x5f, 0x9f, 0xff, 0xc2, 0xd8, 0xf9, 0xfa, 0xfb, 0xf7))
    .map(([at, byte]) => (b: Uint8Array) => {
      const out = b.slice();
      out[at % out.length] = byte;
      return out;
    }),
);

const structureMutation: fc.Arbitrary<Mutation> = fc.oneof(
  // A node replaced by another value (wrong major type, extreme integer, long string, deep nesting).
  fc
    .tuple(fc.nat(), otherValue)
    .map(([pick, value]) => (_b: Uint8Array, tree: CborValue) => {
      const all = paths(tree);
      return encodeCbor(edit(tree, all[pick % all.length] as Path, () => value));
    }),
  // A field removed or duplicated.
  fc
    .tuple(fc.nat(), fc.boolean())
    .map(([pick, remove]) => (b: Uint8Array, tree: CborValue) => {
      const all = paths(tree).filter((p) => p.length > 0);
      if (all.length === 0) return b;
      const path = all[pick % all.length] as Path;
      if (remove) return encodeCbor(edit(tree, path, () => undefined));
      const parentPath = path.slice(0, -1);
      return encodeCbor(
        edit(tree, parentPath, (node) => [...(node as CborValue[]), (node as CborValue[])[path.at(-1) as number] as CborValue]),
      );
    }),
  // Two siblings swapped.
  fc
    .tuple(fc.nat(), fc.nat())
    .map(([pick, other]) => (b: Uint8Array, tree: CborValue) => {
      const arrays = paths(tree).filter((p) => {
        let node: CborValue = tree;
        for (const i of p) node = (node as CborValue[])[i] as CborValue;
        return Array.isArray(node) && node.length > 1;
      });
      if (arrays.length === 0) return b;
      return encodeCbor(
        edit(tree, arrays[pick % arrays.length] as Path, (node) => {
          const arr = (node as CborValue[]).slice();
          const i = other % arr.length;
          const j = (i + 1) % arr.length;
          [arr[i], arr[j]] = [arr[j] as CborValue, arr[i] as CborValue];
          return arr;
        }),
      );
    }),
  // The whole structure nested in arrays, or a deep nesting bomb of bytes (far past any depth limit).
  fc
    .integer({ min: 1, max: 12 })
    .map((d) => (_b: Uint8Array, tree: CborValue) => encodeCbor(nested(d, tree))),
  fc.integer({ min: 100, max: 20_000 }).map((d) => () => Uint8Array.from([...new Array(d).fill(0x81), 0x00])),
);

/** A hostile variant of `valid` (a canonical encoding): one or two mutations, byte-level or structural. */
export function mutatedCbor(valid: Uint8Array): fc.Arbitrary<Uint8Array> {
  const tree = decodeCbor(valid, 'sample', Number.MAX_SAFE_INTEGER) as CborValue;
  return fc
    .array(fc.oneof(byteMutation, structureMutation), { minLength: 1, maxLength: 2 })
    .map((ms) => ms.reduce((bytes, m) => (bytes.length === 0 ? bytes : m(bytes, decodeOr(bytes, tree))), valid));
}

function decodeOr(bytes: Uint8Array, fallback: CborValue): CborValue {
  try {
    return decodeCbor(bytes, 'sample', Number.MAX_SAFE_INTEGER) as CborValue;
  } catch {
    return fallback;
  }
}

/**
 * Runs `fn`: it returns a value, or throws a ParleyError whose code is one of
 * `codes`. Anything else (a TypeError, a RangeError, a stack overflow) is
 * rethrown so the property fails with it.
 */
export function typedOutcome<T>(fn: () => T, codes: readonly string[]): { ok: true; value: T } | { ok: false; code: string } {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof ParleyError && codes.includes(e.code)) return { ok: false, code: e.code };
    throw e;
  }
}

/** The codes every strict decoder may answer. */
export const DECODE_CODES = ['MALFORMED', 'OVERSIZED', 'UNSUPPORTED_VERSION'] as const;
