/**
 * Field readers for decoded CBOR structures. Each one checks a type, a length
 * or a range and throws a `ParleyError` that names the field (never its
 * value). Byte strings are copied, so a decoded structure never aliases the
 * caller's input buffer. spec/01-conventions.md §2.3.
 */
import { fail } from '../errors.ts';

export function readArray(v: unknown, what: string, length: number | { min: number; max: number }): unknown[] {
  if (!Array.isArray(v)) fail('MALFORMED', `${what}: expected an array`);
  const ok = typeof length === 'number' ? v.length === length : v.length >= length.min && v.length <= length.max;
  if (!ok) fail('MALFORMED', `${what}: wrong number of fields (${v.length})`, { fields: v.length });
  return v;
}

/** A version field: must equal one of `supported`. */
export function readVersion(v: unknown, what: string, supported: readonly number[]): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail('MALFORMED', `${what}: version must be an integer`);
  if (!supported.includes(v)) fail('UNSUPPORTED_VERSION', `${what}: unsupported version ${v}`, { version: v });
  return v;
}

export function readBytes(v: unknown, field: string, length: number | { min?: number; max: number }): Uint8Array {
  if (!(v instanceof Uint8Array)) fail('MALFORMED', `${field}: expected a byte string`, { field });
  if (typeof length === 'number') {
    if (v.length !== length) fail('MALFORMED', `${field}: expected ${length} bytes, got ${v.length}`, { field, length: v.length });
  } else {
    if (v.length > length.max) fail('OVERSIZED', `${field}: ${v.length} bytes exceeds ${length.max}`, { field, length: v.length });
    if (v.length < (length.min ?? 0)) fail('MALFORMED', `${field}: ${v.length} bytes is too short`, { field, length: v.length });
  }
  return new Uint8Array(v);
}

export function readUint(v: unknown, field: string, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail('MALFORMED', `${field}: expected an unsigned integer`, { field });
  if (v > max) fail('OVERSIZED', `${field}: ${v} exceeds ${max}`, { field });
  return v;
}

export function readBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') fail('MALFORMED', `${field}: expected a boolean`, { field });
  return v;
}

export function readText(v: unknown, field: string, maxLength: number): string {
  if (typeof v !== 'string') fail('MALFORMED', `${field}: expected a text string`, { field });
  if (v.length > maxLength) fail('OVERSIZED', `${field}: text too long`, { field });
  return v;
}

export function readOptional<T>(v: unknown, read: (x: unknown) => T): T | null {
  return v === null ? null : read(v);
}

/**
 * An array whose element `versionIndex` is a version: the version is checked
 * before the field count, so a structure from a future version is reported
 * as UNSUPPORTED_VERSION rather than MALFORMED. For stored records, `tag`
 * (element 0) is checked first.
 */
export function readVersionedArray(
  v: unknown,
  what: string,
  supported: readonly number[],
  length: number,
  options: { versionIndex?: number; tag?: string } = {},
): unknown[] {
  const versionIndex = options.versionIndex ?? 0;
  if (!Array.isArray(v) || v.length <= versionIndex) fail('MALFORMED', `${what}: expected an array with a version`);
  if (options.tag !== undefined) readTag(v[0], what, options.tag);
  readVersion(v[versionIndex], what, supported);
  return readArray(v, what, length);
}

/** A format tag for stored records ("parley/session-record" and the like). */
export function readTag(v: unknown, what: string, expected: string): void {
  if (v !== expected) fail('BAD_RECORD', `${what}: expected format tag ${expected}`);
}
