/**
 * Field readers for the client's CBOR structures (core keeps its own
 * private). Each checks one type, length or range and throws a core
 * `ParleyError` (MALFORMED / OVERSIZED) naming the field, never its value.
 */
import { ParleyError } from '@parley/core';

export function malformed(message: string, field?: string): never {
  throw new ParleyError('MALFORMED', message, field ? { field } : {});
}

export function readArray(v: unknown, what: string, length: number | { min: number; max: number }): unknown[] {
  if (!Array.isArray(v)) malformed(`${what}: expected an array`, what);
  const ok = typeof length === 'number' ? v.length === length : v.length >= length.min && v.length <= length.max;
  if (!ok) {
    if (typeof length !== 'number' && v.length > length.max) {
      throw new ParleyError('OVERSIZED', `${what}: too many items (${v.length})`, { field: what, items: v.length });
    }
    malformed(`${what}: wrong number of items (${v.length})`, what);
  }
  return v;
}

export function readBytes(v: unknown, field: string, length: number | { min?: number; max: number }): Uint8Array {
  if (!(v instanceof Uint8Array)) malformed(`${field}: expected a byte string`, field);
  if (typeof length === 'number') {
    if (v.length !== length) malformed(`${field}: expected ${length} bytes, got ${v.length}`, field);
  } else {
    if (v.length > length.max) throw new ParleyError('OVERSIZED', `${field}: ${v.length} bytes exceeds ${length.max}`, { field });
    if (v.length < (length.min ?? 0)) malformed(`${field}: ${v.length} bytes is too short`, field);
  }
  return new Uint8Array(v);
}

export function readUint(v: unknown, field: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) malformed(`${field}: expected an unsigned integer`, field);
  if (v > max) throw new ParleyError('OVERSIZED', `${field}: exceeds ${max}`, { field });
  return v;
}

export function readBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') malformed(`${field}: expected a boolean`, field);
  return v;
}

export function readText(v: unknown, field: string, maxBytes: number): string {
  if (typeof v !== 'string') malformed(`${field}: expected a text string`, field);
  // UTF-16 length bounds the UTF-8 length within a factor of 3 on the cheap side.
  if (v.length > maxBytes || new TextEncoder().encode(v).length > maxBytes) {
    throw new ParleyError('OVERSIZED', `${field}: text longer than ${maxBytes} bytes`, { field });
  }
  return v;
}

export function readOptional<T>(v: unknown, read: (x: unknown) => T): T | null {
  return v === null ? null : read(v);
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
