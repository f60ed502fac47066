/**
 * Constants and limits of the attachment format. spec/11-attachments.md §2-§4.
 * Changing any value is a format break (a new version byte). The values
 * live in core (`attachment/format.ts`), which the relay's report check
 * shares: one copy, re-exported here under the names the client has always used.
 */
import { attachment } from '@parley/core';

export const MAGIC = attachment.MAGIC;
export const FORMAT_VERSION = attachment.FORMAT_VERSION;
export const ATTACHMENT_KEY_BYTES = attachment.ATTACHMENT_KEY_BYTES;
export const SALT_BYTES = attachment.SALT_BYTES;
export const COMMITMENT_BYTES = attachment.COMMITMENT_BYTES;
export const HEADER_BYTES = attachment.HEADER_BYTES;
export const HEADER_PREFIX_BYTES = attachment.HEADER_PREFIX_BYTES;
export const TAG_BYTES = attachment.TAG_BYTES;
export const KEY_INFO = attachment.KEY_INFO;
export const MIN_CHUNK_EXPONENT = attachment.MIN_CHUNK_EXPONENT;
export const MAX_CHUNK_EXPONENT = attachment.MAX_CHUNK_EXPONENT;
export const DEFAULT_CHUNK_SIZE = attachment.DEFAULT_CHUNK_SIZE;
export const MAX_CIPHERTEXT_BYTES = attachment.MAX_CIPHERTEXT_BYTES;
