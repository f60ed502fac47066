/**
 * Incremental SHA-256 of a ciphertext as it streams by.
 * spec/11-attachments.md §5 (the digest field).
 *
 * The one exception to "primitives only through core's backend": the backend
 * offers only one-shot `sha256`, and a video must not have to fit in memory
 * to be hashed. noble's hash is the audited implementation core's noble
 * backend already uses; a test checks it against both backends' one-shot
 * `sha256`. This is the only attachment module that imports @noble/*.
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
