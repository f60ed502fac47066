// Attachment pieces the file-check tests build again and again: a real
// encrypted blob in the format of spec 11 §4 (built here from the format's
// parts, not by the client's writer, so that a mistake shared by writer and
// checker cannot hide), a pointer to a file that need not exist, the Content
// of a file message and a report item naming it (spec/14-franking.md §6).
import {
  FORMAT_VERSION,
  HEADER_OFFSETS,
  HEADER_PREFIX_BYTES,
  MAGIC,
  SALT_BYTES,
  chunkCountOf,
  chunkNonce,
  ciphertextSizeOf,
  deriveAttachmentKeys,
} from '../../src/attachment/format.ts';
import { type AttachmentPointer, encodePointerFields } from '../../src/attachment/pointer.ts';
import { encodeCbor } from '../../src/codec/cbor.ts';
import type { ReportItem } from '../../src/franking/report.ts';
import type { CryptoBackend } from '../../src/index.ts';

/** `plaintextSize` zero bytes sealed under a fresh key in `chunkSize` chunks: the blob and what its pointer says of it. */
export function sealZeroBlob(b: CryptoBackend, plaintextSize: number, chunkSize: number) {
  const key = b.randomBytes(32);
  const prefix = new Uint8Array(HEADER_PREFIX_BYTES);
  prefix.set(MAGIC, 0);
  prefix[HEADER_OFFSETS.version] = FORMAT_VERSION;
  prefix[HEADER_OFFSETS.exponent] = Math.log2(chunkSize);
  prefix.set(b.randomBytes(SALT_BYTES), HEADER_OFFSETS.salt);
  const keys = deriveAttachmentKeys(b, key, prefix);
  const count = chunkCountOf(plaintextSize, chunkSize);
  const blob = new Uint8Array(ciphertextSizeOf(plaintextSize, chunkSize));
  blob.set(prefix, 0);
  blob.set(keys.commitment, HEADER_PREFIX_BYTES);
  let at = HEADER_PREFIX_BYTES + keys.commitment.length;
  const zeros = new Uint8Array(chunkSize);
  for (let i = 0; i < count; i++) {
    const len = i < count - 1 ? chunkSize : plaintextSize - i * chunkSize;
    const sealed = b.aeadSeal(keys.payloadKey, chunkNonce(i, i === count - 1), zeros.subarray(0, len), new Uint8Array(0));
    blob.set(sealed, at);
    at += sealed.length;
  }
  return { blob, key, digest: b.sha256(blob), plaintextSize, chunkSize };
}

/** A pointer's fields for a file of this size and chunking; key and digest zero unless `over` gives them. */
export function filePointer(plaintextSize: number, chunkSize: number, over: Partial<AttachmentPointer> = {}): Uint8Array {
  return encodePointerFields({
    id: 'blob',
    key: new Uint8Array(32),
    digest: new Uint8Array(32),
    plaintextSize,
    ciphertextSize: ciphertextSizeOf(plaintextSize, chunkSize),
    chunkSize,
    ...over,
  });
}

/** A Content v1 file message (10 §3) carrying `pointer`, with an empty caption. */
export const fileContent = (pointer: Uint8Array) => encodeCbor([1, 2, new Uint8Array(16), new Uint8Array(8), 0, null, [pointer, ''], null]);

/** A report item of a file message, its file listed (with `blob`, or to be fetched by id); every other field a placeholder. */
export function fileReportItem(role: 1 | 2, pointer: Uint8Array, blob: Uint8Array | null = null): ReportItem {
  return {
    role,
    envelopeId: new Uint8Array(16),
    acceptedAt: new Uint8Array(8),
    frankKeyId: 0,
    frank: new Uint8Array(32),
    recipientDevice: 1,
    frankingTag: new Uint8Array(32),
    frankingKey: new Uint8Array(32),
    sender: { accountKey: new Uint8Array(32), deviceId: 1 },
    plaintext: fileContent(pointer),
    token: null,
    attestation: null,
    attachments: [{ pointerIndex: 0, blob }],
  };
}
