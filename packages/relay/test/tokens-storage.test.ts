// The token store on both backends: registration limit, revocation scoped to
// the owner, flags halving then revoking, per-token and per-recipient budgets
// (all or nothing), and the strangers budgets. spec/12-sealed-sender.md §5-§6.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from '../src/storage/postgres.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { TokenStore } from '../src/storage/tokens-types.ts';

const URL = process.env.PARLEY_TEST_POSTGRES_URL;
const admin = URL ? new pg.Pool({ connectionString: URL, max: 1 }) : undefined;
afterAll(() => admin?.end());

const HOUR = 3_600_000;
const T0 = 1_800_000_000_000;
const acct = () => new Uint8Array(randomBytes(32));
const hash = () => new Uint8Array(randomBytes(32));
const budget = { windowMs: HOUR, envelopes: 4, bytes: 1000 };
const wide = { windowMs: HOUR, envelopes: 1_000_000, bytes: 1e12 };

interface Backend {
  tokens: TokenStore;
  close(): Promise<void>;
}

/** `poolSize`: PostgreSQL connections (SQLite has one writer). */
const backends: [string, (poolSize?: number) => Promise<Backend>][] = [
  [
    'SQLite',
    async () => {
      const s = new SqliteStorage({ path: ':memory:' });
      return { tokens: s.tokens, close: () => s.close() };
    },
  ],
];
if (URL) {
  backends.push([
    'PostgreSQL',
    async (poolSize = 2) => {
      const schema = `parley_tok_${randomBytes(5).toString('hex')}`;
      const s = await PostgresStorage.open({ connectionString: URL, schema, poolSize });
      return {
        tokens: s.tokens,
        async close() {
          await s.close();
          await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        },
      };
    },
  ]);
}

