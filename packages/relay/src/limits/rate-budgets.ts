/**
 * Rate budgets keyed by who spends them (bundle fetches per account,
 * attachment uploads per device, envelope bytes per sender and recipient
 * account), kept where every relay process that serves the same accounts
 * sees them. spec/09-relay.md §8.
 *
 * With a storage that several processes share (PostgreSQL), the buckets
 * live in the database (`takeTokens`): a budget spent through one process
 * is spent through all, and N processes do not give a client N budgets.
 * A single-process storage (SQLite, one process per data folder) keeps them
 * in memory: the same rule without a round trip.
 *
 * Not here: the per-address request limit (@fastify/rate-limit in app.ts).
 * It protects one process's CPU from one address before any signature is
 * checked, so it is per process by design; spec §8.1 says what that means
 * behind a load balancer.
 */
import type { BucketLimit, RelayStorage, StoreRates, TokenTake } from '../storage/types.ts';
import { type TakeResult, TokenBuckets } from './token-buckets.ts';

export interface RateBudget {
  /** Takes `amount` tokens from `key`'s bucket, or none and says when to retry. */
  take(key: string, amount: number, now: number): Promise<TakeResult>;
  /** Takes from several buckets (keys distinct), each on its own terms; one round trip on a shared storage. */
  takeEach(takes: readonly TokenTake[], now: number): Promise<TakeResult[]>;
  /** Gives back tokens takes did not use (the request they paid for was refused or stored nothing). */
  giveBack(takes: readonly TokenTake[], now: number): Promise<void>;
  /**
   * These takes as a storage write spends them inside its own transaction
   * (`StoreMessagesInput.rates`), when the buckets live in the storage:
   * no round trip and no transaction of their own. Undefined for buckets
   * in memory.
   */
  inStorage?(takes: readonly TokenTake[]): StoreRates;
  /**
   * `takeEach` at once, for buckets in memory (nothing to wait for): the send
   * path then takes a frame's budget without a promise per call (issue 15,
   * the relay loop's cost per envelope). Undefined for buckets in storage.
   */
  takeEachNow?(takes: readonly TokenTake[], now: number): TakeResult[];
}

/** Time until a bucket at `tokens` holds `need` again. */
export function retryAfterMs(limit: BucketLimit, need: number, tokens: number): number {
  return Math.max(1, Math.ceil(((need - tokens) * limit.windowMs) / limit.capacity));
}

class MemoryBudget implements RateBudget {
  readonly #buckets: TokenBuckets;

  constructor(limit: BucketLimit) {
    this.#buckets = new TokenBuckets(limit.capacity, limit.windowMs);
  }

  async take(key: string, amount: number, now: number): Promise<TakeResult> {
    return this.#buckets.take(key, amount, now);
  }

  async takeEach(takes: readonly TokenTake[], now: number): Promise<TakeResult[]> {
    return this.takeEachNow(takes, now);
  }

  takeEachNow(takes: readonly TokenTake[], now: number): TakeResult[] {
    return takes.map((t) => this.#buckets.take(t.key, t.amount, now));
  }

  async giveBack(takes: readonly TokenTake[], now: number): Promise<void> {
    for (const t of takes) this.#buckets.give(t.key, t.amount, now);
  }
}

type SharedBuckets = Required<Pick<RelayStorage, 'takeTokens' | 'returnTokens'>>;

class StoredBudget implements RateBudget {
  readonly #storage: SharedBuckets;
  readonly #prefix: string;
  readonly #limit: BucketLimit;

  constructor(storage: SharedBuckets, name: string, limit: BucketLimit) {
    this.#storage = storage;
    // Bucket keys share one table with the one-time prekey budget ("otk-*"): a prefix per budget keeps them apart.
    this.#prefix = `rate:${name}:`;
    this.#limit = limit;
  }

  async take(key: string, amount: number, now: number): Promise<TakeResult> {
    return (await this.takeEach([{ key, amount }], now))[0] as TakeResult;
  }

