/**
 * The franking tag of a v2 message: a commitment to its plaintext and its
 * sender under a fresh per-message franking key. spec/design/formats-v2.md §6.1.
 *
 *   frankingTag = HMAC-SHA256(fk, CBOR(["Parley v2 franking tag",
 *                                       senderAccount: bstr .size 32,
 *                                       senderDeviceId: uint,
 *                                       plaintext: bstr]))
 *
 * The tag travels as authenticated data (the 1:1 message's AD, the group
 * header); the key travels inside the encrypted body. Every receiver
 * recomputes the tag and compares in constant time, so a ciphertext that
 * opens under two keys (ChaCha20-Poly1305 is not key-committing) cannot show
 * two receivers two plaintexts without an HMAC-SHA256 collision.
 *
 * This module knows nothing of ratchets, groups or sealing.
 */
import { abytes, constantTimeEqual } from '../bytes.ts';
import { encodeCbor } from '../codec/cbor.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { Label } from '../labels.ts';

/** Bytes of a franking key and of a franking tag. */
export const FRANKING_KEY_BYTES = 32;
export const FRANKING_TAG_BYTES = 32;

/** The authenticated sender a tag commits to: the account key and the device id. */
export interface FrankingSender {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

/**
 * Computes the franking tag.
 * @example
 * const tag = frankingTag(backend, fk, { accountKey, deviceId: 1 }, utf8('hi')); // 32 bytes
 */
export function frankingTag(b: CryptoBackend, frankingKey: Uint8Array, sender: FrankingSender, plaintext: Uint8Array): Uint8Array {
  abytes(frankingKey, 'frankingKey', FRANKING_KEY_BYTES);
  abytes(sender.accountKey, 'sender.accountKey', 32);
  abytes(plaintext, 'plaintext');
  if (!Number.isInteger(sender.deviceId) || sender.deviceId < 0 || sender.deviceId > 0xffffffff) {
    throw new RangeError('"sender.deviceId" expected an unsigned 32-bit integer');
  }
  return b.hmacSha256(frankingKey, encodeCbor([Label.frankingTag, sender.accountKey, sender.deviceId, plaintext]));
}

/** Recomputes the tag and compares it in constant time with `expected`. */
export function checkFrankingTag(
  b: CryptoBackend,
  frankingKey: Uint8Array,
  sender: FrankingSender,
  plaintext: Uint8Array,
  expected: Uint8Array,
): boolean {
  return constantTimeEqual(frankingTag(b, frankingKey, sender, plaintext), expected);
}
