/**
 * Field readers for the client's CBOR structures. The readers are core's
 * (`fields` from @parley/core, spec/01-conventions.md §2.3), re-exported so
 * SDK modules import from one place and throw exactly core's codes (an
 * over-long array is MALFORMED, a byte string or number over its bound
 * OVERSIZED). Only what core has no use for is written here: text bounded
 * in UTF-8 bytes, and timestamps. Each error names the field, never its value.
 */
import { ParleyError, fields } from '@parley/core';

export const { readArray, readBool, readBytes, readOptional, readUint } = fields;

export function malformed(message: string, field?: string): never {
  throw new ParleyError('MALFORMED', message, field ? { field } : {});
}

/**
 * A text string of at most `maxBytes` UTF-8 bytes: the client's limits
 * (message text, names) are storage and wire sizes, which core's readText
 * (bounded in UTF-16 code units) does not measure. Core's check runs first:
 * it rejects a non-string, and a string over the bound in code units is over
 * it in bytes too (no code unit encodes to fewer than one byte), so the
 * encoding below never runs on an unbounded input.
 */
export function readText(v: unknown, field: string, maxBytes: number): string {
  const text = fields.readText(v, field, maxBytes);
  if (new TextEncoder().encode(text).length > maxBytes) {
    throw new ParleyError('OVERSIZED', `${field}: text longer than ${maxBytes} bytes`, { field });
  }
  return text;
}

/** Timestamps travel as 8-byte big-endian byte strings (ms since the epoch), as on the relay's wire. */
export function timestampToBytes(ms: number): Uint8Array {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError('"timestamp" expected a non-negative safe integer');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms), false);
  return out;
}

export function readTimestamp(v: unknown, field: string): number {
  const b = readBytes(v, field, 8);
  const n = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ParleyError('OVERSIZED', `${field}: timestamp out of range`, { field });
  return Number(n);
}
