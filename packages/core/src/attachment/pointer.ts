/**
 * `AttachmentPointer`: what a message carries so its receiver can fetch and
 * decrypt one attachment, and its strict CBOR form. spec/11-attachments.md §5.
 *
 *   [version = 1, id, key, digest, plaintextSize, ciphertextSize, chunkSize, contentType / null, fileName / null]
 *
 * In core because two parties decode it: the client (to show and fetch a
 * file) and the relay's report check (to find the blob a franked message
 * commits to, spec/14-franking.md §6 step 5). Every failure is a
 * ParleyError MALFORMED / OVERSIZED / UNSUPPORTED_VERSION naming the field;
 * the client wraps it as its AttachmentError bad-pointer.
 */
import { utf8 } from '../bytes.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { fail } from '../errors.ts';
import { ATTACHMENT_KEY_BYTES, DIGEST_BYTES, MAX_CIPHERTEXT_BYTES, chunkExponent, ciphertextSizeOf } from './format.ts';

export const POINTER_VERSION = 1;
/** Relay blob ids: 1..128 characters of the base64url alphabet, safe to put in a URL path as is. */
export const MAX_ID_LENGTH = 128;
/** In bytes (it is ASCII). RFC 6838 allows 127 characters each for type and subtype; parameters get the rest. */
export const MAX_CONTENT_TYPE_LENGTH = 255;
/** In UTF-8 bytes: most file systems cap a name at 255 bytes. */
export const MAX_FILE_NAME_LENGTH = 255;
/** Largest encoded pointer. The largest valid one is about 750 bytes. */
export const MAX_POINTER_BYTES = 1024;

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;
/** Printable ASCII: a media type with optional parameters ("text/plain; charset=utf-8"). */
const CONTENT_TYPE_PATTERN = /^[!-~]+\/[!-~]+( *;[ -~]*)?$/;
// A file name is a base name shown to the user and maybe used to save the
// file: no path separators, no control characters (C0, DEL, C1), no bidi
// overrides or isolates (they make "gpj.exe" display as "exe.jpg"), not "." or "..".
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse them
const FILE_NAME_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\]/;

/** The secret and the sizes an attachment is decrypted with. */
export interface AttachmentKeyInfo {
  /** The fresh 32-byte attachment key. Secret. */
  readonly key: Uint8Array;
  /** SHA-256 of the entire ciphertext (header and every chunk). */
  readonly digest: Uint8Array;
  readonly plaintextSize: number;
  /** Always 56 + plaintextSize + 16 * chunkCount; checked, so a pointer cannot disagree with itself. */
  readonly ciphertextSize: number;
  /** A power of two from 16 B to 4 MiB. */
  readonly chunkSize: number;
}

export interface AttachmentPointer extends AttachmentKeyInfo {
  /** The relay's id for the uploaded ciphertext. */
  readonly id: string;
  /** A media type such as "video/mp4", as the sender claims it. Untrusted. */
  readonly contentType?: string;
  /** A base name such as "holiday.mp4", as the sender claims it. Untrusted. */
  readonly fileName?: string;
}

/**
 * Value checks of key info from a peer (ParleyError naming the field). Wrong
 * JavaScript types are caller bugs (TypeError).
 */
export function checkAttachmentKeyInfo(info: AttachmentKeyInfo): void {
  if (typeof info !== 'object' || info === null) throw new TypeError('"info" expected an AttachmentKeyInfo');
  if (!(info.key instanceof Uint8Array)) throw new TypeError('"info.key" expected Uint8Array');
  if (!(info.digest instanceof Uint8Array)) throw new TypeError('"info.digest" expected Uint8Array');
  for (const field of ['plaintextSize', 'ciphertextSize', 'chunkSize'] as const) {
    if (typeof info[field] !== 'number') throw new TypeError(`"info.${field}" expected a number`);
  }
  if (info.key.length !== ATTACHMENT_KEY_BYTES) fail('MALFORMED', `key: expected ${ATTACHMENT_KEY_BYTES} bytes`, { field: 'key' });
  if (info.digest.length !== DIGEST_BYTES) fail('MALFORMED', `digest: expected ${DIGEST_BYTES} bytes`, { field: 'digest' });
  if (chunkExponent(info.chunkSize) < 0) fail('MALFORMED', 'chunkSize: not a power of two from 16 B to 4 MiB', { field: 'chunkSize' });
  // The field readers of spec/01-conventions.md §2.3: an unsigned integer, at most 2^32 - 1.
  for (const field of ['plaintextSize', 'ciphertextSize'] as const) {
    const n = info[field];
    if (!Number.isSafeInteger(n) || n < 0) fail('MALFORMED', `${field}: expected an unsigned integer`, { field });
    if (n > MAX_CIPHERTEXT_BYTES) fail('OVERSIZED', `${field}: above 2^32 - 1`, { field });
  }
  // One size determines the other; a pointer whose sizes disagree is refused rather than trusted for either.
  if (info.ciphertextSize !== ciphertextSizeOf(info.plaintextSize, info.chunkSize)) {
    fail('MALFORMED', 'ciphertextSize: does not match plaintextSize and chunkSize', { field: 'ciphertextSize' });
  }
}

