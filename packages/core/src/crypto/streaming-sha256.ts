/**
 * Incremental SHA-256, for data that must not have to fit in memory (an
 * attachment's ciphertext as it streams by; spec/11-attachments.md §5).
 *
 * The backend interface offers one-shot `sha256` only, and WebCrypto has no
 * incremental digest at all, so this is noble's hash on every platform: the
 * same audited implementation the noble backend uses. It lives here so that
 * crypto/ stays the only folder that imports a primitive
 * (.dependency-cruiser.cjs, crypto-primitives-only-in-core-crypto).
 */
import { sha256 } from '@noble/hashes/sha2.js';

export interface StreamingDigest {
  update(bytes: Uint8Array): void;
  /** The digest of everything passed to `update`; call once. */
  digest(): Uint8Array;
}

export function streamingSha256(): StreamingDigest {
  const hash = sha256.create();
  return {
    update: (bytes) => {
      hash.update(bytes);
    },
    digest: () => hash.digest(),
  };
}
