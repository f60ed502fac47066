/**
 * Streaming decryption and verification of a downloaded attachment.
 * spec/11-attachments.md §6.2.
 *
 * What the output stream emits, and when:
 *   - every chunk but the last is emitted as soon as its tag verifies at its
 *     index. Each emitted byte is therefore authentic: it was written by
 *     someone who holds the attachment key, at that position;
 *   - the last chunk is held back until the input has ended with no byte
 *     after it and the SHA-256 of the whole ciphertext equals the pointer's
 *     digest; only then is it emitted and the stream closed.
 * So a stream that closes normally delivered exactly the blob the sender
 * described, and a stream that errors never delivered its final chunk. A
 * player may show frames as they arrive; an app saving a file should keep
 * it only once the stream has closed.
 */
import { type CryptoProvider, constantTimeEqual, defaultProvider } from '@parley/core';
import { ByteQueue } from './byte-queue.ts';
import { ChunkOpener } from './chunk-cipher.ts';
import { HEADER_BYTES } from './constants.ts';
import { streamingSha256 } from './digest.ts';
import { fail } from './errors.ts';
import { openHeader } from './header.ts';
import { type AttachmentKeyInfo, layoutOfKeyInfo } from './key-info.ts';
import { sealedChunkLength } from './layout.ts';

export interface DecryptOptions {
  /** The backend to decrypt with; the platform default unless given. */
  readonly provider?: CryptoProvider;
}

/**
 * Decrypts and verifies a ciphertext stream against its key info (usually a
 * decoded `AttachmentPointer`). Throws AttachmentError bad-pointer at once if
 * the info is inconsistent; every other failure errors the returned stream
 * with an AttachmentError (truncated, trailing-data, bad-header, wrong-key,
 * chunk-auth, digest-mismatch) and cancels the input.
 *
 * @example
 * const plaintext = decryptAttachmentStream(await download(pointer.id), pointer);
 * await plaintext.pipeTo(fileSink); // resolves only if the blob verified
 */
export function decryptAttachmentStream(
  ciphertext: ReadableStream<Uint8Array>,
  info: AttachmentKeyInfo,
  options: DecryptOptions = {},
): ReadableStream<Uint8Array> {
  const layout = layoutOfKeyInfo(info);
  const backend = (options.provider ?? defaultProvider()).backend;
  const reader = ciphertext.getReader();
  const hash = streamingSha256();
  const queue = new ByteQueue();
  const lastChunk = layout.chunkCount - 1;
  let opener: ChunkOpener | null = null;
  let next = 0;

  /** Reads until `n` bytes are queued; false if the input ended first. */
  const fill = async (n: number): Promise<boolean> => {
    while (queue.length < n) {
      const { done, value } = await reader.read();
      if (done) return false;
      accept(value);
    }
    return true;
  };

  // Extra bytes are reported only after the final chunk (spec §6.2 fixes the
  // order, so the outcome never depends on how the input was cut into
  // pieces); until then at most one piece beyond the current chunk is held.
  const accept = (value: unknown) => {
    if (!(value instanceof Uint8Array)) throw new TypeError('attachment ciphertext must be Uint8Array pieces');
    queue.push(value);
  };

  const cleanup = () => {
    opener?.destroy();
    queue.clear();
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (opener === null) {
          if (!(await fill(HEADER_BYTES))) fail.truncated('ciphertext ends inside the header');
          const header = queue.take(HEADER_BYTES);
          hash.update(header);
          opener = new ChunkOpener(backend, openHeader(backend, info.key, header, layout.chunkSize), layout);
        }
        const index = next;
        const length = sealedChunkLength(layout, index);
        if (!(await fill(length))) fail.truncated(`ciphertext ends inside chunk ${index}`, { chunk: index });
        const sealed = queue.take(length);
        hash.update(sealed);
        const plaintext = opener.open(index, sealed);
        next++;
        if (index < lastChunk) {
          controller.enqueue(plaintext);
          return;
        }
        // The final chunk: nothing may follow it, and the whole blob must be
        // the one the digest names, before its plaintext is released.
        if (queue.length > 0 || (await fill(1))) fail.trailing('bytes follow the final chunk');
        if (!constantTimeEqual(hash.digest(), info.digest)) fail.digest();
        if (plaintext.length > 0) controller.enqueue(plaintext);
        controller.close();
        cleanup();
      } catch (e) {
        cleanup();
        controller.error(e);
        reader.cancel(e).catch(() => {});
      }
    },
    cancel(reason) {
      cleanup();
      return reader.cancel(reason);
    },
  });
}
