/**
 * The attachment header and the key schedule it anchors.
 * spec/11-attachments.md §3 (key schedule) and §4.1 (header).
 *
 *   offset  size  field
 *        0     6  magic "PRLYAT"
 *        6     1  format version (1)
 *        7     1  chunk-size exponent e (chunk size = 2^e, 4 <= e <= 22)
 *        8    16  salt (random per attachment)
 *       24    32  key commitment
 *
 * ChaCha20-Poly1305 is not key-committing: one ciphertext can be made to
 * decrypt under two different keys. The commitment (an HKDF output the
 * payload key comes from too) makes the blob name exactly one key, and the
 * SHA-256 digest in the pointer names exactly one blob, so a pointer
 * determines one plaintext. It also lets a seeking player reject a wrong key
 * after fetching 56 bytes, before any chunk.
 */
import { type CryptoBackend, attachment, constantTimeEqual } from '@parley/core';
import {
  FORMAT_VERSION,
  HEADER_BYTES,
  HEADER_PREFIX_BYTES,
  MAGIC,
  MAX_CHUNK_EXPONENT,
  MIN_CHUNK_EXPONENT,
  SALT_BYTES,
} from './constants.ts';
import { fail } from './errors.ts';
import { chunkExponent } from './layout.ts';

const VERSION_OFFSET = MAGIC.length;
const EXPONENT_OFFSET = VERSION_OFFSET + 1;
const SALT_OFFSET = EXPONENT_OFFSET + 1;

/** The two secrets one attachment key yields for one header. */
export type AttachmentKeys = attachment.AttachmentKeys;

/** Header bytes before the commitment: magic, version, exponent, salt. */
export function headerPrefix(chunkSize: number, salt: Uint8Array): Uint8Array {
  const e = chunkExponent(chunkSize);
  if (e < 0) throw new RangeError('"chunkSize" must be a power of two from 16 B to 4 MiB');
  if (!(salt instanceof Uint8Array) || salt.length !== SALT_BYTES) throw new RangeError(`"salt" expected ${SALT_BYTES} bytes`);
  const out = new Uint8Array(HEADER_PREFIX_BYTES);
  out.set(MAGIC, 0);
  out[VERSION_OFFSET] = FORMAT_VERSION;
  out[EXPONENT_OFFSET] = e;
  out.set(salt, SALT_OFFSET);
  return out;
}

/**
 * HKDF-SHA-256(ikm = attachment key, salt = header salt,
 * info = "Parley v1 attachment" || magic || version || exponent, L = 64):
 * the commitment and the payload key. Core's, shared with the relay's report check.
 */
export const deriveAttachmentKeys = attachment.deriveAttachmentKeys;

/** A full header for a new attachment, and its keys. */
export function buildHeader(
  backend: CryptoBackend,
  attachmentKey: Uint8Array,
  chunkSize: number,
  salt: Uint8Array,
): { header: Uint8Array; keys: AttachmentKeys } {
  const prefix = headerPrefix(chunkSize, salt);
  const keys = deriveAttachmentKeys(backend, attachmentKey, prefix);
  const header = new Uint8Array(HEADER_BYTES);
  header.set(prefix, 0);
  header.set(keys.commitment, HEADER_PREFIX_BYTES);
  return { header, keys };
}

/**
 * Checks a received header against the pointer's chunk size and key, in the
 * order spec §6.2 fixes (magic, version, chunk size, commitment), and returns
 * the payload key. Throws AttachmentError bad-header or wrong-key.
 */
export function openHeader(backend: CryptoBackend, attachmentKey: Uint8Array, header: Uint8Array, chunkSize: number): Uint8Array {
  if (header.length !== HEADER_BYTES) throw new RangeError(`"header" expected ${HEADER_BYTES} bytes`);
  if (!constantTimeEqual(header.subarray(0, MAGIC.length), MAGIC)) fail.header('MALFORMED', 'not an attachment (bad magic)');
  const version = header[VERSION_OFFSET] as number;
  if (version !== FORMAT_VERSION) fail.header('UNSUPPORTED_VERSION', `unsupported format version ${version}`, { version });
  const e = header[EXPONENT_OFFSET] as number;
  if (e < MIN_CHUNK_EXPONENT || e > MAX_CHUNK_EXPONENT) fail.header('MALFORMED', `chunk-size exponent ${e} out of range`, { exponent: e });
  if (2 ** e !== chunkSize) fail.header('MALFORMED', 'chunk size differs from the pointer', { exponent: e, chunkSize });
  const keys = deriveAttachmentKeys(backend, attachmentKey, header.subarray(0, HEADER_PREFIX_BYTES));
  if (!constantTimeEqual(keys.commitment, header.subarray(HEADER_PREFIX_BYTES))) {
    keys.payloadKey.fill(0);
    fail.wrongKey();
  }
  return keys.payloadKey;
}
