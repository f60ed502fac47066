// TokenBuckets (src/limits/token-buckets.ts): refill, all-or-nothing takes, give-backs, and which key goes
// when the map is full (the oldest touched, whatever string object the caller keyed it with).
import { describe, expect, it } from 'vitest';
import { TokenBuckets } from '../src/limits/token-buckets.ts';

/** A key built at run time, as the send path builds its keys (a new string object each time). */
const built = (a: string, b: string) => `${a}>${b}`;

describe('TokenBuckets', () => {
  it('takes until spent, says when to retry, and refills continuously', () => {
    const buckets = new TokenBuckets(10, 1000); // 10 tokens per second
    expect(buckets.take(built('s', 'r'), 6, 0)).toEqual({ ok: true });
    expect(buckets.take(built('s', 'r'), 4, 0)).toEqual({ ok: true });
    // Spent: one token comes back every 100 ms.
    expect(buckets.take(built('s', 'r'), 3, 0)).toEqual({ ok: false, retryAfterMs: 300 });
    expect(buckets.take(built('s', 'r'), 3, 299)).toEqual({ ok: false, retryAfterMs: 1 });
    expect(buckets.take(built('s', 'r'), 3, 300)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'r'), 1, 300)).toEqual({ ok: false, retryAfterMs: 100 });
    // A refused take takes nothing; other keys have their own buckets.
    expect(buckets.take(built('s', 'other'), 10, 300)).toEqual({ ok: true });
    // Never above capacity, however long it waited.
    expect(buckets.take(built('s', 'r'), 11, 1_000_000)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'r'), 1, 1_000_000)).toEqual({ ok: false, retryAfterMs: 100 });
  });

  it('gives back what a take did not use, never above capacity, and ignores a forgotten key', () => {
    const buckets = new TokenBuckets(10, 1000);
    buckets.take(built('s', 'r'), 10, 0);
    buckets.give(built('s', 'r'), 4, 0);
    expect(buckets.check(built('s', 'r'), 4, 0)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'r'), 5, 0)).toEqual({ ok: false, retryAfterMs: 100 });
    buckets.give(built('s', 'r'), 100, 0);
    expect(buckets.check(built('s', 'r'), 10, 0)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'r'), 11, 0)).toEqual({ ok: true }); // above capacity: only from a full bucket
    buckets.give(built('s', 'unknown'), 5, 0);
    expect(buckets.size).toBe(1);
  });

  it('drops the key touched longest ago when full (a key in use keeps its spent bucket)', () => {
    const buckets = new TokenBuckets(10, 60_000, 3);
    for (const k of ['a', 'b', 'c']) buckets.take(built('s', k), 10, 0);
    // "a" is touched again (a take and a give-back, by new string objects): "b" is now the oldest.
    buckets.take(built('s', 'a'), 0, 1);
    buckets.give(built('s', 'c'), 0, 2);
    buckets.take(built('s', 'd'), 1, 3);
    expect(buckets.size).toBe(3);
    // "b" was dropped (a full bucket again); "a" and "c" are still spent.
    expect(buckets.check(built('s', 'b'), 10, 3)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'a'), 10, 3).ok).toBe(false);
    expect(buckets.check(built('s', 'c'), 10, 3).ok).toBe(false);
    buckets.take(built('s', 'e'), 1, 4);
    // Then "a" (touched at 1), while "c" (given back at 2) stays.
    expect(buckets.check(built('s', 'a'), 10, 4)).toEqual({ ok: true });
    expect(buckets.check(built('s', 'c'), 10, 4).ok).toBe(false);
  });
});
