/**
 * Checks that a blob is the one attachment a pointer commits to: exactly
 * `ciphertextSize` bytes, a header whose commitment matches the pointer's
 * key, every chunk authenticating at its position under that key, and the
 * SHA-256 of the whole blob equal to the pointer's digest
 * (spec/11-attachments.md §6.2, spec/14-franking.md §6 step 5).
 *
 * Streaming, so a verifier never holds more than one sealed chunk (at most
 * 4 MiB + 16) of a file that may be up to 4 GiB; the plaintext of each chunk
 * is wiped as soon as its tag verified. It answers with a reason, never
 * with key or content bytes.
 */
import { constantTimeEqual } from '../bytes.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { streamingSha256 } from '../crypto/streaming-sha256.ts';
import {
  COMMITMENT_BYTES,
  FORMAT_VERSION,
  HEADER_BYTES,
  HEADER_OFFSETS,
  HEADER_PREFIX_BYTES,
  MAGIC,
  TAG_BYTES,
  chunkCountOf,
  chunkNonce,
  deriveAttachmentKeys,
} from './format.ts';
import { type AttachmentKeyInfo, checkAttachmentKeyInfo } from './pointer.ts';

/** Why a blob is not the pointer's: its length, its header, its key commitment, a chunk tag, or its digest. */
export type BlobCheckFailure = 'length' | 'header' | 'wrong-key' | 'chunk-auth' | 'digest';

const EMPTY = new Uint8Array(0);

export class AttachmentBlobCheck {
  readonly #backend: CryptoBackend;
  readonly #info: AttachmentKeyInfo;
  readonly #chunkCount: number;
  readonly #hash = streamingSha256();
  /**
   * The unit being filled (the header, then one sealed chunk) and how much of
   * it arrived. Each byte is copied once, into its unit: the work is linear
   * in bytes however the caller cuts them (a blob store may yield pieces as
   * small as its uploader's requests).
   */
  #unit: Uint8Array | null = null;
  #filled = 0;
  #total = 0;
  /** Null until the header is read; then the payload key (wiped at the end). */
  #payloadKey: Uint8Array | null = null;
  #nextChunk = 0;
  #failure: BlobCheckFailure | null = null;
  #finished = false;

  /** `info` comes from a decoded pointer; its values are checked again here (ParleyError). */
  constructor(backend: CryptoBackend, info: AttachmentKeyInfo) {
    checkAttachmentKeyInfo(info);
    this.#backend = backend;
    this.#info = info;
    this.#chunkCount = chunkCountOf(info.plaintextSize, info.chunkSize);
  }

  /** The first failure so far, if any: a caller may stop reading once this is set. */
  get failure(): BlobCheckFailure | null {
    return this.#failure;
  }

  update(bytes: Uint8Array): void {
    if (this.#finished) throw new Error('AttachmentBlobCheck: already finished');
    if (this.#failure !== null || bytes.length === 0) return;
    this.#total += bytes.length;
    if (this.#total > this.#info.ciphertextSize) {
      this.#fail('length');
      return;
    }
    this.#hash.update(bytes);
    let at = 0;
    while (at < bytes.length && this.#failure === null) {
      const need = this.#need();
      // More bytes than the layout holds cannot pass the length check above; refused all the same.
      if (need === 0) {
        this.#fail('length');
        return;
      }
      this.#unit ??= new Uint8Array(need);
      const k = Math.min(need - this.#filled, bytes.length - at);
      this.#unit.set(bytes.subarray(at, at + k), this.#filled);
      this.#filled += k;
      at += k;
      if (this.#filled === need) {
        const unit = this.#unit;
        this.#unit = null;
        this.#filled = 0;
        this.#open(unit);
      }
    }
  }

  /** The verdict: null when the blob is exactly the pointer's attachment. */
  finish(): BlobCheckFailure | null {
    if (!this.#finished) {
      this.#finished = true;
      if (this.#failure === null && this.#total !== this.#info.ciphertextSize) this.#fail('length');
      if (this.#failure === null && this.#nextChunk !== this.#chunkCount) this.#fail('length');
      if (this.#failure === null && !constantTimeEqual(this.#hash.digest(), this.#info.digest)) this.#fail('digest');
      this.#wipe();
    }
    return this.#failure;
  }

  #fail(reason: BlobCheckFailure): void {
    this.#failure ??= reason;
    this.#wipe();
  }

  #wipe(): void {
    this.#payloadKey?.fill(0);
    this.#payloadKey = null;
    this.#unit = null;
    this.#filled = 0;
  }

  #sealedLength(index: number): number {
    const { plaintextSize, chunkSize } = this.#info;
    const plain = index < this.#chunkCount - 1 ? chunkSize : plaintextSize - index * chunkSize;
    return plain + TAG_BYTES;
  }

  /** Bytes of the next unit: the header, a sealed chunk, or 0 once every chunk arrived. */
  #need(): number {
    if (this.#payloadKey === null) return HEADER_BYTES;
    return this.#nextChunk < this.#chunkCount ? this.#sealedLength(this.#nextChunk) : 0;
  }

  /** A whole unit arrived: the header opens the key schedule, a chunk must authenticate at its position. */
  #open(unit: Uint8Array): void {
    if (this.#payloadKey === null) {
      this.#openHeader(unit);
      return;
    }
    const index = this.#nextChunk++;
    const plain = this.#backend.aeadOpen(this.#payloadKey, chunkNonce(index, index === this.#chunkCount - 1), unit, EMPTY);
    if (plain === null) {
      this.#fail('chunk-auth');
      return;
    }
    plain.fill(0);
  }

  #openHeader(header: Uint8Array): void {
    const e = header[HEADER_OFFSETS.exponent] as number;
    if (
      !constantTimeEqual(header.subarray(0, MAGIC.length), MAGIC) ||
      header[HEADER_OFFSETS.version] !== FORMAT_VERSION ||
      2 ** e !== this.#info.chunkSize
    ) {
      this.#fail('header');
      return;
    }
    const keys = deriveAttachmentKeys(this.#backend, this.#info.key, header.subarray(0, HEADER_PREFIX_BYTES));
    if (!constantTimeEqual(keys.commitment, header.subarray(HEADER_PREFIX_BYTES, HEADER_PREFIX_BYTES + COMMITMENT_BYTES))) {
      keys.payloadKey.fill(0);
      this.#fail('wrong-key');
      return;
    }
    this.#payloadKey = keys.payloadKey;
  }
}

/** One-shot form of AttachmentBlobCheck for a blob in memory. */
export function checkAttachmentBlob(backend: CryptoBackend, info: AttachmentKeyInfo, blob: Uint8Array): BlobCheckFailure | null {
  const check = new AttachmentBlobCheck(backend, info);
  check.update(blob);
  return check.finish();
}
