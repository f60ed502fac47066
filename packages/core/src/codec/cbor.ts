/**
 * Parley's CBOR (spec/01-conventions.md §2): the pinned encoder, and
 * `decodeCbor`, the strict decoder every stored record and wire structure
 * is read with.
 *
 * Parley encodes everything as deterministic CBOR (RFC 8949 §4.2.1): definite
 * lengths, shortest-form integers and lengths, byte strings without tags, no
 * floats, no maps (every structure is an array with a fixed field order).
 * Every value therefore has exactly one encoding, so signatures and
 * associated data over re-encoded values equal those over the received
 * bytes, and nothing is malleable.
 *
 * Encoding goes through cbor-x (this is the only module that imports it).
 * Decoding does not: cbor-x's decoder is lenient and rewrote valid text (it
 * dropped a leading U+FEFF), so the one-pass strict reader of
 * cbor-reader.ts decodes, refusing every non-canonical form as it reads.
 */
import { Encoder } from 'cbor-x';
import { readCborCopied } from './cbor-reader.ts';

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

/** A CBOR data item in the subset Parley uses. */
export type CborValue = number | string | boolean | null | Uint8Array | CborValue[];

export function encodeCbor(value: CborValue): Uint8Array {
  const out = encoder.encode(value);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decode `bytes` as exactly one canonical CBOR item no longer than
 * `maxBytes` (OVERSIZED before parsing; MALFORMED for anything outside the
 * subset or not canonical). `what` names the structure in errors.
 *
 * The value shares no memory with `bytes`: the caller may reuse or overwrite
 * it afterwards. Byte strings are plain Uint8Arrays (also from a Node Buffer
 * input); one of 1 to 64 bytes has a buffer of its own, longer ones share
 * one new buffer that holds exactly the long byte strings of this value, and
 * empty ones share one zero-length buffer.
 * Copy one before transferring or detaching its `.buffer` (the field readers
 * of fields.ts return such copies).
 */
export function decodeCbor(bytes: Uint8Array, what: string, maxBytes: number): unknown {
  return readCborCopied(bytes, what, maxBytes);
}
