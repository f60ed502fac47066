/**
 * The attachment format's constants, its layout arithmetic and its key
 * schedule: everything both the client (which encrypts and decrypts
 * attachments) and the relay (which checks a reported blob against its
 * pointer, spec/14-franking.md §6 step 5) must agree on. One copy, here.
 * spec/11-attachments.md §2-§4. Changing a value is a format break.
 */
import { utf8 } from '../bytes.ts';
import type { CryptoBackend } from '../crypto/backend.ts';

/** First six bytes of every encrypted attachment: ASCII "PRLYAT". */
export const MAGIC = Uint8Array.of(0x50, 0x52, 0x4c, 0x59, 0x41, 0x54);
/** The format version this implementation writes and reads. */
export const FORMAT_VERSION = 1;
/** Bytes of the attachment key the sender generates for each attachment. */
export const ATTACHMENT_KEY_BYTES = 32;
/** Bytes of the random salt in the header. */
export const SALT_BYTES = 16;
/** Bytes of the key commitment in the header. */
export const COMMITMENT_BYTES = 32;
/** Header: magic (6) || version (1) || chunk-size exponent (1) || salt (16) || commitment (32). */
export const HEADER_BYTES = MAGIC.length + 1 + 1 + SALT_BYTES + COMMITMENT_BYTES;
/** The part of the header that goes into the key derivation (everything before the commitment). */
export const HEADER_PREFIX_BYTES = HEADER_BYTES - COMMITMENT_BYTES;
/** Poly1305 tag appended to every chunk. */
export const TAG_BYTES = 16;
/** Digest of the whole ciphertext: SHA-256. */
export const DIGEST_BYTES = 32;
/**
 * HKDF-SHA-256 `info` prefix for the key schedule (spec 11 §3). The header
 * prefix (magic, version, chunk-size exponent) follows it, so a header edited
 * to another chunk size or version derives unrelated keys.
 */
export const KEY_INFO = utf8('Parley v1 attachment');
/**
 * Chunk sizes are powers of two, 2^4..2^22. 16 bytes is the floor only so
 * that test vectors stay readable; 4 MiB is the ceiling because a receiver
 * holds one whole chunk in memory before it can authenticate it, and the
 * sender chooses the size.
 */
export const MIN_CHUNK_EXPONENT = 4;
export const MAX_CHUNK_EXPONENT = 22;
/** 64 KiB, as in age: short range requests for players, 0.02% tag overhead. */
export const DEFAULT_CHUNK_SIZE = 1 << 16;
/** Largest ciphertext: 2^32 - 1 bytes, the largest unsigned integer of the CBOR subset (01 §2.1). */
export const MAX_CIPHERTEXT_BYTES = 2 ** 32 - 1;

const VERSION_OFFSET = MAGIC.length;
const EXPONENT_OFFSET = VERSION_OFFSET + 1;
const SALT_OFFSET = EXPONENT_OFFSET + 1;
const NONCE_BYTES = 12;

/** log2(chunkSize) if it is an allowed chunk size, else -1. */
export function chunkExponent(chunkSize: number): number {
  for (let e = MIN_CHUNK_EXPONENT; e <= MAX_CHUNK_EXPONENT; e++) if (chunkSize === 2 ** e) return e;
  return -1;
}

/** Ciphertext size for a plaintext size and chunk size: the header, the plaintext, and a tag per chunk. */
export function ciphertextSizeOf(plaintextSize: number, chunkSize: number): number {
  return HEADER_BYTES + plaintextSize + Math.max(1, Math.ceil(plaintextSize / chunkSize)) * TAG_BYTES;
}

/** Chunks of an attachment: at least 1 (an empty attachment is one empty final chunk). */
export function chunkCountOf(plaintextSize: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(plaintextSize / chunkSize));
}

/** The two secrets one attachment key yields for one header. */
export interface AttachmentKeys {
  /** Public once written: it goes into the header. */
  readonly commitment: Uint8Array;
  /** Seals every chunk. Secret. */
  readonly payloadKey: Uint8Array;
}

/**
 * HKDF-SHA-256(ikm = attachment key, salt = header salt,
 * info = "Parley v1 attachment" || magic || version || exponent, L = 64):
 * the first 32 bytes are the commitment, the last 32 the payload key.
 * `prefix` is the header's first HEADER_PREFIX_BYTES bytes.
 */
export function deriveAttachmentKeys(backend: CryptoBackend, attachmentKey: Uint8Array, prefix: Uint8Array): AttachmentKeys {
  if (!(attachmentKey instanceof Uint8Array) || attachmentKey.length !== ATTACHMENT_KEY_BYTES) {
    throw new RangeError(`"key" expected ${ATTACHMENT_KEY_BYTES} bytes`);
  }
  const info = new Uint8Array(KEY_INFO.length + SALT_OFFSET);
  info.set(KEY_INFO, 0);
  info.set(prefix.subarray(0, SALT_OFFSET), KEY_INFO.length);
  const okm = backend.hkdfSha256(attachmentKey, prefix.subarray(SALT_OFFSET, HEADER_PREFIX_BYTES), info, 2 * COMMITMENT_BYTES);
  const keys = { commitment: okm.slice(0, COMMITMENT_BYTES), payloadKey: okm.slice(COMMITMENT_BYTES) };
  okm.fill(0);
  return keys;
}

/** The 12-byte nonce of chunk `index` (STREAM, spec 11 §4.2): index as 11 bytes big-endian || final flag. */
export function chunkNonce(index: number, final: boolean): Uint8Array {
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError('"index" must be a non-negative safe integer');
  const nonce = new Uint8Array(NONCE_BYTES);
  const view = new DataView(nonce.buffer);
  // Bytes 0..2 stay zero: indices are below 2^53.
  view.setUint32(3, Math.floor(index / 2 ** 32), false);
  view.setUint32(7, index >>> 0, false);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Header byte offsets, for the readers of a header. */
export const HEADER_OFFSETS = { version: VERSION_OFFSET, exponent: EXPONENT_OFFSET, salt: SALT_OFFSET } as const;
