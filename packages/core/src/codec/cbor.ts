/**
 * The only module that imports cbor-x. spec/01-conventions.md §2.
 *
 * Parley encodes everything as deterministic CBOR (RFC 8949 §4.2.1): definite
 * lengths, shortest-form integers and lengths, byte strings without tags, no
 * floats, no maps (every structure is an array with a fixed field order).
 *
 * Decoding is strict: cbor-x accepts non-canonical forms (indefinite
 * lengths, over-long integers, duplicate map keys), so after decoding we
 * re-encode and require the same bytes. That makes every wire structure have
 * exactly one encoding, so signatures and associated data over re-encoded
 * values equal those over the received bytes, and nothing is malleable.
 */
import { Decoder, Encoder } from 'cbor-x';
import { bytesEqual } from '../bytes.ts';
import { fail } from '../errors.ts';

// Pinned options: no record/structure extensions, no tags on byte strings,
// no float packing. Changing any of these is a wire break.
const encoder = new Encoder({
  useRecords: false,
  tagUint8Array: false,
  mapsAsObjects: false,
  variableMapSize: true,
  useFloat32: 0,
  structuredClone: false,
  pack: false,
});

const decoder = new Decoder({
  useRecords: false,
  mapsAsObjects: false,
  structuredClone: false,
});

/** A CBOR data item in the subset Parley uses. */
export type CborValue = number | string | boolean | null | Uint8Array | CborValue[];

export function encodeCbor(value: CborValue): Uint8Array {
  const out = encoder.encode(value);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decode `bytes` as exactly one canonical CBOR item no longer than
 * `maxBytes`. `what` names the structure in errors.
 */
export function decodeCbor(bytes: Uint8Array, what: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail('MALFORMED', `${what}: expected bytes`);
  if (bytes.length > maxBytes)
    fail('OVERSIZED', `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`, { length: bytes.length, limit: maxBytes });
  if (bytes.length === 0) fail('MALFORMED', `${what}: empty input`);
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch {
    fail('MALFORMED', `${what}: not well-formed CBOR`);
  }
  checkSubset(value, what, 0);
  let again: Uint8Array;
  try {
    again = encodeCbor(value as CborValue);
  } catch {
    fail('MALFORMED', `${what}: CBOR outside the Parley subset`);
  }
  if (!bytesEqual(again, bytes)) fail('MALFORMED', `${what}: non-canonical CBOR encoding`);
  return value;
}

const MAX_DEPTH = 8;

/** Rejects anything outside the subset: maps, tags, floats, negative or >32-bit integers, bigints, undefined, deep nesting. */
function checkSubset(v: unknown, what: string, depth: number): void {
  if (depth > MAX_DEPTH) fail('MALFORMED', `${what}: nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || v instanceof Uint8Array) return;
  if (typeof v === 'number') {
    // Every integer in Parley is an unsigned 32-bit value (cbor-x would
    // write larger ones as floats, so nothing larger is ever valid).
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail('MALFORMED', `${what}: integer outside 0..2^32-1`);
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) checkSubset(item, what, depth + 1);
    return;
  }
  fail('MALFORMED', `${what}: CBOR type outside the Parley subset`);
}