describe.each(backends)('token store (%s)', (_name, open) => {
  it('registers up to the live limit, all or nothing', async () => {
    const b = await open();
    try {
      const a = acct();
      expect(
        await b.tokens.registerTokens(
          a,
          [1, 2].map(() => ({ hash: hash(), expiresAt: T0 + HOUR, scope: 'contact' })),
          T0,
          3,
        ),
      ).toEqual({
        status: 'stored',
        live: 2,
      });
      const more = [1, 2].map(() => ({ hash: hash(), expiresAt: T0 + HOUR, scope: 'contact' as const }));
      expect(await b.tokens.registerTokens(a, more, T0, 3)).toEqual({ status: 'too-many', limit: 3 });
      expect(await b.tokens.liveTokens(a, T0)).toBe(2);
      // Expired tokens do not count.
      expect(await b.tokens.liveTokens(a, T0 + HOUR)).toBe(0);
      expect((await b.tokens.registerTokens(a, more, T0 + HOUR, 3)).status).toBe('stored');
    } finally {
      await b.close();
    }
  });

  it('spends per-token budgets, halved per flag, revoked at the third; only the owner revokes', async () => {
    const b = await open();
    try {
      const a = acct();
      const h = hash();
      await b.tokens.registerTokens(a, [{ hash: h, expiresAt: T0 + 10 * HOUR, scope: 'contact' }], T0, 10);
      const spend = (envelopes: number, bytes = 10, now = T0) =>
        b.tokens.spendTokens({ uses: [{ account: a, hash: h, envelopes, bytes }], now, perToken: budget, perRecipient: wide });
      expect(await spend(3)).toEqual({ status: 'ok' });
      const over = await spend(2);
      expect(over).toMatchObject({ status: 'budget', scope: 'token' });
      expect(await spend(1)).toEqual({ status: 'ok' });
      // The next window starts afresh.
      expect(await spend(4, 10, T0 + HOUR)).toEqual({ status: 'ok' });
      expect(await b.tokens.flagToken(a, h, 3)).toBe('flagged');
      // One flag: half of 4 in the next window.
      expect((await spend(3, 10, T0 + 2 * HOUR)).status).toBe('budget');
      expect(await spend(2, 10, T0 + 2 * HOUR)).toEqual({ status: 'ok' });
      expect(await b.tokens.flagToken(acct(), h, 3)).toBe('unknown');
      expect(await b.tokens.revokeTokens(acct(), [h])).toBe(0);
      expect(await b.tokens.flagToken(a, h, 3)).toBe('flagged');
      expect(await b.tokens.flagToken(a, h, 3)).toBe('revoked');
      expect(await spend(1, 10, T0 + 3 * HOUR)).toEqual({ status: 'invalid' });
    } finally {
      await b.close();
    }
  });

  it('refuses the whole send when one token is invalid or a recipient is over budget, and spends nothing then', async () => {
    const b = await open();
    try {
      const a = acct();
      const h1 = hash();
      const h2 = hash();
      await b.tokens.registerTokens(
        a,
        [h1, h2].map((hash) => ({ hash, expiresAt: T0 + HOUR, scope: 'contact' as const })),
        T0,
        10,
      );
      const perRecipient = { windowMs: HOUR, envelopes: 5, bytes: 1000 };
      const r1 = await b.tokens.spendTokens({
        uses: [
          { account: a, hash: h1, envelopes: 3, bytes: 1 },
          { account: a, hash: hash(), envelopes: 1, bytes: 1 },
        ],
        now: T0,
        perToken: budget,
        perRecipient,
      });
      expect(r1).toEqual({ status: 'invalid' });
      // h1's 3 were not spent: 4 more fit on h1... but the recipient allows 5 in all.
      expect(
        await b.tokens.spendTokens({ uses: [{ account: a, hash: h1, envelopes: 4, bytes: 1 }], now: T0, perToken: budget, perRecipient }),
      ).toEqual({
        status: 'ok',
      });
      expect(
        await b.tokens.spendTokens({ uses: [{ account: a, hash: h2, envelopes: 2, bytes: 1 }], now: T0, perToken: budget, perRecipient }),
      ).toMatchObject({ status: 'budget', scope: 'recipient' });
      // A token presented for another account is invalid.
      expect(
        await b.tokens.spendTokens({
          uses: [{ account: acct(), hash: h2, envelopes: 1, bytes: 1 }],
          now: T0,
          perToken: budget,
          perRecipient,
        }),
      ).toEqual({ status: 'invalid' });
    } finally {
      await b.close();
    }
  });

  it('limits first contacts per sender and identified envelopes per recipient, per day', async () => {
    const b = await open();
    try {
      const sender = acct();
      const r = [acct(), acct(), acct()];
      const limits = { recipientsPerDay: 2, envelopesPerDay: 3 };
      const go = (account: Uint8Array, envelopes = 1, now = T0) =>
        b.tokens.spendStranger({ sender, recipients: [{ account, envelopes }], now, ...limits });
      expect(await go(r[0] as Uint8Array)).toEqual({ status: 'ok' });
      expect(await go(r[1] as Uint8Array)).toEqual({ status: 'ok' });
      expect(await go(r[2] as Uint8Array)).toMatchObject({ status: 'exceeded', scope: 'sender' });
      // A recipient already reached today is not new.
      expect(await go(r[0] as Uint8Array, 2)).toEqual({ status: 'ok' });
      expect(await go(r[0] as Uint8Array)).toMatchObject({ status: 'exceeded', scope: 'recipient' });
      // Tomorrow the budgets start again.
      expect(await go(r[2] as Uint8Array, 1, T0 + 86_400_000)).toEqual({ status: 'ok' });
      expect(await b.tokens.sweepTokens(T0 + 3 * 86_400_000)).toBeGreaterThan(0);
    } finally {
      await b.close();
    }
  });

  it('concurrent spends and registrations never pass a budget or a limit (on PostgreSQL, across connections)', async () => {
    // Enough connections for the transactions to overlap (with 2, a missing row lock went unseen).
    const b = await open(8);
    try {
      const a = acct();
      // Each send under a token of its own: only the recipient's window row stands between them.
      const hashes = Array.from({ length: 12 }, () => hash());
      const registered = hashes.map((h) => ({ hash: h, expiresAt: T0 + HOUR, scope: 'contact' as const }));
      expect(await b.tokens.registerTokens(a, registered, T0, 20)).toEqual({ status: 'stored', live: 12 });
      const perRecipient = { windowMs: HOUR, envelopes: 6, bytes: 1e6 };
      const spent = await Promise.all(
        hashes.map((h) =>
          b.tokens.spendTokens({ uses: [{ account: a, hash: h, envelopes: 2, bytes: 1 }], now: T0, perToken: wide, perRecipient }),
        ),
      );
      // Each send takes 2 of the recipient's 6: exactly 3 pass.
      expect(spent.filter((r) => r.status === 'ok')).toHaveLength(3);
      expect(spent.filter((r) => r.status !== 'ok').every((r) => r.status === 'budget' && r.scope === 'recipient')).toBe(true);

      const other = acct();
      const registrations = await Promise.all(
        Array.from({ length: 6 }, () => b.tokens.registerTokens(other, [{ hash: hash(), expiresAt: T0 + HOUR, scope: 'group' }], T0, 3)),
      );
      expect(registrations.filter((r) => r.status === 'stored')).toHaveLength(3);
      expect(await b.tokens.liveTokens(other, T0)).toBe(3);
    } finally {
      await b.close();
    }
  });
});
