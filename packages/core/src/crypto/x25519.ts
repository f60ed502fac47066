/**
 * X25519 public-key validation and the checked Diffie-Hellman function.
 * spec/02-keys.md §2.3: every X25519 public key received from outside must be
 * canonical (little-endian value below p = 2^255 - 19, top bit clear) and
 * not one of the points of small order; every DH output must be non-zero.
 *
 * Keys we generate ourselves are always canonical, so this rejects no honest
 * peer while closing the door on contributory-behaviour attacks.
 */
import { bytesEqual, fromHex, isAllZero } from '../bytes.ts';
import { fail } from '../errors.ts';
import type { CryptoBackend } from './backend.ts';
import type { CryptoProvider } from './provider.ts';

/**
 * The canonical encodings of the points of order 1, 2, 4 and 8 on
 * Curve25519 (the u-coordinates 0, 1, p-1 and the two of order 8).
 * Non-canonical encodings (>= p, or top bit set) are rejected before this
 * list is consulted.
 */
const LOW_ORDER_POINTS: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
].map(fromHex);

/** True when `u` (32 bytes, little-endian) is the canonical encoding of a value below 2^255 - 19. */
export function isCanonicalX25519(u: Uint8Array): boolean {
  if (u.length !== 32) return false;
  const top = u[31] as number;
  if (top & 0x80) return false;
  if (top !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (u[i] !== 0xff) return true;
  return (u[0] as number) < 0xed;
}

export function isLowOrderX25519(u: Uint8Array): boolean {
  return LOW_ORDER_POINTS.some((p) => bytesEqual(p, u));
}

/**
 * Validate an X25519 public key received from outside. `field` names it in
 * the error (never its value). A value that is not 32 bytes is MALFORMED, a
 * shape error like every fixed-size field of the wire (spec/01-conventions.md
 * §2.3; decoders raise it before calling this); BAD_PUBLIC_KEY is only for 32
 * bytes that are not an acceptable key (spec/02-keys.md §2.3).
 */
export function checkX25519PublicKey(u: Uint8Array, field: string): Uint8Array {
  if (!(u instanceof Uint8Array) || u.length !== 32) {
    fail('MALFORMED', `${field}: X25519 public key must be 32 bytes`, { field });
  }
  if (!isCanonicalX25519(u)) fail('BAD_PUBLIC_KEY', `${field}: non-canonical X25519 public key`, { field });
  if (isLowOrderX25519(u)) fail('BAD_PUBLIC_KEY', `${field}: X25519 public key of small order`, { field });
  return u;
}

/** X25519 with the all-zero output rejected (RFC 7748 §6.1). */
export function dh(backend: CryptoBackend, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  const out = backend.x25519(privateKey, publicKey);
  if (isAllZero(out)) fail('WEAK_KEY', 'X25519 output is all zero');
  return out;
}

/**
 * An X25519 key pair. Here rather than in the ratchet because the handshake
 * (ephemeral key, signed prekey) and the ratchet both make them, and the
 * handshake must not import the ratchet layer (ARCHITECTURE.md, checked by
 * .dependency-cruiser.cjs "handshake-below-ratchet").
 */
export interface DhKeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function generateDhKeyPair(p: CryptoProvider): DhKeyPair {
  const privateKey = p.random(32);
  return { privateKey, publicKey: p.backend.x25519PublicKey(privateKey) };
}
