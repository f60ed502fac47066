/**
 * What a receiver needs to fetch, check and decrypt one attachment, and the
 * checks that make it self-consistent. spec/11-attachments.md §5.
 */
import { ATTACHMENT_KEY_BYTES, MAX_CIPHERTEXT_BYTES } from './constants.ts';
import { fail } from './errors.ts';
import { type Layout, chunkExponent, ciphertextSizeOf, layoutOf } from './layout.ts';

/** Digest of the whole ciphertext: SHA-256, 32 bytes. */
export const DIGEST_BYTES = 32;

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

/**
 * Checks key info that came from a peer and returns its layout. Wrong types
 * are caller bugs (TypeError); wrong values are AttachmentError bad-pointer.
 */
export function layoutOfKeyInfo(info: AttachmentKeyInfo): Layout {
  if (typeof info !== 'object' || info === null) throw new TypeError('"info" expected an AttachmentKeyInfo');
  if (!(info.key instanceof Uint8Array)) throw new TypeError('"info.key" expected Uint8Array');
  if (!(info.digest instanceof Uint8Array)) throw new TypeError('"info.digest" expected Uint8Array');
  for (const field of ['plaintextSize', 'ciphertextSize', 'chunkSize'] as const) {
    if (typeof info[field] !== 'number') throw new TypeError(`"info.${field}" expected a number`);
  }
  if (info.key.length !== ATTACHMENT_KEY_BYTES) fail.pointer('MALFORMED', `key: expected ${ATTACHMENT_KEY_BYTES} bytes`, { field: 'key' });
  if (info.digest.length !== DIGEST_BYTES) fail.pointer('MALFORMED', `digest: expected ${DIGEST_BYTES} bytes`, { field: 'digest' });
  if (chunkExponent(info.chunkSize) < 0) {
    fail.pointer('MALFORMED', 'chunkSize: not a power of two from 16 B to 4 MiB', { field: 'chunkSize' });
  }
  // The field readers of spec/01-conventions.md §2.3: an unsigned integer, at most 2^32 - 1.
  for (const field of ['plaintextSize', 'ciphertextSize'] as const) {
    const n = info[field];
    if (!Number.isSafeInteger(n) || n < 0) fail.pointer('MALFORMED', `${field}: expected an unsigned integer`, { field });
    if (n > MAX_CIPHERTEXT_BYTES) fail.pointer('OVERSIZED', `${field}: above 2^32 - 1`, { field });
  }
  // One size determines the other; a pointer whose sizes disagree is refused
  // rather than trusted for either. (A plaintext too large for the format has
  // no ciphertext size within the bound, so it fails here too.)
  if (info.ciphertextSize !== ciphertextSizeOf(info.plaintextSize, info.chunkSize)) {
    fail.pointer('MALFORMED', 'ciphertextSize: does not match plaintextSize and chunkSize', { field: 'ciphertextSize' });
  }
  return layoutOf(info.plaintextSize, info.chunkSize);
}
