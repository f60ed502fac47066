/**
 * What a receiver needs to fetch, check and decrypt one attachment, and the
 * checks that make it self-consistent. spec/11-attachments.md §5.
 */
import { attachment, isParleyError } from '@parley/core';
import { fail } from './errors.ts';
import { type Layout, layoutOf } from './layout.ts';

/** Digest of the whole ciphertext: SHA-256, 32 bytes. */
export const DIGEST_BYTES = attachment.DIGEST_BYTES;

/**
 * The secret and the sizes an attachment is decrypted with. The sender gets
 * it from encryption and sends it inside an end-to-end encrypted message
 * (as part of an `AttachmentPointer`); it never goes to the relay.
 */
export interface AttachmentKeyInfo {
  /** The fresh 32-byte attachment key. Secret. */
  readonly key: Uint8Array;
  /** SHA-256 of the entire ciphertext (header and every chunk). */
  readonly digest: Uint8Array;
  readonly plaintextSize: number;
  /** Always 56 + plaintextSize + 16 * chunkCount; checked, so a pointer cannot disagree with itself. */
  readonly ciphertextSize: number;
  /** A power of two from 16 B to 4 MiB; 64 KiB unless the sender chose otherwise. */
  readonly chunkSize: number;
}

// util.inspect's hook, reached through the global symbol registry so this
// module imports no Node built-in (it also runs in browsers).
const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * Returns `info` with a non-enumerable inspect hook, so `console.log` of key
 * info or a pointer shows sizes and ids but never the key. Non-enumerable, so
 * spreading, CBOR and JSON see plain data (a spread copy loses the hook: log
 * copies with care).
 */
export function redactedInspect<T extends AttachmentKeyInfo>(info: T, name: string): T {
  Object.defineProperty(info, inspectSymbol, {
    enumerable: false,
    value: () => {
      const shown = Object.entries(info)
        .filter(([k]) => k !== 'key' && k !== 'digest')
        .map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
      return `${name} { ${[...shown, 'key: <secret redacted>'].join(', ')} }`;
    },
  });
  return info;
}

/** Core's ParleyError from a value check, as this module's AttachmentError bad-pointer (same code and details). */
export function asPointerError(e: unknown): never {
  if (isParleyError(e) && (e.code === 'MALFORMED' || e.code === 'OVERSIZED' || e.code === 'UNSUPPORTED_VERSION')) {
    fail.pointer(e.code, e.message.replace(/^[A-Z_]+: /, ''), e.details);
  }
  throw e;
}

/**
 * Checks key info that came from a peer and returns its layout. Wrong types
 * are caller bugs (TypeError); wrong values are AttachmentError bad-pointer.
 * The checks are core's (`attachment/pointer.ts`), which the relay's report
 * check runs too.
 */
export function layoutOfKeyInfo(info: AttachmentKeyInfo): Layout {
  try {
    attachment.checkAttachmentKeyInfo(info);
  } catch (e) {
    asPointerError(e);
  }
  return layoutOf(info.plaintextSize, info.chunkSize);
}
