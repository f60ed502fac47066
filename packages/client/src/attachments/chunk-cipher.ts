/**
 * Sealing and opening single chunks: the STREAM construction of age
 * (Hoang, Reyhanitabar, Rogaway and Vizár's "online AE" STREAM).
 * spec/11-attachments.md §4.2.
 *
 * Chunk i is ChaCha20-Poly1305 under the payload key with
 *   nonce = i as 11 bytes big-endian || 0x01 if it is the final chunk else 0x00
 * and empty associated data (the header is bound through the key schedule).
 * A chunk therefore authenticates only at its own index and with its own
 * "final" status: moving, repeating, dropping or appending chunks, or ending
 * the stream early, makes some tag fail or some chunk go missing.
 *
 * This module knows nothing of streams, headers or digests.
 */
import { type CryptoBackend, attachment } from '@parley/core';
import { TAG_BYTES } from './constants.ts';
import { fail } from './errors.ts';
import { type Layout, chunkPlaintextLength } from './layout.ts';

const EMPTY = new Uint8Array(0);

/** The 12-byte nonce of chunk `index` (core's, shared with the relay's report check). */
export const chunkNonce = attachment.chunkNonce;

/** Seals one chunk. Low level: `ChunkSealer` enforces the order and sizes. */
export function sealChunk(
  backend: CryptoBackend,
  payloadKey: Uint8Array,
  index: number,
  final: boolean,
  plaintext: Uint8Array,
): Uint8Array {
  return backend.aeadSeal(payloadKey, chunkNonce(index, final), plaintext, EMPTY);
}

/** Opens one chunk, or returns null if its tag does not verify at (index, final). */
export function openChunk(
  backend: CryptoBackend,
  payloadKey: Uint8Array,
  index: number,
  final: boolean,
  sealed: Uint8Array,
): Uint8Array | null {
  return backend.aeadOpen(payloadKey, chunkNonce(index, final), sealed, EMPTY);
}

/**
 * Seals chunks 0, 1, 2, ... in order. Every chunk but the last must be
 * exactly `chunkSize` bytes; the last holds 1..chunkSize bytes (0 only when
 * it is also the first). After the final chunk the key is wiped and further
 * calls throw, so no nonce is ever used twice.
 */
export class ChunkSealer {
  readonly #backend: CryptoBackend;
  readonly #chunkSize: number;
  #payloadKey: Uint8Array | null;
  #next = 0;

  constructor(backend: CryptoBackend, payloadKey: Uint8Array, chunkSize: number) {
    this.#backend = backend;
    this.#payloadKey = payloadKey;
    this.#chunkSize = chunkSize;
  }

  /** Chunks sealed so far. */
  get count(): number {
    return this.#next;
  }

  seal(plaintext: Uint8Array, final: boolean): Uint8Array {
    const key = this.#payloadKey;
    if (key === null) throw new Error('ChunkSealer: the final chunk was already sealed');
    if (plaintext.length > this.#chunkSize) throw new RangeError('chunk longer than the chunk size');
    if (!final && plaintext.length !== this.#chunkSize) throw new RangeError('a non-final chunk must be exactly the chunk size');
    if (final && plaintext.length === 0 && this.#next > 0) throw new RangeError('only an empty attachment has an empty final chunk');
    const sealed = sealChunk(this.#backend, key, this.#next, final, plaintext);
    this.#next++;
    if (final) this.destroy();
    return sealed;
  }

  /** Wipes the payload key (best effort: JS cannot promise no copy exists). */
  destroy(): void {
    this.#payloadKey?.fill(0);
    this.#payloadKey = null;
  }
}

/**
 * Opens chunks of one attachment, in any order (a seeking player jumps).
 * Which chunk is final comes from the layout, i.e. from the pointer's sizes;
 * the final flag in the nonce makes the tag confirm it.
 */
export class ChunkOpener {
  readonly layout: Layout;
  readonly #backend: CryptoBackend;
  #payloadKey: Uint8Array | null;

  constructor(backend: CryptoBackend, payloadKey: Uint8Array, layout: Layout) {
    this.#backend = backend;
    this.#payloadKey = payloadKey;
    this.layout = layout;
  }

  /** The plaintext of chunk `index`; throws AttachmentError chunk-auth if its tag fails there. */
  open(index: number, sealed: Uint8Array): Uint8Array {
    const key = this.#payloadKey;
    if (key === null) throw new Error('ChunkOpener: already destroyed');
    if (sealed.length !== chunkPlaintextLength(this.layout, index) + TAG_BYTES) throw new RangeError(`chunk ${index}: wrong sealed length`);
    const plaintext = openChunk(this.#backend, key, index, index === this.layout.chunkCount - 1, sealed);
    if (plaintext === null) fail.chunkAuth(index);
    return plaintext;
  }

  destroy(): void {
    this.#payloadKey?.fill(0);
    this.#payloadKey = null;
  }
}
