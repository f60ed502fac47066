/**
 * One Uint8Array per signing key, so the crypto backend's per-buffer key
 * cache (core/src/crypto/node.ts memoises the imported KeyObject per key
 * buffer) hits on every request of an active device. Storage returns a fresh
 * buffer per read, so without this every signed request re-imported its key
 * into OpenSSL: measured on this machine, interleaved runs of 2000
 * verifications, 325-400 µs each with a fresh key buffer against 262-305 µs
 * with the same one (a loaded machine; the profile's verification share is
 * in bench/results/relay-profile-before.md).
 *
 * Keys are public and looked up by their bytes, so a hit is always the same
 * key: this caches no decision, only the object identity.
 */

/**
 * Most keys held. Why 16384: the same working set as core's Ed25519 key-check
 * cache (ED25519_KEY_CHECK_CACHE_ENTRIES), a relay process's active devices;
 * about 100 bytes each with the map entry, 1.6 MB when full. A key beyond it
 * is imported again, never refused.
 */
export const VERIFYING_KEY_CACHE_ENTRIES = 16384;

export class VerifyingKeys {
  readonly #keys = new Map<string, Uint8Array>();
  readonly #max: number;

  constructor(max = VERIFYING_KEY_CACHE_ENTRIES) {
    this.#max = max;
  }

  /** The held buffer with these bytes (least recently used out first), or a private copy of `key` now held. */
  intern(key: Uint8Array): Uint8Array {
    const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
    const held = this.#keys.get(id);
    if (held) {
      // Map order is insertion order: re-inserting marks the key as recently used.
      this.#keys.delete(id);
      this.#keys.set(id, held);
      return held;
    }
    // A copy nobody else holds: a caller that later overwrites its buffer cannot change the held key.
    const copy = key.slice();
    this.#keys.set(id, copy);
    if (this.#keys.size > this.#max) this.#keys.delete(this.#keys.keys().next().value as string);
    return copy;
  }

  get size(): number {
    return this.#keys.size;
  }
}

const shared = new VerifyingKeys();

/** The process-wide interned key for `key` (used by request and websocket authentication). */
export function verifyingKey(key: Uint8Array): Uint8Array {
  return shared.intern(key);
}
