/**
 * Deterministic CBOR as spec/01-conventions.md §2 defines it, on cborg (a
 * different library from core's cbor-x). Decoding walks cborg's tokens, so
 * each rule of §2.2 is checked directly: cborg's strict mode refuses
 * over-long integer and length forms and indefinite lengths; this module
 * refuses maps, tags, floats, undefined and other simple values, negative
 * integers, integers above 2^32-1, invalid UTF-8, nesting deeper than 8, trailing bytes and
 * empty input.
 */
import { Tokenizer, Type, encode as cborgEncode } from 'cborg';
import { fail } from './errors.mjs';

const TOKENIZER_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: true,
  retainStringBytes: true,
};
const MAX_DEPTH = 8;
const MAX_UINT = 0xffffffff;
// ignoreBOM: a leading U+FEFF is a character of the text, kept (the default would strip it, rewriting valid text).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** CBOR(v) for the subset: arrays, byte strings, text, unsigned integers, booleans, null. */
export function encode(value) {
  return cborgEncode(value);
}

/** Decodes exactly one item of the subset, at most maxBytes long. `what` names the structure in errors. */
export function decode(bytes, what, maxBytes) {
  if (bytes.length > maxBytes) fail('OVERSIZED', `${what}: ${bytes.length} bytes exceeds ${maxBytes}`);
  if (bytes.length === 0) fail('MALFORMED', `${what}: empty`);
  let tokenizer;
  let value;
  try {
    tokenizer = new Tokenizer(bytes, TOKENIZER_OPTIONS);
    value = readItem(tokenizer, what, 0);
  } catch (e) {
    if (e?.code) throw e;
    fail('MALFORMED', `${what}: not well-formed deterministic CBOR (${e.message})`);
  }
  if (!tokenizer.done()) fail('MALFORMED', `${what}: trailing bytes`);
  return value;
}

function readItem(tokenizer, what, depth) {
  if (tokenizer.done()) fail('MALFORMED', `${what}: truncated`);
  // An item may be enclosed in at most MAX_DEPTH arrays (the top-level item is at depth 0).
  if (depth > MAX_DEPTH) fail('MALFORMED', `${what}: nested deeper than ${MAX_DEPTH}`);
  const token = tokenizer.next();
  const t = token.type;
  if (Type.equals(t, Type.uint)) {
    if (typeof token.value !== 'number' || token.value > MAX_UINT) fail('MALFORMED', `${what}: integer above 2^32-1`);
    return token.value;
  }
  // 01 §2.2: negative integers are outside the subset, refused by the decoder itself (D6).
  if (Type.equals(t, Type.negint)) fail('MALFORMED', `${what}: negative integer`);
  if (Type.equals(t, Type.bytes)) return Uint8Array.from(token.value);
  if (Type.equals(t, Type.string)) {
    try {
      return utf8Decoder.decode(token.byteValue);
    } catch {
      fail('MALFORMED', `${what}: invalid UTF-8`);
    }
  }
  if (Type.equals(t, Type.true)) return true;
  if (Type.equals(t, Type.false)) return false;
  if (Type.equals(t, Type.null)) return null;
  if (Type.equals(t, Type.array)) {
    const out = [];
    for (let i = 0; i < token.value; i++) out.push(readItem(tokenizer, what, depth + 1));
    return out;
  }
  fail('MALFORMED', `${what}: CBOR ${t.name} is outside the Parley subset`);
}

// ---- field readers (spec/01-conventions.md §2.3) --------------------------

export function readArray(v, what, length) {
  if (!Array.isArray(v)) fail('MALFORMED', `${what}: not an array`);
  const ok = typeof length === 'number' ? v.length === length : v.length >= length.min && v.length <= length.max;
  if (!ok) fail('MALFORMED', `${what}: ${v.length} fields`);
  return v;
}

export function readVersion(v, what) {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail('MALFORMED', `${what}: version is not an integer`);
  if (v !== 1) fail('UNSUPPORTED_VERSION', `${what}: version ${v}`);
  return v;
}

/** `size`: a number (exact length) or { min?, max }. */
export function readBytes(v, field, size) {
  if (!(v instanceof Uint8Array)) fail('MALFORMED', `${field}: not a byte string`);
  if (typeof size === 'number') {
    if (v.length !== size) fail('MALFORMED', `${field}: ${v.length} bytes, expected ${size}`);
  } else {
    if (v.length > size.max) fail('OVERSIZED', `${field}: longer than ${size.max}`);
    if (v.length < (size.min ?? 0)) fail('MALFORMED', `${field}: shorter than ${size.min}`);
  }
  return v;
}

export function readUint(v, field, max = MAX_UINT) {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail('MALFORMED', `${field}: not an unsigned integer`);
  if (v > max) fail('OVERSIZED', `${field}: above ${max}`);
  return v;
}

export function readBool(v, field) {
  if (typeof v !== 'boolean') fail('MALFORMED', `${field}: not a boolean`);
  return v;
}

export const readOptional = (v, read) => (v === null ? null : read(v));

export function readTag(v, what, expected) {
  if (v !== expected) fail('BAD_RECORD', `${what}: format tag is not ${expected}`);
}
