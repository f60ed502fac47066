/**
 * Ways to spoil valid bytes for the invalid cases: edit a field of a CBOR
 * structure and re-encode it canonically (so the case tests the field, not
 * the encoding), or damage the raw bytes (so the case tests the encoding).
 */
import { type CborValue, decodeCbor, encodeCbor, fromHex } from '@parley/core';

type Path = readonly number[];

/** Decodes canonical CBOR (no size limit: these are our own bytes). */
export function parse(bytes: Uint8Array): CborValue {
  return decodeCbor(bytes, 'vector', Number.MAX_SAFE_INTEGER) as CborValue;
}

function at(v: CborValue, path: Path): { parent: CborValue[]; index: number } {
  let node = v;
  for (const i of path.slice(0, -1)) {
    if (!Array.isArray(node)) throw new Error('path leaves the arrays');
    node = node[i] as CborValue;
  }
  if (!Array.isArray(node)) throw new Error('path leaves the arrays');
  return { parent: node, index: path[path.length - 1] as number };
}

function clone(v: CborValue): CborValue {
  if (Array.isArray(v)) return v.map(clone);
  if (v instanceof Uint8Array) return v.slice();
  return v;
}

/** Re-encodes `bytes` with the field at `path` replaced by `value`. */
export function setField(bytes: Uint8Array, path: Path, value: CborValue): Uint8Array {
  const v = clone(parse(bytes));
  const { parent, index } = at(v, path);
  parent[index] = value;
  return encodeCbor(v);
}

/** Re-encodes `bytes` with `fn` applied to the field at `path`. */
export function editField(bytes: Uint8Array, path: Path, fn: (field: CborValue) => CborValue): Uint8Array {
  const v = clone(parse(bytes));
  const { parent, index } = at(v, path);
  parent[index] = fn(parent[index] as CborValue);
  return encodeCbor(v);
}

/** Reads the field at `path`. */
export function getField(bytes: Uint8Array, path: Path): CborValue {
  const { parent, index } = at(parse(bytes), path);
  return parent[index] as CborValue;
}

/** Re-encodes with a field appended to the array at `path` (empty path: the top level). */
export function appendField(bytes: Uint8Array, path: Path, value: CborValue): Uint8Array {
  const v = clone(parse(bytes));
  let node = v;
  for (const i of path) node = (node as CborValue[])[i] as CborValue;
  (node as CborValue[]).push(value);
  return encodeCbor(v);
}

/** Re-encodes with the last field of the array at `path` removed. */
export function dropLastField(bytes: Uint8Array, path: Path = []): Uint8Array {
  const v = clone(parse(bytes));
  let node = v;
  for (const i of path) node = (node as CborValue[])[i] as CborValue;
  (node as CborValue[]).pop();
  return encodeCbor(v);
}

/** Flips the low bit of byte `index` (negative: from the end). */
export function flipByte(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  const i = index < 0 ? out.length + index : index;
  out[i] = (out[i] as number) ^ 0x01;
  return out;
}

/** Flips one bit of a byte string field. */
export function flipInField(field: CborValue, index: number): Uint8Array {
  if (!(field instanceof Uint8Array)) throw new Error('not a byte string');
  return flipByte(field, index);
}

export const truncate = (bytes: Uint8Array, n = 1): Uint8Array => bytes.slice(0, bytes.length - n);

export const withTrailingByte = (bytes: Uint8Array): Uint8Array => Uint8Array.of(...bytes, 0x00);

/**
 * The same array with its header rewritten as indefinite length (0x9f ...
 * 0xff): well-formed CBOR, but not the deterministic encoding.
 */
export function indefiniteArray(bytes: Uint8Array): Uint8Array {
  const first = bytes[0] as number;
  if (first >> 5 !== 4) throw new Error('not an array');
  const info = first & 0x1f;
  const headerLength = info < 24 ? 1 : info === 24 ? 2 : info === 25 ? 3 : 5;
  return Uint8Array.of(0x9f, ...bytes.subarray(headerLength), 0xff);
}

/** The same array with its length written in the 1-byte form (0x98 n) although it fits in the initial byte. */
export function longFormArrayLength(bytes: Uint8Array): Uint8Array {
  const first = bytes[0] as number;
  if (first >> 5 !== 4 || (first & 0x1f) >= 24) throw new Error('not a short array');
  return Uint8Array.of(0x98, first & 0x1f, ...bytes.subarray(1));
}

const PLACEHOLDER = Uint8Array.of(0x48, 0x9a, 0x51, 0xc3, 0x07, 0xe4, 0x2d, 0x6b, 0xf0);

/**
 * Bytes where one integer is written in CBOR's 8-byte form (0x1b), which
 * core's encoder refuses to write (integers stop at 2^32-1, spec/01 §2.1):
 * `build` encodes with the given stand-in in that integer's place.
 */
export function withUint64(build: (standIn: Uint8Array) => Uint8Array, value: bigint): Uint8Array {
  const bytes = build(PLACEHOLDER.subarray(1));
  const at = bytes.findIndex((_, i) => PLACEHOLDER.every((b, j) => bytes[i + j] === b));
  if (at < 0) throw new Error('stand-in not found');
  const out = bytes.slice();
  out[at] = 0x1b;
  new DataView(out.buffer, out.byteOffset + at + 1, 8).setBigUint64(0, value, false);
  return out;
}

/** X25519 public keys every receiver must refuse (spec/02-keys.md §2). */
export const BAD_X25519_KEYS: readonly { name: string; key: Uint8Array }[] = [
  { name: 'small-order point u = 0', key: new Uint8Array(32) },
  { name: 'small-order point u = 1', key: fromHex('0100000000000000000000000000000000000000000000000000000000000000') },
  { name: 'small-order point u = p - 1', key: fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f') },
  { name: 'small-order point (order 8, first)', key: fromHex('e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800') },
  { name: 'small-order point (order 8, second)', key: fromHex('5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157') },
  { name: 'u = p: non-canonical encoding of 0', key: fromHex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f') },
  { name: 'u = 9 with the top bit set: non-canonical', key: fromHex('0900000000000000000000000000000000000000000000000000000000000080') },
];
