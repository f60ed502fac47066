/**
 * Keyed token buckets in memory, for rate limits that count something
 * other than requests (envelope bytes per sender and recipient account).
 * The per-address request limit uses @fastify/rate-limit instead.
 * spec/09-relay.md §8.
 *
 * Each key holds up to `capacity` tokens and refills continuously at
 * `capacity` per `windowMs`. Per process: a restart forgives everyone, so
 * only limits whose excess costs time, not stored state, belong here; the
 * one-time prekey budget lives in storage (limits/prekey-budget.ts). With
 * a storage shared by several processes, limits/rate-budgets.ts keeps these
 * buckets in the database instead.
 */
interface Bucket {
  tokens: number;
  updated: number;
  /**
   * The key as first stored: reordering a bucket with it is several times cheaper than with
   * the caller's new string (built per send, e.g. `${sender}>${recipient}`, which the map
   * would flatten and hash again: ~0.4 µs a take, issue 15's profile).
   */
  readonly key: string;
}

export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

const TAKEN: TakeResult = Object.freeze({ ok: true });

export class TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #maxKeys: number;

  constructor(capacity: number, windowMs: number, maxKeys = 100_000) {
    this.#capacity = capacity;
    this.#perMs = capacity / windowMs;
    this.#maxKeys = maxKeys;
  }

  #current(key: string, now: number): Bucket {
    const b = this.#buckets.get(key);
    if (!b) return { tokens: this.#capacity, updated: now, key };
    const tokens = Math.min(this.#capacity, b.tokens + Math.max(0, now - b.updated) * this.#perMs);
    return { tokens, updated: now, key: b.key };
  }

  /** Whether `amount` tokens are available now (without taking them). */
  check(key: string, amount: number, now: number): TakeResult {
    const b = this.#current(key, now);
    // An amount above capacity passes only from a full bucket (it could never pass otherwise).
    const need = Math.min(amount, this.#capacity);
    if (b.tokens >= need) return { ok: true };
    return { ok: false, retryAfterMs: Math.ceil((need - b.tokens) / this.#perMs) };
  }

  /**
   * Takes `amount` tokens if available. One bucket lookup and no new object
   * for a bucket that exists (runs per send frame and recipient account).
   */
  take(key: string, amount: number, now: number): TakeResult {
    const b = this.#buckets.get(key);
    const tokens = b ? Math.min(this.#capacity, b.tokens + Math.max(0, now - b.updated) * this.#perMs) : this.#capacity;
    // An amount above capacity passes only from a full bucket (it could never pass otherwise).
    const need = Math.min(amount, this.#capacity);
    if (tokens < need) return { ok: false, retryAfterMs: Math.ceil((need - tokens) / this.#perMs) };
    const left = Math.max(0, tokens - amount);
    if (b) {
      b.tokens = left;
      b.updated = now;
    }
    this.#store(b ?? { tokens: left, updated: now, key });
    return TAKEN;
  }

  /** Gives back tokens a take did not use (never above capacity; a forgotten key is full already). */
  give(key: string, amount: number, now: number): void {
    const b = this.#buckets.get(key);
    if (!b) return;
    b.tokens = Math.min(this.#capacity, b.tokens + Math.max(0, now - b.updated) * this.#perMs + amount);
    b.updated = now;
    this.#store(b);
  }

  /** (Re)inserts `b` as the most recently touched bucket. */
  #store(b: Bucket): void {
    this.#buckets.delete(b.key);
    this.#buckets.set(b.key, b);
    if (this.#buckets.size > this.#maxKeys) {
      // Oldest-touched first; dropping a key only refills its bucket early.
      const oldest = this.#buckets.keys().next().value as string;
      this.#buckets.delete(oldest);
    }
  }

  get size(): number {
    return this.#buckets.size;
  }
}
