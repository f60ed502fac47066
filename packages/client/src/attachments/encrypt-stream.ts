/**
 * Streaming encryption of an attachment. spec/11-attachments.md §4 and §6.1.
 *
 * Reads the plaintext from a web `ReadableStream` and produces the ciphertext
 * as another, pulling from the source only as fast as the ciphertext is
 * consumed: at most one chunk plus one source piece is held in memory, so a
 * video of any length streams from disk or camera to the upload.
 */
import { type CryptoProvider, defaultProvider } from '@parley/core';
import { ByteQueue } from './byte-queue.ts';
import { ChunkSealer } from './chunk-cipher.ts';
import { ATTACHMENT_KEY_BYTES, DEFAULT_CHUNK_SIZE, MAX_CIPHERTEXT_BYTES, SALT_BYTES } from './constants.ts';
import { streamingSha256 } from './digest.ts';
import { buildHeader } from './header.ts';
import { type AttachmentKeyInfo, redactedInspect } from './key-info.ts';
import { chunkExponent, ciphertextSizeOf } from './layout.ts';

export interface EncryptOptions {
  /** Backend and randomness; the platform default unless given (tests and vectors inject one). */
  readonly provider?: CryptoProvider;
  /** A power of two from 16 B to 4 MiB; default 64 KiB. */
  readonly chunkSize?: number;
}

export interface AttachmentEncryption {
  /** The ciphertext, ready to upload: header, then every chunk in order. */
  readonly ciphertext: ReadableStream<Uint8Array>;
  /**
   * Settles once `ciphertext` has been read to its end: the key, digest and
   * sizes to put in the pointer. Rejects if the source or the stream fails.
   */
  readonly info: Promise<AttachmentKeyInfo>;
}

/** Draws a fresh attachment key and salt, in that order (vectors rely on the order). */
export function newAttachmentSecrets(provider: CryptoProvider): { key: Uint8Array; salt: Uint8Array } {
  const key = provider.random(ATTACHMENT_KEY_BYTES);
  const salt = provider.random(SALT_BYTES);
  if (key.length !== ATTACHMENT_KEY_BYTES || salt.length !== SALT_BYTES) throw new Error('random source returned the wrong length');
  return { key, salt };
}

export function resolveChunkSize(chunkSize: number | undefined): number {
  const size = chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (chunkExponent(size) < 0) throw new RangeError('"chunkSize" must be a power of two from 16 B to 4 MiB');
  return size;
}

/**
 * Encrypts a plaintext stream under a fresh attachment key.
 *
 * @example
 * const { ciphertext, info } = encryptAttachmentStream(file.stream());
 * await upload(ciphertext);            // e.g. the relay's resumable upload
 * const pointer = { ...(await info), id: blobId, contentType: 'video/mp4' };
 */
export function encryptAttachmentStream(source: ReadableStream<Uint8Array>, options: EncryptOptions = {}): AttachmentEncryption {
  const provider = options.provider ?? defaultProvider();
  const chunkSize = resolveChunkSize(options.chunkSize);
  const reader = source.getReader();
  const { key, salt } = newAttachmentSecrets(provider);
  const { header, keys } = buildHeader(provider.backend, key, chunkSize, salt);
  const sealer = new ChunkSealer(provider.backend, keys.payloadKey, chunkSize);
  const hash = streamingSha256();
  const queue = new ByteQueue();
  let headerSent = false;
  let sourceDone = false;
  let plaintextSize = 0;
  let ciphertextSize = 0;

  let resolveInfo!: (info: AttachmentKeyInfo) => void;
  let rejectInfo!: (reason: unknown) => void;
  const info = new Promise<AttachmentKeyInfo>((resolve, reject) => {
    resolveInfo = resolve;
    rejectInfo = reject;
  });
  // A caller that only reads the stream sees the failure there; do not also
  // report the same failure as an unhandled rejection.
  info.catch(() => {});

  const abort = (reason: unknown) => {
    sealer.destroy();
    key.fill(0);
    queue.clear();
    rejectInfo(reason);
  };

  const emit = (controller: ReadableStreamDefaultController<Uint8Array>, bytes: Uint8Array) => {
    hash.update(bytes);
    ciphertextSize += bytes.length;
    controller.enqueue(bytes);
  };

  const ciphertext = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!headerSent) {
          headerSent = true;
          emit(controller, header);
          return;
        }
        // Hold back one byte more than a chunk: a chunk is final only if the
        // source ended, which we learn only by reading past it.
        while (!sourceDone && queue.length <= chunkSize) {
          const { done, value } = await reader.read();
          if (done) {
            sourceDone = true;
            break;
          }
          if (!(value instanceof Uint8Array)) throw new TypeError('attachment source must yield Uint8Array pieces');
          plaintextSize += value.length;
          if (ciphertextSizeOf(plaintextSize, chunkSize) > MAX_CIPHERTEXT_BYTES) {
            throw new RangeError('attachment larger than the format allows (4 GiB of ciphertext)');
          }
          queue.push(value);
        }
        const final = sourceDone && queue.length <= chunkSize;
        emit(controller, sealer.seal(queue.take(final ? queue.length : chunkSize), final));
        if (final) {
          controller.close();
          resolveInfo(redactedInspect({ key, digest: hash.digest(), plaintextSize, ciphertextSize, chunkSize }, 'AttachmentKeyInfo'));
        }
      } catch (e) {
        abort(e);
        controller.error(e);
        reader.cancel(e).catch(() => {});
      }
    },
    cancel(reason) {
      abort(reason ?? new Error('attachment encryption was cancelled'));
      return reader.cancel(reason);
    },
  });
  return { ciphertext, info };
}
