/**
 * The attachment format pieces both the client and the relay's report check
 * use: constants, key schedule, the pointer codec, the blob check, and the
 * pointers a Content carries. spec/11-attachments.md.
 */
export * from './format.ts';
export * from './pointer.ts';
export { AttachmentBlobCheck, type BlobCheckFailure, checkAttachmentBlob } from './check.ts';
export { CONTENT_TYPE_ATTACHMENT, contentAttachmentPointers } from './content.ts';
