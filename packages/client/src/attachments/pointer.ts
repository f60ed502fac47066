/**
 * `AttachmentPointer`: what a chat message carries so the receiver can fetch
 * and decrypt an attachment, and its strict CBOR form.
 * spec/11-attachments.md §5.
 *
 *   [version = 1, id, key, digest, plaintextSize, ciphertextSize, chunkSize, contentType / null, fileName / null]
 *
 * The pointer holds the attachment key, so it only ever travels inside an
 * end-to-end encrypted message. This module does not know how messages are
 * built around it (that is the SDK's job).
 */
import { attachment, isParleyError } from '@parley/core';
import { AttachmentError } from './errors.ts';
import { type AttachmentKeyInfo, asPointerError, redactedInspect } from './key-info.ts';

export const POINTER_VERSION = attachment.POINTER_VERSION;
/** Relay blob ids: 1..128 characters of the base64url alphabet, safe to put in a URL path as is. */
export const MAX_ID_LENGTH = attachment.MAX_ID_LENGTH;
/** In bytes (it is ASCII). RFC 6838 allows 127 characters each for type and subtype; parameters get the rest. */
export const MAX_CONTENT_TYPE_LENGTH = attachment.MAX_CONTENT_TYPE_LENGTH;
/** In UTF-8 bytes: most file systems cap a name at 255 bytes. */
export const MAX_FILE_NAME_LENGTH = attachment.MAX_FILE_NAME_LENGTH;
/** Largest encoded pointer (the largest valid one is about 750 bytes). */
export const MAX_POINTER_BYTES = attachment.MAX_POINTER_BYTES;

export interface AttachmentPointer extends AttachmentKeyInfo {
  /** The relay's id for the uploaded ciphertext (the SDK fills it in after upload). */
  readonly id: string;
  /** A media type such as "video/mp4", as the sender claims it. Untrusted. */
  readonly contentType?: string;
  /** A base name such as "holiday.mp4", as the sender claims it. Untrusted. */
  readonly fileName?: string;
}

/** Encodes a pointer; a field the format cannot carry is a caller bug (RangeError/TypeError). */
export function encodeAttachmentPointer(pointer: AttachmentPointer): Uint8Array {
  try {
    return attachment.encodePointerFields(pointer);
  } catch (e) {
    if (isParleyError(e)) throw new RangeError(`cannot encode pointer: ${e.message}`);
    throw e;
  }
}

/**
 * Decodes and checks a received pointer; every failure is AttachmentError
 * bad-pointer. The codec is core's (`attachment/pointer.ts`): the relay's
 * report check decodes the same bytes with the same rules.
 */
export function decodeAttachmentPointer(bytes: Uint8Array): AttachmentPointer {
  let pointer: AttachmentPointer;
  try {
    pointer = attachment.decodePointerFields(bytes);
  } catch (e) {
    if (e instanceof AttachmentError) throw e;
    asPointerError(e);
  }
  return redactedInspect(pointer, 'AttachmentPointer');
}
