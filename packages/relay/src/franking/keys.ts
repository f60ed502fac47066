/**
 * The relay's frank keys (spec/14-franking.md §4): FK[keyId], one per
 * FRANK_KEY_PERIOD_MS, 32 random bytes made on first use and shared by every
 * relay process on one database (insert-if-absent), destroyed by the sweeper
 * FRANK_KEY_RETENTION_MS after the period ends. Key bytes never leave this
 * module except into core's HMAC; nothing here logs them.
 */
import {
  type CryptoProvider,
  FRANK_KEY_BYTES,
  FRANK_KEY_PERIOD_MS,
  FRANK_KEY_RETENTION_MS,
  frankKeyExpired,
  frankKeyId,
} from '@parley/core';
import type { RelayStorage } from '../storage/types.ts';

/** When FK[keyId] must be gone: the end of its period plus the retention. */
export function frankKeyDestroyAt(keyId: number): number {
  return (keyId + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS;
}

export class FrankKeys {
  readonly #storage: RelayStorage;
  readonly #provider: CryptoProvider;
  /**
   * The key of the period being accepted in (one entry): a send needs it on
   * every envelope, and a key of a period never changes once stored. Keys
   * for verification are always read from storage, so that a destroyed key
   * (by any process's sweeper) is gone at once.
   */
  #current: { keyId: number; key: Promise<Uint8Array> } | null = null;

  constructor(storage: RelayStorage, provider: CryptoProvider) {
    this.#storage = storage;
    this.#provider = provider;
  }

  /** The key to frank an envelope accepted at `acceptedAt` with, made when first needed. */
  forAccept(acceptedAt: number): Promise<{ keyId: number; key: Uint8Array }> {
    const keyId = frankKeyId(acceptedAt);
    if (this.#current?.keyId !== keyId) {
      const key = this.#storage.frankKey(keyId, this.#provider.random(FRANK_KEY_BYTES), frankKeyDestroyAt(keyId));
      // A failed read must not stay cached.
      key.catch(() => {
        if (this.#current?.key === key) this.#current = null;
      });
      this.#current = { keyId, key };
    }
    const entry = this.#current;
    return entry.key.then((key) => ({ keyId: entry.keyId, key }));
  }

  /**
   * FK[keyId] for checking a frank, or null when it is destroyed, due for
   * destruction (the sweeper may not have run yet), or of a future period.
   * Never creates a key.
   */
  async forVerify(keyId: number, now: number): Promise<Uint8Array | null> {
    if (!Number.isSafeInteger(keyId) || keyId < 0 || keyId > frankKeyId(now) || frankKeyExpired(keyId, now)) return null;
    return (await this.#storage.findFrankKey(keyId)) ?? null;
  }
}