/** Value checks shared by the encoder and the decoder. */
export function checkAttachmentPointer(p: AttachmentPointer): void {
  if (typeof p.id !== 'string') throw new TypeError('"id" expected a string');
  if (p.id.length > MAX_ID_LENGTH) fail('OVERSIZED', 'id: too long', { field: 'id' });
  if (!ID_PATTERN.test(p.id)) fail('MALFORMED', 'id: expected 1+ base64url characters', { field: 'id' });
  checkAttachmentKeyInfo(p);
  if (p.contentType !== undefined) {
    if (typeof p.contentType !== 'string') throw new TypeError('"contentType" expected a string');
    // In UTF-8 bytes, like the file name (spec 11 §5): a non-ASCII string is measured as it is encoded.
    if (utf8(p.contentType).length > MAX_CONTENT_TYPE_LENGTH) fail('OVERSIZED', 'contentType: too long', { field: 'contentType' });
    if (!CONTENT_TYPE_PATTERN.test(p.contentType)) fail('MALFORMED', 'contentType: not a media type', { field: 'contentType' });
  }
  if (p.fileName !== undefined) {
    if (typeof p.fileName !== 'string') throw new TypeError('"fileName" expected a string');
    if (utf8(p.fileName).length > MAX_FILE_NAME_LENGTH) fail('OVERSIZED', 'fileName: too long', { field: 'fileName' });
    if (p.fileName.length === 0 || p.fileName === '.' || p.fileName === '..' || FILE_NAME_FORBIDDEN.test(p.fileName)) {
      fail('MALFORMED', 'fileName: not a plain base name', { field: 'fileName' });
    }
  }
}

/** Encodes a pointer; a value the format cannot carry throws the decoder's ParleyError. */
export function encodePointerFields(pointer: AttachmentPointer): Uint8Array {
  checkAttachmentPointer(pointer);
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

type FieldType = { string: string; bytes: Uint8Array; number: number };
const IS: { [K in keyof FieldType]: (v: unknown) => boolean } = {
  string: (v) => typeof v === 'string',
  bytes: (v) => v instanceof Uint8Array,
  number: (v) => typeof v === 'number',
};

function field<K extends keyof FieldType>(v: unknown, name: string, type: K): FieldType[K] {
  if (!IS[type](v)) fail('MALFORMED', `${name}: expected ${type === 'bytes' ? 'a byte string' : `a ${type}`}`, { field: name });
  return v as FieldType[K];
}

/** Decodes and checks a received pointer (ParleyError MALFORMED / OVERSIZED / UNSUPPORTED_VERSION). */
export function decodePointerFields(bytes: Uint8Array): AttachmentPointer {
  const value = decodeCbor(bytes, 'attachment pointer', MAX_POINTER_BYTES);
  if (!Array.isArray(value)) fail('MALFORMED', 'expected an array');
  // The version is checked before the length so a future version may have other fields.
  if (typeof value[0] !== 'number') fail('MALFORMED', 'version: expected an integer');
  if (value[0] !== POINTER_VERSION) fail('UNSUPPORTED_VERSION', `unsupported pointer version ${value[0]}`, { version: value[0] });
  if (value.length !== 9) fail('MALFORMED', `wrong number of fields (${value.length})`, { fields: value.length });
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
  checkAttachmentPointer(pointer);
  return pointer;
}
