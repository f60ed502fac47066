/**
 * Remembers request signatures seen within the replay window, so a captured
 * request cannot be sent again. spec/09-relay.md §3.3.
 *
 * A signature is valid for at most 2 x window after its first sighting (its
 * timestamp is within one window of the clock at both sightings), so each
 * entry expires that long after it was stored. Entries are stored in arrival
 * order with equal lifetimes, so expiry order equals insertion order and
 * pruning only ever looks at the front of the map.
 *
 * In memory: after a restart, a request signed in the last window could be
 * replayed once. Every state-changing route is idempotent (sends by client
 * id, prekey uploads, acks, removals), so such a replay changes nothing; a
 * replayed bundle fetch costs one one-time prekey, as a fresh fetch would.
 */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

export class ReplayCache {
  readonly #entries = new Map<string, number>();
  readonly #lifetimeMs: number;
  readonly #maxEntries: number;

  constructor(windowMs: number, maxEntries: number) {
    this.#lifetimeMs = 2 * windowMs;
    this.#maxEntries = maxEntries;
  }

  /** Records `key` if it is new. `full` means the cache cannot take it: refuse the request. */
  check(key: string, now: number): ReplayVerdict {
    this.prune(now);
    if (this.#entries.has(key)) return 'replayed';
    if (this.#entries.size >= this.#maxEntries) return 'full';
    this.#entries.set(key, now + this.#lifetimeMs);
    return 'fresh';
  }

  prune(now: number): void {
    for (const [key, expires] of this.#entries) {
      if (expires > now) break;
      this.#entries.delete(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
