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
import { type CborValue, decodeCbor, encodeCbor, isParleyError, utf8 } from '@parley/core';
import { AttachmentError, fail } from './errors.ts';
import { type AttachmentKeyInfo, layoutOfKeyInfo, redactedInspect } from './key-info.ts';

export const POINTER_VERSION = 1;

/** Relay blob ids: 1..128 characters of the base64url alphabet, safe to put in a URL path as is. */
export const MAX_ID_LENGTH = 128;
/** In bytes (it is ASCII). RFC 6838 allows 127 characters each for type and subtype; parameters get the rest. */
export const MAX_CONTENT_TYPE_LENGTH = 255;
/** In UTF-8 bytes: most file systems cap a name at 255 bytes. */
export const MAX_FILE_NAME_LENGTH = 255;
/**
 * Largest encoded pointer. The largest valid one is about 750 bytes (id 128,
 * content type 255, file name 255, key and digest 64, sizes and framing ~45).
 */
export const MAX_POINTER_BYTES = 1024;

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Printable ASCII: a media type with optional parameters ("text/plain; charset=utf-8"). */
const CONTENT_TYPE_PATTERN = /^[!-~]+\/[!-~]+( *;[ -~]*)?$/;
// A file name is a base name shown to the user and maybe used to save the
// file: no path separators, no control characters (C0, DEL, C1), no bidi
// overrides or isolates (they make "gpj.exe" display as "exe.jpg"), not "." or "..".
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse them
const FILE_NAME_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\]/;

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
    checkPointer(pointer);
  } catch (e) {
    if (e instanceof AttachmentError) throw new RangeError(`cannot encode pointer: ${e.message}`);
    throw e;
  }
  return encodeCbor([
    POINTER_VERSION,
    pointer.id,
    pointer.key,
    pointer.digest,
    pointer.plaintextSize,
    pointer.ciphertextSize,
    pointer.chunkSize,
    pointer.contentType ?? null,
    pointer.fileName ?? null,
  ] satisfies CborValue[]);
}

/** Decodes and checks a received pointer; every failure is AttachmentError bad-pointer. */
export function decodeAttachmentPointer(bytes: Uint8Array): AttachmentPointer {
  let value: unknown;
  try {
    value = decodeCbor(bytes, 'attachment pointer', MAX_POINTER_BYTES);
  } catch (e) {
    if (isParleyError(e) && (e.code === 'MALFORMED' || e.code === 'OVERSIZED')) fail.pointer(e.code, 'not a canonical CBOR pointer');
    throw e;
  }
  if (!Array.isArray(value)) fail.pointer('MALFORMED', 'expected an array');
  // The version is checked before the length so a future version may have other fields.
  if (typeof value[0] !== 'number') fail.pointer('MALFORMED', 'version: expected an integer');
  if (value[0] !== POINTER_VERSION) fail.pointer('UNSUPPORTED_VERSION', `unsupported pointer version ${value[0]}`, { version: value[0] });
  if (value.length !== 9) fail.pointer('MALFORMED', `wrong number of fields (${value.length})`, { fields: value.length });
  const [, id, key, digest, plaintextSize, ciphertextSize, chunkSize, contentType, fileName] = value;
  const pointer: AttachmentPointer = {
    id: field(id, 'id', 'string'),
    key: new Uint8Array(field(key, 'key', 'bytes')),
    digest: new Uint8Array(field(digest, 'digest', 'bytes')),
    plaintextSize: field(plaintextSize, 'plaintextSize', 'number'),
    ciphertextSize: field(ciphertextSize, 'ciphertextSize', 'number'),
    chunkSize: field(chunkSize, 'chunkSize', 'number'),
    ...(contentType === null ? {} : { contentType: field(contentType, 'contentType', 'string') }),
    ...(fileName === null ? {} : { fileName: field(fileName, 'fileName', 'string') }),
  };
  checkPointer(pointer);
  return redactedInspect(pointer, 'AttachmentPointer');
}

type FieldType = { string: string; bytes: Uint8Array; number: number };

const IS: { [K in keyof FieldType]: (v: unknown) => boolean } = {
  string: (v) => typeof v === 'string',
  bytes: (v) => v instanceof Uint8Array,
  number: (v) => typeof v === 'number',
};

function field<K extends keyof FieldType>(v: unknown, name: string, type: K): FieldType[K] {
  if (!IS[type](v)) fail.pointer('MALFORMED', `${name}: expected ${type === 'bytes' ? 'a byte string' : `a ${type}`}`, { field: name });
  return v as FieldType[K];
}

/** Value checks shared by the encoder and the decoder (AttachmentError bad-pointer). */
function checkPointer(p: AttachmentPointer): void {
  if (typeof p.id !== 'string') throw new TypeError('"id" expected a string');
  if (p.id.length > MAX_ID_LENGTH) fail.pointer('OVERSIZED', 'id: too long', { field: 'id' });
  if (!ID_PATTERN.test(p.id)) fail.pointer('MALFORMED', 'id: expected 1+ base64url characters', { field: 'id' });
  layoutOfKeyInfo(p);
  if (p.contentType !== undefined) {
    if (typeof p.contentType !== 'string') throw new TypeError('"contentType" expected a string');
    // In UTF-8 bytes, like the file name (spec 11 §5): a non-ASCII string is measured as it is encoded.
    if (utf8(p.contentType).length > MAX_CONTENT_TYPE_LENGTH) fail.pointer('OVERSIZED', 'contentType: too long', { field: 'contentType' });
    if (!CONTENT_TYPE_PATTERN.test(p.contentType)) fail.pointer('MALFORMED', 'contentType: not a media type', { field: 'contentType' });
  }
  if (p.fileName !== undefined) {
    if (typeof p.fileName !== 'string') throw new TypeError('"fileName" expected a string');
    if (utf8(p.fileName).length > MAX_FILE_NAME_LENGTH) fail.pointer('OVERSIZED', 'fileName: too long', { field: 'fileName' });
    if (p.fileName.length === 0 || p.fileName === '.' || p.fileName === '..' || FILE_NAME_FORBIDDEN.test(p.fileName)) {
      fail.pointer('MALFORMED', 'fileName: not a plain base name', { field: 'fileName' });
    }
  }
}
