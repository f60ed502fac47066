/**
 * The attachment module's error: a core `ParleyError` (so callers that
 * branch on `isParleyError` / `code` need nothing new) that also carries a
 * precise `reason`. spec/11-attachments.md §8 maps each reason to its code.
 *
 * Messages and details name chunk indices, sizes and fields, never key bytes
 * or plaintext.
 */
import { type ErrorCode, type ErrorDetails, ParleyError } from '@parley/core';

export type AttachmentFailure =
  /** The pointer (or key info) is malformed, oversized or internally inconsistent. */
  | 'bad-pointer'
  /** The blob's header has the wrong magic, version or chunk size. */
  | 'bad-header'
  /** The header's key commitment does not match the key: wrong key, or an edited header. */
  | 'wrong-key'
  /** A chunk's tag does not verify at its position: tampered, reordered, duplicated, or a wrong final flag. */
  | 'chunk-auth'
  /** The ciphertext ends before its final chunk (or a range request returned fewer bytes). */
  | 'truncated'
  /** Bytes follow the final chunk (or a range request returned more than asked for). */
  | 'trailing-data'
  /** Every chunk verified, but the blob's SHA-256 is not the one the sender sent. */
  | 'digest-mismatch';

export class AttachmentError extends ParleyError {
  readonly reason: AttachmentFailure;

  constructor(code: ErrorCode, reason: AttachmentFailure, message: string, details: ErrorDetails = {}) {
    super(code, `attachment ${reason}: ${message}`, { ...details, reason });
    this.name = 'AttachmentError';
    this.reason = reason;
  }
}

export function isAttachmentError(e: unknown, reason?: AttachmentFailure): e is AttachmentError {
  return e instanceof AttachmentError && (reason === undefined || e.reason === reason);
}

type PointerCode = 'MALFORMED' | 'OVERSIZED' | 'UNSUPPORTED_VERSION';

/** Shorthands, one per reason, so each call site states only what is particular to it. */
export interface Fail {
  pointer(code: PointerCode, message: string, details?: ErrorDetails): never;
  header(code: 'MALFORMED' | 'UNSUPPORTED_VERSION', message: string, details?: ErrorDetails): never;
  wrongKey(): never;
  chunkAuth(chunk: number): never;
  truncated(message: string, details?: ErrorDetails): never;
  trailing(message: string, details?: ErrorDetails): never;
  digest(): never;
}

// The explicit `Fail` type is what lets TypeScript see that each call never returns.
export const fail: Fail = {
  pointer(code, message, details) {
    throw new AttachmentError(code, 'bad-pointer', message, details);
  },
  header(code, message, details) {
    throw new AttachmentError(code, 'bad-header', message, details);
  },
  wrongKey() {
    throw new AttachmentError('DECRYPT_FAILED', 'wrong-key', 'the header does not commit to this key');
  },
  chunkAuth(chunk) {
    throw new AttachmentError('DECRYPT_FAILED', 'chunk-auth', `chunk ${chunk} does not authenticate at this position`, { chunk });
  },
  truncated(message, details) {
    throw new AttachmentError('MALFORMED', 'truncated', message, details);
  },
  trailing(message, details) {
    throw new AttachmentError('MALFORMED', 'trailing-data', message, details);
  },
  digest() {
    throw new AttachmentError('DECRYPT_FAILED', 'digest-mismatch', 'the ciphertext is not the blob the sender described');
  },
};
