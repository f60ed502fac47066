// The decoder core had before session 6, kept as a test oracle for the strict reader (spec/01-conventions.md
// §2.2): cbor-x's lenient decoder, a walk that refuses what lies outside the subset, then the canonical
// re-encode check (the input is accepted only if re-encoding the value gives its bytes back). It shares no
// parsing code with codec/cbor-reader.ts, so a rule the reader gets wrong shows up as a difference.
// Its one known fault: cbor-x drops a leading U+FEFF from text over 64 bytes, so the oracle refuses those.
import { Decoder } from 'cbor-x';
import { bytesEqual } from '../../src/bytes.ts';
import { type CborValue, encodeCbor } from '../../src/codec/cbor.ts';
import { fail } from '../../src/errors.ts';

const decoder = new Decoder({ useRecords: false, mapsAsObjects: false, structuredClone: false });

const MAX_DEPTH = 8;

export function oracleDecodeCbor(bytes: Uint8Array, what: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail('MALFORMED', `${what}: expected bytes`);
  if (bytes.length > maxBytes) fail('OVERSIZED', `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`);
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

function checkSubset(v: unknown, what: string, depth: number): void {
  if (depth > MAX_DEPTH) fail('MALFORMED', `${what}: nested too deeply`);
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || v instanceof Uint8Array) return;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) fail('MALFORMED', `${what}: integer outside 0..2^32-1`);
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) checkSubset(item, what, depth + 1);
    return;
  }
  fail('MALFORMED', `${what}: CBOR type outside the Parley subset`);
}
