/**
 * Byte encodings on the relay's JSON wire: base64url without padding
 * (RFC 4648 §5) for every byte string. spec/09-relay.md §2.
 *
 * Decoding is strict: only the canonical encoding of a byte string is
 * accepted (no padding, no stray characters, zero trailing bits), so a value
 * has exactly one spelling and ids built from it cannot alias.
 */
import { relayError } from '../errors.ts';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Characters needed to carry `bytes` bytes in base64url without padding. */
export function base64UrlLength(bytes: number): number {
  return Math.ceil((bytes * 4) / 3);
}

/**
 * Decodes base64url; throws MALFORMED (naming `field`, never the value) on a
 * non-canonical string or a wrong length.
 */
export function fromBase64Url(text: string, field: string, length?: number | { max: number }): Uint8Array {
  if (typeof text !== 'string' || !BASE64URL.test(text) || text.length % 4 === 1) {
    throw relayError('MALFORMED', `${field}: expected base64url`);
  }
  const buf = Buffer.from(text, 'base64url');
  if (buf.toString('base64url') !== text) throw relayError('MALFORMED', `${field}: non-canonical base64url`);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (typeof length === 'number' && bytes.length !== length) {
    throw relayError('MALFORMED', `${field}: expected ${length} bytes, got ${bytes.length}`);
  }
  if (typeof length === 'object' && bytes.length > length.max) {
    throw relayError('OVERSIZED', `${field}: ${bytes.length} bytes exceeds ${length.max}`);
  }
  return bytes;
}

/** Equality of public byte strings (keys, ids); not for secrets. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
