/**
 * Where everything sits in an encrypted attachment: chunk counts, sizes and
 * offsets, from the plaintext size and the chunk size alone.
 * spec/11-attachments.md §4 (layout) and §7 (seeking).
 *
 * Pure arithmetic: this module knows nothing of keys or ciphers. Every value
 * is an exact integer because sizes are bounded by MAX_CIPHERTEXT_BYTES.
 */
import { attachment } from '@parley/core';
import { HEADER_BYTES, MAX_CIPHERTEXT_BYTES, TAG_BYTES } from './constants.ts';

export interface Layout {
  readonly plaintextSize: number;
  readonly chunkSize: number;
  /** At least 1: an empty attachment is one empty final chunk. */
  readonly chunkCount: number;
  readonly ciphertextSize: number;
}

/** A run of whole chunks and the ciphertext bytes that hold them. */
export interface ChunkSpan {
  readonly firstChunk: number;
  /** Inclusive. */
  readonly lastChunk: number;
  /** Ciphertext offset of `firstChunk`. */
  readonly start: number;
  /** Ciphertext offset just past `lastChunk`. */
  readonly end: number;
}

/** log2(chunkSize) if it is an allowed chunk size, else -1; and the ciphertext size of a plaintext (may exceed the bound: `layoutOf` refuses that). Core's, shared with the relay. */
export const chunkExponent = attachment.chunkExponent;
export const ciphertextSizeOf = attachment.ciphertextSizeOf;

/**
 * The layout of an attachment. Throws a RangeError for a chunk size the
 * format does not allow or an attachment too large for it (callers checking
 * peer input validate first and raise their own errors).
 */
export function layoutOf(plaintextSize: number, chunkSize: number): Layout {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) throw new RangeError('"plaintextSize" must be a non-negative integer');
  if (chunkExponent(chunkSize) < 0) throw new RangeError('"chunkSize" must be a power of two from 16 B to 4 MiB');
  const ciphertextSize = ciphertextSizeOf(plaintextSize, chunkSize);
  if (ciphertextSize > MAX_CIPHERTEXT_BYTES) throw new RangeError('attachment larger than the format allows (4 GiB of ciphertext)');
  return { plaintextSize, chunkSize, chunkCount: Math.max(1, Math.ceil(plaintextSize / chunkSize)), ciphertextSize };
}

/** Plaintext bytes in chunk `index`: the chunk size, except for the final chunk. */
export function chunkPlaintextLength(layout: Layout, index: number): number {
  checkIndex(layout, index);
  return index < layout.chunkCount - 1 ? layout.chunkSize : layout.plaintextSize - index * layout.chunkSize;
}

/** Ciphertext bytes of chunk `index` (its plaintext plus the tag). */
export function sealedChunkLength(layout: Layout, index: number): number {
  return chunkPlaintextLength(layout, index) + TAG_BYTES;
}

/** Ciphertext offset at which chunk `index` starts. */
export function sealedChunkOffset(layout: Layout, index: number): number {
  checkIndex(layout, index);
  return HEADER_BYTES + index * (layout.chunkSize + TAG_BYTES);
}

/** Ciphertext span of chunks `firstChunk..lastChunk` (inclusive). */
export function chunkSpan(layout: Layout, firstChunk: number, lastChunk: number): ChunkSpan {
  if (lastChunk < firstChunk) throw new RangeError('"lastChunk" must not precede "firstChunk"');
  const start = sealedChunkOffset(layout, firstChunk);
  const end = sealedChunkOffset(layout, lastChunk) + sealedChunkLength(layout, lastChunk);
  return { firstChunk, lastChunk, start, end };
}

/**
 * The chunks, and the ciphertext bytes, that hold plaintext bytes
 * [start, end). An empty range still names the one chunk holding `start`
 * (clamped to the final chunk), so a caller can verify a position.
 */
export function chunkSpanForPlaintext(layout: Layout, start: number, end: number): ChunkSpan {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > layout.plaintextSize) {
    throw new RangeError(`plaintext range [${start}, ${end}) is outside [0, ${layout.plaintextSize})`);
  }
  const last = layout.chunkCount - 1;
  const firstChunk = Math.min(Math.floor(start / layout.chunkSize), last);
  const lastChunk = end > start ? Math.floor((end - 1) / layout.chunkSize) : firstChunk;
  return chunkSpan(layout, firstChunk, lastChunk);
}

function checkIndex(layout: Layout, index: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= layout.chunkCount) {
    throw new RangeError(`chunk index ${index} is outside 0..${layout.chunkCount - 1}`);
  }
}
