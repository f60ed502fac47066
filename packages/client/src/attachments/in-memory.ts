/**
 * One-shot helpers for attachments that fit in memory (images, voice notes,
 * tests). Same format and same checks, in the same order, as the streaming
 * functions. spec/11-attachments.md §6.
 */
import { constantTimeEqual } from '@parley/core';
import { ChunkOpener, ChunkSealer } from './chunk-cipher.ts';
import { HEADER_BYTES } from './constants.ts';
import type { DecryptOptions } from './decrypt-stream.ts';
import { type EncryptOptions, newAttachmentSecrets, resolveChunkSize } from './encrypt-stream.ts';
import { fail } from './errors.ts';
import { buildHeader, openHeader } from './header.ts';
import { type AttachmentKeyInfo, layoutOfKeyInfo, redactedInspect } from './key-info.ts';
import { chunkPlaintextLength, layoutOf, sealedChunkLength, sealedChunkOffset } from './layout.ts';
import { defaultProvider } from '@parley/core';

/**
 * Encrypts `plaintext` under a fresh attachment key.
 *
 * @example
 * const { ciphertext, info } = encryptAttachment(photoBytes);
 */
export function encryptAttachment(
  plaintext: Uint8Array,
  options: EncryptOptions = {},
): { ciphertext: Uint8Array; info: AttachmentKeyInfo } {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('"plaintext" expected Uint8Array');
  const provider = options.provider ?? defaultProvider();
  const chunkSize = resolveChunkSize(options.chunkSize);
  const layout = layoutOf(plaintext.length, chunkSize);
  const { key, salt } = newAttachmentSecrets(provider);
  const { header, keys } = buildHeader(provider.backend, key, chunkSize, salt);
  const sealer = new ChunkSealer(provider.backend, keys.payloadKey, chunkSize);
  const ciphertext = new Uint8Array(layout.ciphertextSize);
  ciphertext.set(header, 0);
  for (let i = 0; i < layout.chunkCount; i++) {
    const from = i * chunkSize;
    const sealed = sealer.seal(plaintext.subarray(from, from + chunkPlaintextLength(layout, i)), i === layout.chunkCount - 1);
    ciphertext.set(sealed, sealedChunkOffset(layout, i));
  }
  const digest = provider.backend.sha256(ciphertext);
  const info = { key, digest, plaintextSize: layout.plaintextSize, ciphertextSize: layout.ciphertextSize, chunkSize };
  return { ciphertext, info: redactedInspect(info, 'AttachmentKeyInfo') };
}

/**
 * Decrypts and verifies a whole ciphertext. Throws AttachmentError
 * (bad-pointer, truncated, trailing-data, bad-header, wrong-key, chunk-auth,
 * digest-mismatch); returns the plaintext only if everything verified.
 *
 * @example
 * const photo = decryptAttachment(downloadedBytes, pointer);
 */
export function decryptAttachment(ciphertext: Uint8Array, info: AttachmentKeyInfo, options: DecryptOptions = {}): Uint8Array {
  if (!(ciphertext instanceof Uint8Array)) throw new TypeError('"ciphertext" expected Uint8Array');
  const layout = layoutOfKeyInfo(info);
  const backend = (options.provider ?? defaultProvider()).backend;
  // The same order as the streaming path (spec §6): each piece must be
  // present before it is checked, and extra bytes count only after the final chunk.
  const have = (end: number, what: string, details: Record<string, number> = {}) => {
    if (ciphertext.length < end) fail.truncated(`ciphertext ends inside ${what}`, { ...details, length: ciphertext.length });
  };
  have(HEADER_BYTES, 'the header');
  const payloadKey = openHeader(backend, info.key, ciphertext.subarray(0, HEADER_BYTES), layout.chunkSize);
  const opener = new ChunkOpener(backend, payloadKey, layout);
  // A short blob will fail (as truncated, or earlier): its chunks are still
  // checked in order, but no output the size the pointer claims is allocated.
  const complete = ciphertext.length >= layout.ciphertextSize;
  const plaintext = new Uint8Array(complete ? layout.plaintextSize : 0);
  try {
    for (let i = 0; i < layout.chunkCount; i++) {
      const offset = sealedChunkOffset(layout, i);
      const end = offset + sealedChunkLength(layout, i);
      have(end, `chunk ${i}`, { chunk: i });
      const chunk = opener.open(i, ciphertext.subarray(offset, end));
      if (complete) plaintext.set(chunk, i * layout.chunkSize);
      chunk.fill(0);
    }
    if (ciphertext.length > layout.ciphertextSize) {
      fail.trailing('bytes follow the final chunk', { length: ciphertext.length, expected: layout.ciphertextSize });
    }
    if (!constantTimeEqual(backend.sha256(ciphertext), info.digest)) fail.digest();
    return plaintext;
  } catch (e) {
    plaintext.fill(0);
    throw e;
  } finally {
    opener.destroy();
  }
}
