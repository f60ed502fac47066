/**
 * The one-time prekey budget: which stored token buckets a hand-out spends
 * and how a bucket refills. Pure; each storage backend reads the bucket rows
 * inside its claim transaction, asks `spendOneTime`, and writes back what it
 * returns, so both backends apply one rule. spec/09-relay.md §4.2, §8.4.
 *
 * One hand-out takes one X25519 and one ML-KEM one-time prekey together, so
 * a single budget protects both pools. Three buckets must each hold a token:
 *  - the target device's: caps what all requesters together take from it;
 *  - the requesting account's: caps what one account takes from everyone;
 *  - the (requester, target) pair's: one account cannot spend a target's
 *    whole budget by itself, so honest requesters still get one-time keys.
 * Past any of them the bundle is still served, with the last-resort KEM key
 * and no one-time key: senders are never refused, pools are never emptied
 * by one account.
 */
import type { BucketLimit, OneTimeBudget } from '../storage/types.ts';

/** A stored bucket row. */
export interface BucketRow {
  readonly key: string;
  readonly tokens: number;
  readonly updated: number;
}

/** What the backend writes back: the bucket after the take, and when it is full again (sweepable). */
export interface BucketWrite extends BucketRow {
  readonly fullAt: number;
}

export type BudgetScope = 'requester' | 'target' | 'pair';

export const hexKey = (a: Uint8Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

/** The bucket keys one hand-out spends (stable strings: they are primary keys in storage). */
export function budgetKeys(budget: OneTimeBudget, target: Uint8Array, deviceId: number): Record<BudgetScope, string> {
  const r = hexKey(budget.requester);
  const t = `${hexKey(target)}:${deviceId}`;
  return { requester: `otk-r:${r}`, target: `otk-t:${t}`, pair: `otk-p:${r}>${t}` };
}

/** Tokens in a bucket at `now` (a missing row is a full bucket). */
export function tokensAt(row: BucketRow | undefined, limit: BucketLimit, now: number): number {
  if (!row) return limit.capacity;
  const refill = (Math.max(0, now - row.updated) * limit.capacity) / limit.windowMs;
  return Math.min(limit.capacity, row.tokens + refill);
}

/**
 * One token from each of the three buckets, or none: `spent` names the
 * first bucket without a token (nothing is written then).
 */
export function spendOneTime(
  budget: OneTimeBudget,
  keys: Record<BudgetScope, string>,
  rows: ReadonlyMap<string, BucketRow>,
): { readonly ok: true; readonly writes: BucketWrite[] } | { readonly ok: false; readonly spent: BudgetScope } {
  const limits: Record<BudgetScope, BucketLimit> = { requester: budget.perRequester, target: budget.perTarget, pair: budget.perPair };
  const writes: BucketWrite[] = [];
  // Target first: the reason a sender most often sees, and the one that protects the pool.
  for (const scope of ['target', 'pair', 'requester'] as const) {
    const limit = limits[scope];
    const key = keys[scope];
    const tokens = tokensAt(rows.get(key), limit, budget.now);
    if (tokens < 1) return { ok: false, spent: scope };
    const left = tokens - 1;
    writes.push({
      key,
      tokens: left,
      updated: budget.now,
      fullAt: budget.now + Math.ceil(((limit.capacity - left) * limit.windowMs) / limit.capacity),
    });
  }
  return { ok: true, writes };
}
