/**
 * Encrypted attachments: files and streams (videos) encrypted in chunks
 * under a fresh key, uploaded as opaque blobs, and sent to peers as an
 * `AttachmentPointer` inside an end-to-end encrypted message.
 * spec/11-attachments.md describes the format; test-vectors/attachments.json pins it.
 *
 * This module works on bytes and web streams only: uploading, downloading
 * and building messages belong to the SDK and the relay client.
 */
export { AttachmentError, type AttachmentFailure, isAttachmentError } from './errors.ts';
export { type AttachmentKeyInfo, DIGEST_BYTES } from './key-info.ts';
export {
  type AttachmentPointer,
  MAX_CONTENT_TYPE_LENGTH,
  MAX_FILE_NAME_LENGTH,
  MAX_ID_LENGTH,
  MAX_POINTER_BYTES,
  POINTER_VERSION,
  decodeAttachmentPointer,
  encodeAttachmentPointer,
} from './pointer.ts';
export { type AttachmentEncryption, type EncryptOptions, encryptAttachmentStream } from './encrypt-stream.ts';
export { type DecryptOptions, decryptAttachmentStream } from './decrypt-stream.ts';
export { decryptAttachment, encryptAttachment } from './in-memory.ts';
export {
  AttachmentReader,
  DEFAULT_CHUNKS_PER_FETCH,
  type FetchRange,
  type ReaderOptions,
  ciphertextRangeFor,
  decryptRange,
} from './reader.ts';
export { type ChunkSpan, type Layout, layoutOf } from './layout.ts';
export {
  ATTACHMENT_KEY_BYTES,
  DEFAULT_CHUNK_SIZE,
  FORMAT_VERSION,
  HEADER_BYTES,
  MAX_CHUNK_EXPONENT,
  MAX_CIPHERTEXT_BYTES,
  MIN_CHUNK_EXPONENT,
  TAG_BYTES,
} from './constants.ts';
