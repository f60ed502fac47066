// Rate budgets (limits/rate-budgets.ts) follow one rule whether the buckets
// live in memory (SQLite, one process) or in PostgreSQL (shared by every
// relay process): the same sequence of takes and give-backs gives the same
// answers on both. spec/09-relay.md §8.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { type RateBudget, rateBudget, takeAll } from '../src/limits/rate-budgets.ts';
import { PostgresStorage } from '../src/storage/postgres.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { RelayStorage } from '../src/storage/types.ts';

const PG_URL = process.env.PARLEY_TEST_POSTGRES_URL;
const LIMIT = { capacity: 10, windowMs: 60_000 };
const T0 = 1_800_000_000_000;

const opened: { storage: RelayStorage; schema?: string }[] = [];
afterAll(async () => {
  for (const o of opened) await o.storage.close();
  if (PG_URL) {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    for (const o of opened) if (o.schema) await admin.query(`DROP SCHEMA IF EXISTS ${o.schema} CASCADE`);
    await admin.end();
  }
});

function contract(name: string, open: () => Promise<RelayStorage>) {
  describe(name, () => {
    const budget = async (): Promise<RateBudget> => rateBudget(await open(), 'test', LIMIT);

    it('takes until the bucket is empty, then refuses with the time until enough has refilled', async () => {
      const b = await budget();
      expect(await b.take('k', 6, T0)).toEqual({ ok: true });
      expect(await b.take('k', 4, T0)).toEqual({ ok: true });
      const refused = await b.take('k', 3, T0);
      expect(refused).toEqual({ ok: false, retryAfterMs: 18_000 });
      // Refusals take nothing: after the hinted wait, exactly enough is back.
      expect(await b.take('k', 3, T0 + 17_999)).toMatchObject({ ok: false });
      expect(await b.take('k', 3, T0 + 18_000)).toEqual({ ok: true });
      // Other keys have their own buckets.
      expect(await b.take('other', 10, T0)).toEqual({ ok: true });
    });

    it('refills continuously up to capacity, never above', async () => {
      const b = await budget();
      expect(await b.take('k', 10, T0)).toEqual({ ok: true });
      expect(await b.take('k', 10, T0 + 10 * 60_000)).toEqual({ ok: true });
      expect(await b.take('k', 1, T0 + 10 * 60_000)).toMatchObject({ ok: false });
    });

    it('an amount above capacity passes only from a full bucket, and empties it', async () => {
      const b = await budget();
      expect(await b.take('k', 1, T0)).toEqual({ ok: true });
      expect(await b.take('k', 25, T0)).toMatchObject({ ok: false });
      expect(await b.take('k', 25, T0 + 6_000)).toEqual({ ok: true });
      expect(await b.take('k', 1, T0 + 6_000)).toMatchObject({ ok: false });
    });

    it('gives back what a refused request took, never above capacity', async () => {
      const b = await budget();
      expect(await b.take('k', 8, T0)).toEqual({ ok: true });
      await b.giveBack([{ key: 'k', amount: 8 }], T0);
      expect(await b.take('k', 10, T0)).toEqual({ ok: true });
      await b.giveBack([{ key: 'k', amount: 50 }], T0);
      expect(await b.take('k', 10, T0)).toEqual({ ok: true });
      expect(await b.take('k', 1, T0)).toMatchObject({ ok: false });
    });

    it('takeEach takes from each bucket on its own terms, in one call', async () => {
      const b = await budget();
      expect(await b.take('spent', 9, T0)).toEqual({ ok: true });
      expect(await b.take('half', 5, T0)).toEqual({ ok: true });
      const verdicts = await b.takeEach(
        [
          { key: 'spent', amount: 2 },
          { key: 'half', amount: 5 },
          { key: 'new', amount: 3 },
          { key: 'huge', amount: 40 },
        ],
        T0,
      );
      expect(verdicts).toEqual([{ ok: false, retryAfterMs: 6_000 }, { ok: true }, { ok: true }, { ok: true }]);
      // What each holds now: spent 1 (refused, untouched), half 0, new 7, huge 0.
      expect(await b.take('spent', 1, T0)).toEqual({ ok: true });
      expect(await b.take('half', 1, T0)).toMatchObject({ ok: false });
      expect(await b.take('new', 7, T0)).toEqual({ ok: true });
      expect(await b.take('new', 1, T0)).toMatchObject({ ok: false });
      expect(await b.take('huge', 1, T0)).toMatchObject({ ok: false });
    });

    it('takeAll takes every key or none', async () => {
      const b = await budget();
      expect(await b.take('full', 9, T0)).toEqual({ ok: true });
      const refused = await takeAll(
        b,
        new Map([
          ['a', 5],
          ['full', 5],
        ]),
        T0,
      );
      expect(refused.ok).toBe(false);
      // 'a' was given back: all 10 of its tokens are there.
      expect(await b.take('a', 10, T0)).toEqual({ ok: true });
      const taken = await takeAll(
        b,
        new Map([
          ['c', 4],
          ['d', 4],
        ]),
        T0,
      );
      expect(taken.ok).toBe(true);
      if (taken.ok) await taken.giveBack(T0);
      expect(await b.take('c', 10, T0)).toEqual({ ok: true });
    });
  });
}

contract('in memory (single-process storage)', async () => {
  const storage = new SqliteStorage({ path: ':memory:' });
  opened.push({ storage });
  return storage;
});

describe.skipIf(!PG_URL)('PostgreSQL', () => {
  contract('stored (shared storage)', async () => {
    const schema = `parley_rb_${randomBytes(6).toString('hex')}`;
    const storage = await PostgresStorage.open({ connectionString: PG_URL as string, schema });
    opened.push({ storage, schema });
    return storage;
  });

  it('concurrent takes from one bucket never overspend it', async () => {
    const schema = `parley_rb_${randomBytes(6).toString('hex')}`;
    // Two storages on one schema: two relay processes' pools.
    const one = await PostgresStorage.open({ connectionString: PG_URL as string, schema });
    const two = await PostgresStorage.open({ connectionString: PG_URL as string, schema });
    opened.push({ storage: one, schema }, { storage: two });
    const budgets = [rateBudget(one, 'race', LIMIT), rateBudget(two, 'race', LIMIT)];
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => (budgets[i % 2] as RateBudget).take('k', 1, T0)));
    expect(verdicts.filter((v) => v.ok)).toHaveLength(LIMIT.capacity);
  });
});
