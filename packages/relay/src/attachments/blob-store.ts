/**
 * Where attachment bytes live: the BlobStore interface, and its first
 * implementation, one file per attachment under `<dataDir>/attachments/`.
 * The other is PostgresBlobStore (postgres-blob-store.ts: bytes in the
 * database, no shared disk). spec/09-relay.md §4.5.
 *
 * The relay never reads these bytes; it only appends, serves ranges and
 * deletes. Writes are positioned (an upload resumes at a known offset) and
 * durable before `append` returns, so an acknowledged offset survives a
 * crash. Bytes past the recorded offset (a crash mid-chunk) are cut off when
 * the next chunk starts.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

/** Attachment ids are 16 random bytes in base64url: nothing else may name a file or a row. */
export const BLOB_ID = /^[A-Za-z0-9_-]{22}$/;

/** Throws for anything but an attachment id (a path, an empty string, ...). */
export function checkBlobId(id: string): void {
  if (!BLOB_ID.test(id)) throw new RangeError('attachment id: expected 22 base64url characters');
}

export interface AppendOutcome {
  /** Bytes written in this call (also when the source failed part-way). */
  readonly written: number;
  /** The source's error, if it ended early (a dropped connection). */
  readonly error?: unknown;
  /** True when the source had more bytes than `maxBytes`. */
  readonly overflow: boolean;
}

/**
 * The contract every blob store keeps (test/blob-store-contract.ts checks
 * it for each implementation).
 */
export interface BlobStore {
  /** Starts an empty blob; fails if the id exists. */
  create(id: string): Promise<void>;
  /**
   * Writes `source` at `offset` (dropping anything stored past it first),
   * stopping after `maxBytes`, and makes it durable. Never throws for a
   * failing source: the bytes that arrived are kept and reported.
   */
  append(id: string, offset: number, source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<AppendOutcome>;
  /** Streams bytes `start..end` inclusive (the caller checked the range against the recorded size). */
  read(id: string, start: number, end: number): Readable;
  /** Bytes stored, or undefined for an unknown id. */
  size(id: string): Promise<number | undefined>;
  /** Deletes the blob; an unknown id is not an error. */
  remove(id: string): Promise<void>;
  /** Releases connections; the relay calls it once when it closes. */
  close(): Promise<void>;
}

export class FileBlobStore implements BlobStore {
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<FileBlobStore> {
    await mkdir(dir, { recursive: true });
    return new FileBlobStore(dir);
  }

  #path(id: string): string {
    checkBlobId(id);
    return join(this.#dir, id);
  }

  async create(id: string): Promise<void> {
    const fh = await open(this.#path(id), 'wx');
    await fh.close();
  }

  /** BlobStore.append; durable by fsync before returning. */
  async append(id: string, offset: number, source: AsyncIterable<Uint8Array>, maxBytes: number): Promise<AppendOutcome> {
    const fh = await open(this.#path(id), 'r+');
    let written = 0;
    let overflow = false;
    let error: unknown;
    try {
      await fh.truncate(offset);
      try {
        for await (const chunk of source) {
          const room = maxBytes - written;
          const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
          if (part.length > 0) {
            await fh.write(part, 0, part.length, offset + written);
            written += part.length;
          }
          if (chunk.length > room) {
            overflow = true;
            break;
          }
        }
      } catch (e) {
        error = e;
      }
      await fh.sync();
    } finally {
      await fh.close();
    }
    return error === undefined ? { written, overflow } : { written, overflow, error };
  }

  /** Streams bytes `start..end` inclusive. */
  read(id: string, start: number, end: number): Readable {
    return createReadStream(this.#path(id), { start, end });
  }

  async size(id: string): Promise<number | undefined> {
    const path = this.#path(id);
    try {
      return (await stat(path)).size;
    } catch {
      return undefined;
    }
  }

  async remove(id: string): Promise<void> {
    await rm(this.#path(id), { force: true });
  }

  async close(): Promise<void> {}
}
