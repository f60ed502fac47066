/**
 * Moving attachments through the relay. spec/10-client.md §4.5.
 *
 * Sending: the file streams through the STREAM encryption of
 * ../attachments/ (a fresh key per attachment, chunks authenticated with
 * their index and a final flag) straight into the relay upload, so a large
 * video is never whole in memory; the pointer (relay id, key, ciphertext
 * SHA-256, sizes) then travels inside an end-to-end encrypted message.
 * Receiving: the ciphertext streams from the relay into decryption, which
 * releases each chunk once it authenticates and the last one only after the
 * whole-blob digest matches the pointer.
 */
import type { CryptoProvider } from '@parley/core';
import {
  DEFAULT_CHUNK_SIZE,
  decodeAttachmentPointer,
  decryptAttachmentStream,
  encodeAttachmentPointer,
  encryptAttachmentStream,
  layoutOf,
} from '../attachments/index.ts';
import type { RelayLink } from '../relay-link/link.ts';

export interface FileToSend {
  /** The plaintext, as a web stream (Node: `Readable.toWeb(fs.createReadStream(path))`). */
  readonly stream: ReadableStream<Uint8Array>;
  /** Exact plaintext size in bytes (the relay needs the ciphertext size before the upload starts). */
  readonly size: number;
  readonly fileName?: string;
  readonly contentType?: string;
}

/** Encrypts and uploads a file; returns the encoded attachment pointer (it holds the key: keep it inside encrypted messages). */
export async function uploadFile(relay: RelayLink, file: FileToSend, provider: CryptoProvider): Promise<Uint8Array> {
  if (!Number.isSafeInteger(file.size) || file.size < 0) throw new RangeError('"size" expected a non-negative integer');
  const { ciphertextSize } = layoutOf(file.size, DEFAULT_CHUNK_SIZE);
  const encryption = encryptAttachmentStream(file.stream, { provider, chunkSize: DEFAULT_CHUNK_SIZE });
  // `info` settles only after the ciphertext is read to its end; keep a failed upload from leaving it unobserved.
  encryption.info.catch(() => undefined);
  const id = await relay.uploadAttachment(iterate(encryption.ciphertext), ciphertextSize);
  const info = await encryption.info;
  if (info.plaintextSize !== file.size) throw new RangeError('"size" does not match the stream');
  return encodeAttachmentPointer({
    ...info,
    id,
    ...(file.fileName ? { fileName: file.fileName } : {}),
    ...(file.contentType ? { contentType: file.contentType } : {}),
  });
}

/**
 * Downloads and decrypts an attachment as a stream. The stream errors
 * (AttachmentError) if the blob was altered, truncated, reordered or is not
 * the one the pointer names; keep a saved file only once the stream closed.
 */
export function downloadFile(relay: RelayLink, pointer: Uint8Array, provider: CryptoProvider): ReadableStream<Uint8Array> {
  const p = decodeAttachmentPointer(pointer);
  const source = relay.downloadAttachment(p.id)[Symbol.asyncIterator]();
  const ciphertext = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await source.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await source.return?.();
    },
  });
  return decryptAttachmentStream(ciphertext, p, { provider });
}

async function* iterate(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}
