/**
 * Constants and limits of the attachment format. spec/11-attachments.md §2-§4.
 * Changing any value here is a format break (a new version byte).
 */
import { utf8 } from '@parley/core';

/** First six bytes of every encrypted attachment: ASCII "PRLYAT". */
export const MAGIC = Uint8Array.of(0x50, 0x52, 0x4c, 0x59, 0x41, 0x54);

/** The format version this implementation writes and reads. */
export const FORMAT_VERSION = 1;

/** Bytes of the attachment key the sender generates for each attachment. */
export const ATTACHMENT_KEY_BYTES = 32;

/** Bytes of the random salt in the header (see KEY_INFO for its job). */
export const SALT_BYTES = 16;

/** Bytes of the key commitment in the header. */
export const COMMITMENT_BYTES = 32;

/** Header: magic (6) || version (1) || chunk-size exponent (1) || salt (16) || commitment (32). */
export const HEADER_BYTES = MAGIC.length + 1 + 1 + SALT_BYTES + COMMITMENT_BYTES;

/** The part of the header that goes into the key derivation (everything before the commitment). */
export const HEADER_PREFIX_BYTES = HEADER_BYTES - COMMITMENT_BYTES;

/** Poly1305 tag appended to every chunk. */
export const TAG_BYTES = 16;

/**
 * HKDF-SHA-256 `info` prefix for the key schedule (spec §3). The header
 * prefix (magic, version, chunk-size exponent) follows it, so a header edited
 * to another chunk size or version derives unrelated keys.
 */
export const KEY_INFO = utf8('Parley v1 attachment');

/**
 * Chunk sizes are powers of two, 2^MIN_CHUNK_EXPONENT..2^MAX_CHUNK_EXPONENT.
 * 16 bytes is the floor only so that test vectors stay readable. 4 MiB is the
 * ceiling because a receiver holds one whole chunk in memory before it can
 * authenticate it, and the sender chooses the size: the bound caps what a
 * hostile sender can make a phone buffer.
 */
export const MIN_CHUNK_EXPONENT = 4;
export const MAX_CHUNK_EXPONENT = 22;

/**
 * 64 KiB, as in age: small enough that a player can start (or seek) after one
 * short range request, large enough that the 16-byte tag per chunk is 0.02%
 * overhead and per-chunk costs vanish next to the cipher.
 */
export const DEFAULT_CHUNK_SIZE = 1 << 16;

/**
 * Largest ciphertext, and so the bound on both size fields of a pointer:
 * 2^32 - 1 bytes (4 GiB), the largest unsigned integer in the CBOR subset of
 * spec/01-conventions.md §2.1. The ciphertext is the larger of the two sizes,
 * so the plaintext is a little smaller (about 4 GiB - 1 MiB at the default
 * chunk size, 2 GiB with 16-byte chunks). 40 times the relay's default upload limit.
 */
export const MAX_CIPHERTEXT_BYTES = 2 ** 32 - 1;