  async takeEach(takes: readonly TokenTake[], now: number): Promise<TakeResult[]> {
    const results = await this.#storage.takeTokens(this.#limit, now, this.#stored(takes));
    return results.map((r, i) =>
      r.ok
        ? { ok: true }
        : { ok: false, retryAfterMs: retryAfterMs(this.#limit, Math.min((takes[i] as TokenTake).amount, this.#limit.capacity), r.tokens) },
    );
  }

  async giveBack(takes: readonly TokenTake[], now: number): Promise<void> {
    await this.#storage.returnTokens(this.#limit, now, this.#stored(takes));
  }

  inStorage(takes: readonly TokenTake[]): StoreRates {
    return { limit: this.#limit, takes: this.#stored(takes) };
  }

  #stored(takes: readonly TokenTake[]): TokenTake[] {
    return takes.map((t) => ({ key: this.#prefix + t.key, amount: t.amount }));
  }
}

/** `name` tells budgets apart in storage (stable: it is part of stored keys). */
export function rateBudget(storage: RelayStorage, name: string, limit: BucketLimit): RateBudget {
  const { takeTokens, returnTokens } = storage;
  if (takeTokens && returnTokens) {
    return new StoredBudget({ takeTokens: takeTokens.bind(storage), returnTokens: returnTokens.bind(storage) }, name, limit);
  }
  return new MemoryBudget(limit);
}

/** What `takeAll` took, to be given back if the request it paid for stores nothing. */
export type Taken = { readonly ok: true; giveBack(now: number): Promise<void> } | { readonly ok: false; readonly retryAfterMs: number };

/**
 * Takes every (key, amount) or none: one batch (one round trip on a shared
 * storage), and if any is refused the others are given back.
 */
export async function takeAll(budget: RateBudget, takes: ReadonlyMap<string, number> | readonly TokenTake[], now: number): Promise<Taken> {
  const wanted = tokenTakes(takes);
  const verdicts = budget.takeEachNow ? budget.takeEachNow(wanted, now) : await budget.takeEach(wanted, now);
  const taken = verdictsTaken(budget, wanted, verdicts, now);
  if (!taken.ok) await taken.given;
  return taken.result;
}

/**
 * `takeAll` at once for a budget in memory (`takeEachNow`), or undefined for
 * one in storage (then `takeAll` waits for its round trip).
 */
export function takeAllNow(budget: RateBudget, takes: readonly TokenTake[], now: number): Taken | undefined {
  if (!budget.takeEachNow) return undefined;
  return verdictsTaken(budget, takes, budget.takeEachNow(takes, now), now).result;
}

function tokenTakes(takes: ReadonlyMap<string, number> | readonly TokenTake[]): readonly TokenTake[] {
  return Array.isArray(takes) ? takes : [...(takes as ReadonlyMap<string, number>)].map(([key, amount]) => ({ key, amount }));
}

/** All taken, or the ones taken given back (`given`: done for a budget in memory, a round trip for one in storage). */
function verdictsTaken(
  budget: RateBudget,
  wanted: readonly TokenTake[],
  verdicts: readonly TakeResult[],
  now: number,
): { ok: true; result: Taken } | { ok: false; result: Taken; given: Promise<void> } {
  let all = true;
  for (const v of verdicts) if (!v.ok) all = false;
  const got = all ? wanted : wanted.filter((_, i) => verdicts[i]?.ok);
  const giveBack = (at: number) => budget.giveBack(got, at);
  if (all) return { ok: true, result: { ok: true, giveBack } };
  // A budget in memory gives back at once (its giveBack runs to the end before it returns its promise).
  const given = got.length ? giveBack(now) : Promise.resolve();
  return { ok: false, result: { ok: false, retryAfterMs: Math.max(...verdicts.map((v) => (v.ok ? 0 : v.retryAfterMs))) }, given };
}
