/**
 * Random access to an encrypted attachment: decrypt any plaintext range by
 * fetching only the chunks that hold it. spec/11-attachments.md §7.
 *
 * This is what lets a player seek in a video that is still on the relay:
 * chunk i always starts at ciphertext offset 56 + i * (chunkSize + 16), so a
 * byte range of the plaintext maps to one range request. Each chunk is
 * verified by its tag at its index (and the final chunk by its final flag),
 * so whatever a reader returns was written by the key holder at that
 * position. What a reader cannot check is the whole-blob digest, since it
 * never sees the whole blob: the digest is checked by the full download
 * (`decryptAttachmentStream` / `decryptAttachment`) once that completes.
 *
 * This module does no I/O of its own: the caller passes `fetchRange`
 * (typically the relay client's range download).
 */
import { type CryptoProvider, defaultProvider } from '@parley/core';
import { ChunkOpener } from './chunk-cipher.ts';
import { HEADER_BYTES } from './constants.ts';
import { fail } from './errors.ts';
import { openHeader } from './header.ts';
import { type AttachmentKeyInfo, layoutOfKeyInfo } from './key-info.ts';
import { type ChunkSpan, type Layout, chunkSpan, chunkSpanForPlaintext, sealedChunkLength } from './layout.ts';

/** Returns ciphertext bytes [start, end) of the blob: exactly end - start bytes. */
export type FetchRange = (start: number, end: number) => Promise<Uint8Array>;

export interface ReaderOptions {
  readonly provider?: CryptoProvider;
}

/** Chunks fetched per range request by `stream()` unless told otherwise: 1 MiB at the default chunk size. */
export const DEFAULT_CHUNKS_PER_FETCH = 16;

/**
 * The ciphertext bytes (whole chunks) that hold plaintext bytes [start, end),
 * for a player that fetches by itself. Pure arithmetic from the pointer.
 */
export function ciphertextRangeFor(info: AttachmentKeyInfo, start: number, end: number): ChunkSpan {
  return chunkSpanForPlaintext(layoutOfKeyInfo(info), start, end);
}

export class AttachmentReader {
  readonly layout: Layout;
  readonly #fetch: FetchRange;
  readonly #opener: ChunkOpener;

  private constructor(layout: Layout, fetch: FetchRange, opener: ChunkOpener) {
    this.layout = layout;
    this.#fetch = fetch;
    this.#opener = opener;
  }

  /**
   * Fetches and checks the 56-byte header (magic, version, chunk size, key
   * commitment). Throws AttachmentError bad-pointer, bad-header, wrong-key,
   * truncated or trailing-data.
   *
   * @example
   * const reader = await AttachmentReader.open(pointer, (s, e) => relay.downloadRange(pointer.id, s, e));
   * const frames = await reader.read(5_000_000, 6_000_000);
   * reader.close();
   */
  static async open(info: AttachmentKeyInfo, fetchRange: FetchRange, options: ReaderOptions = {}): Promise<AttachmentReader> {
    const layout = layoutOfKeyInfo(info);
    if (typeof fetchRange !== 'function') throw new TypeError('"fetchRange" expected a function');
    const backend = (options.provider ?? defaultProvider()).backend;
    const header = await fetchExactly(fetchRange, 0, HEADER_BYTES);
    const payloadKey = openHeader(backend, info.key, header, layout.chunkSize);
    return new AttachmentReader(layout, fetchRange, new ChunkOpener(backend, payloadKey, layout));
  }

  get plaintextSize(): number {
    return this.layout.plaintextSize;
  }

  /**
   * Plaintext of chunks `first..last` (inclusive), fetched with one range
   * request. Throws AttachmentError chunk-auth, truncated or trailing-data.
   */
  async readChunks(first: number, last: number): Promise<Uint8Array[]> {
    const span = chunkSpan(this.layout, first, last);
    const bytes = await fetchExactly(this.#fetch, span.start, span.end);
    const out: Uint8Array[] = [];
    let offset = 0;
    for (let i = first; i <= last; i++) {
      const length = sealedChunkLength(this.layout, i);
      out.push(this.#opener.open(i, bytes.subarray(offset, offset + length)));
      offset += length;
    }
    return out;
  }

  /** Plaintext bytes [start, end), verified chunk by chunk. */
  async read(start: number, end: number): Promise<Uint8Array> {
    const span = chunkSpanForPlaintext(this.layout, start, end);
    if (end === start) return new Uint8Array(0);
    const chunks = await this.readChunks(span.firstChunk, span.lastChunk);
    return slicePlaintext(chunks, span.firstChunk * this.layout.chunkSize, start, end);
  }

  /**
   * Plaintext bytes [start, end) as a stream, fetched `chunksPerFetch`
   * chunks per range request as the consumer pulls: a player seeks by
   * opening a new stream at the new position.
   */
  stream(start = 0, end = this.layout.plaintextSize, chunksPerFetch = DEFAULT_CHUNKS_PER_FETCH): ReadableStream<Uint8Array> {
    const span = chunkSpanForPlaintext(this.layout, start, end);
    if (!Number.isSafeInteger(chunksPerFetch) || chunksPerFetch < 1) throw new RangeError('"chunksPerFetch" must be a positive integer');
    let next = span.firstChunk;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (end === start || next > span.lastChunk) {
          controller.close();
          return;
        }
        const last = Math.min(span.lastChunk, next + chunksPerFetch - 1);
        const chunks = await this.readChunks(next, last);
        const from = next * this.layout.chunkSize;
        const to = Math.min(end, (last + 1) * this.layout.chunkSize);
        next = last + 1;
        const piece = slicePlaintext(chunks, from, Math.max(start, from), to);
        if (piece.length > 0) controller.enqueue(piece);
        if (next > span.lastChunk) controller.close();
      },
    });
  }

  /** Wipes the payload key; the reader cannot be used afterwards. */
  close(): void {
    this.#opener.destroy();
  }
}

/**
 * Decrypts plaintext bytes [start, end) of an attachment on the relay,
 * fetching only the header and the chunks that hold them.
 */
export async function decryptRange(
  info: AttachmentKeyInfo,
  fetchRange: FetchRange,
  start: number,
  end: number,
  options: ReaderOptions = {},
): Promise<Uint8Array> {
  const reader = await AttachmentReader.open(info, fetchRange, options);
  try {
    return await reader.read(start, end);
  } finally {
    reader.close();
  }
}

/** Bytes [start, end) of the plaintext, given consecutive chunks whose first byte is plaintext offset `base`. */
function slicePlaintext(chunks: Uint8Array[], base: number, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  let position = base;
  for (const chunk of chunks) {
    const from = Math.max(start, position);
    const to = Math.min(end, position + chunk.length);
    if (to > from) out.set(chunk.subarray(from - position, to - position), from - start);
    position += chunk.length;
  }
  return out;
}

async function fetchExactly(fetchRange: FetchRange, start: number, end: number): Promise<Uint8Array> {
  const bytes = await fetchRange(start, end);
  if (!(bytes instanceof Uint8Array)) throw new TypeError('"fetchRange" must resolve to a Uint8Array');
  const expected = end - start;
  if (bytes.length < expected) {
    fail.truncated(`range [${start}, ${end}) returned ${bytes.length} bytes`, { start, end, length: bytes.length });
  }
  if (bytes.length > expected) {
    fail.trailing(`range [${start}, ${end}) returned ${bytes.length} bytes`, { start, end, length: bytes.length });
  }
  return bytes;
}
