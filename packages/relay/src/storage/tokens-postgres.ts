/**
 * `TokenStore` on the relay's PostgreSQL database: its own tables, created
 * if missing; each method one transaction, rows locked in hash order so
 * concurrent sends under the same tokens serialise instead of deadlocking.
 * spec/12-sealed-sender.md §5-§6.
 */
import type pg from 'pg';
import {
  DAY_MS,
  type FlagResult,
  type RegisterTokensResult,
  type SpendTokensInput,
  type SpendTokensResult,
  type StrangerInput,
  type StrangerResult,
  type TokenRegistration,
  type TokenStore,
  flaggedBudget,
  windowStart,
} from './tokens-types.ts';
import type { AccountKey } from './tokens-types.ts';

export const POSTGRES_TOKEN_TABLES = `
  CREATE TABLE IF NOT EXISTS delivery_tokens (
    hash BYTEA PRIMARY KEY,
    account BYTEA NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    window_start BIGINT NOT NULL DEFAULT 0,
    window_envelopes BIGINT NOT NULL DEFAULT 0,
    window_bytes BIGINT NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS delivery_tokens_account ON delivery_tokens (account, expires_at);
  CREATE INDEX IF NOT EXISTS delivery_tokens_expiry ON delivery_tokens (expires_at);
  CREATE TABLE IF NOT EXISTS sealed_recipient_windows (
    account BYTEA PRIMARY KEY,
    window_start BIGINT NOT NULL,
    envelopes BIGINT NOT NULL,
    bytes BIGINT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS stranger_pairs (
    sender_account BYTEA NOT NULL,
    recipient_account BYTEA NOT NULL,
    day BIGINT NOT NULL,
    PRIMARY KEY (sender_account, day, recipient_account)
  );
  CREATE TABLE IF NOT EXISTS stranger_windows (
    recipient_account BYTEA NOT NULL,
    day BIGINT NOT NULL,
    envelopes BIGINT NOT NULL,
    PRIMARY KEY (recipient_account, day)
  );
`;

/** Advisory lock id serialising the CREATE TABLE IF NOT EXISTS of several relay processes starting at once. */
const TOKEN_DDL_LOCK = 0x7061726c_6579;

/** Creates the token tables if missing (run by PostgresStorage.open, after its own migrations). */
export async function createTokenTables(client: pg.PoolClient): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [TOKEN_DDL_LOCK]);
    await client.query(POSTGRES_TOKEN_TABLES);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

type Q = Pick<pg.PoolClient, 'query'>;

class Abort<T> extends Error {
  constructor(readonly result: T) {
    super('aborted write');
  }
}

const RETRYABLE = new Set(['40001', '40P01', '23505']);
const MAX_ATTEMPTS = 8;
const b = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

export class PostgresTokenStore implements TokenStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async #tx<T>(fn: (q: Q) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (e) {
          broken = e as Error;
        }
        if (error instanceof Abort) return error.result as T;
        if (!RETRYABLE.has((error as { code?: string }).code ?? '') || attempt >= MAX_ATTEMPTS) throw error;
      } finally {
        client.release(broken);
      }
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
  }

  registerTokens(account: AccountKey, tokens: readonly TokenRegistration[], now: number, maxLive: number): Promise<RegisterTokensResult> {
    return this.#tx(async (q): Promise<RegisterTokensResult> => {
      // One registrar per account at a time, so two concurrent registrations cannot both pass the limit.
      await q.query('SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, $2), 0))', [b(account), 'hex']);
      for (const t of tokens) {
        await q.query(
          `INSERT INTO delivery_tokens (hash, account, scope, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE delivery_tokens.account = excluded.account`,
          [b(t.hash), b(account), t.scope, t.expiresAt],
        );
      }
      const live = Number(
        (
          await q.query<{ n: string }>('SELECT COUNT(*) AS n FROM delivery_tokens WHERE account = $1 AND expires_at > $2', [
            b(account),
            now,
          ])
        ).rows[0]?.n ?? 0,
      );
      if (live > maxLive) throw new Abort<RegisterTokensResult>({ status: 'too-many', limit: maxLive });
      return { status: 'stored', live };
    });
  }

  revokeTokens(account: AccountKey, hashes: readonly Uint8Array[]): Promise<number> {
    return this.#tx(async (q) => {
      const r = await q.query('DELETE FROM delivery_tokens WHERE account = $1 AND hash = ANY($2::bytea[])', [b(account), hashes.map(b)]);
      return r.rowCount ?? 0;
    });
  }

  flagToken(account: AccountKey, hash: Uint8Array, revokeAt: number): Promise<FlagResult> {
    return this.#tx(async (q): Promise<FlagResult> => {
      const r = await q.query<{ flags: number }>(
        'UPDATE delivery_tokens SET flags = flags + 1 WHERE hash = $1 AND account = $2 RETURNING flags',
        [b(hash), b(account)],
      );
      const flags = r.rows[0]?.flags;
      if (flags === undefined) return 'unknown';
      if (flags < revokeAt) return 'flagged';
      await q.query('DELETE FROM delivery_tokens WHERE hash = $1', [b(hash)]);
      return 'revoked';
    });
  }

  spendTokens(input: SpendTokensInput): Promise<SpendTokensResult> {
    const { now, perToken, perRecipient } = input;
    // Lock order: token hashes ascending, then recipient accounts ascending.
    const uses = [...input.uses].sort((x, y) => Buffer.compare(b(x.hash), b(y.hash)));
    return this.#tx(async (q): Promise<SpendTokensResult> => {
      const perAccount = new Map<string, { account: Buffer; envelopes: number; bytes: number }>();
      for (const use of uses) {
        const row = (
          await q.query<{
            account: Buffer;
            expires_at: number;
            flags: number;
            window_start: number;
            window_envelopes: number;
            window_bytes: number;
          }>(
            'SELECT account, expires_at, flags, window_start, window_envelopes, window_bytes FROM delivery_tokens WHERE hash = $1 FOR UPDATE',
            [b(use.hash)],
          )
        ).rows[0];
        if (!row || Number(row.expires_at) <= now || !row.account.equals(b(use.account)))
          throw new Abort<SpendTokensResult>({ status: 'invalid' });
        const start = windowStart(now, perToken.windowMs);
        const fresh = Number(row.window_start) !== start;
        const envelopes = (fresh ? 0 : Number(row.window_envelopes)) + use.envelopes;
        const bytes = (fresh ? 0 : Number(row.window_bytes)) + use.bytes;
        const limit = flaggedBudget(perToken, row.flags);
        if (envelopes > limit.envelopes || bytes > limit.bytes) {
          throw new Abort<SpendTokensResult>({ status: 'budget', scope: 'token', retryAfterMs: start + perToken.windowMs - now });
        }
        await q.query('UPDATE delivery_tokens SET window_start = $1, window_envelopes = $2, window_bytes = $3 WHERE hash = $4', [
          start,
          envelopes,
          bytes,
          b(use.hash),
        ]);
        const key = b(use.account).toString('hex');
        const acc = perAccount.get(key) ?? { account: b(use.account), envelopes: 0, bytes: 0 };
        acc.envelopes += use.envelopes;
        acc.bytes += use.bytes;
        perAccount.set(key, acc);
      }
      for (const [, acc] of [...perAccount].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
        const start = windowStart(now, perRecipient.windowMs);
        await q.query(
          `INSERT INTO sealed_recipient_windows (account, window_start, envelopes, bytes) VALUES ($1, $2, 0, 0)
           ON CONFLICT (account) DO NOTHING`,
          [acc.account, start],
        );
        const row = (
          await q.query<{ window_start: string; envelopes: string; bytes: string }>(
            'SELECT window_start, envelopes, bytes FROM sealed_recipient_windows WHERE account = $1 FOR UPDATE',
            [acc.account],
          )
        ).rows[0];
        const fresh = !row || Number(row.window_start) !== start;
        const envelopes = (fresh ? 0 : Number(row?.envelopes)) + acc.envelopes;
        const bytes = (fresh ? 0 : Number(row?.bytes)) + acc.bytes;
        if (envelopes > perRecipient.envelopes || bytes > perRecipient.bytes) {
          throw new Abort<SpendTokensResult>({ status: 'budget', scope: 'recipient', retryAfterMs: start + perRecipient.windowMs - now });
        }
        await q.query('UPDATE sealed_recipient_windows SET window_start = $2, envelopes = $3, bytes = $4 WHERE account = $1', [
          acc.account,
          start,
          envelopes,
          bytes,
        ]);
      }
      return { status: 'ok' };
    });
  }

  spendStranger(input: StrangerInput): Promise<StrangerResult> {
    const day = Math.floor(input.now / DAY_MS);
    const retryAfterMs = (day + 1) * DAY_MS - input.now;
    const sender = b(input.sender);
    const recipients = [...input.recipients].sort((x, y) => Buffer.compare(b(x.account), b(y.account)));
    return this.#tx(async (q): Promise<StrangerResult> => {
      // One sender's first-contact count is checked and raised by one transaction at a time.
      await q.query('SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, $2), 1))', [sender, 'hex']);
      for (const r of recipients) {
        const recipient = b(r.account);
        const known = await q.query('SELECT 1 FROM stranger_pairs WHERE sender_account = $1 AND day = $2 AND recipient_account = $3', [
          sender,
          day,
          recipient,
        ]);
        if (!known.rowCount) {
          const n = Number(
            (await q.query<{ n: string }>('SELECT COUNT(*) AS n FROM stranger_pairs WHERE sender_account = $1 AND day = $2', [sender, day]))
              .rows[0]?.n ?? 0,
          );
          if (n >= input.recipientsPerDay) throw new Abort<StrangerResult>({ status: 'exceeded', scope: 'sender', retryAfterMs });
          await q.query('INSERT INTO stranger_pairs (sender_account, recipient_account, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
            sender,
            recipient,
            day,
          ]);
        }
        const taken = await q.query<{ envelopes: string }>(
          `INSERT INTO stranger_windows (recipient_account, day, envelopes) VALUES ($1, $2, $3)
           ON CONFLICT (recipient_account, day) DO UPDATE SET envelopes = stranger_windows.envelopes + excluded.envelopes
           RETURNING envelopes`,
          [recipient, day, r.envelopes],
        );
        if (Number(taken.rows[0]?.envelopes ?? 0) > input.envelopesPerDay) {
          throw new Abort<StrangerResult>({ status: 'exceeded', scope: 'recipient', retryAfterMs });
        }
      }
      return { status: 'ok' };
    });
  }

  async liveTokens(account: AccountKey, now: number): Promise<number> {
    const r = await this.#pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM delivery_tokens WHERE account = $1 AND expires_at > $2', [
      b(account),
      now,
    ]);
    return Number(r.rows[0]?.n ?? 0);
  }

  sweepTokens(now: number): Promise<number> {
    const day = Math.floor(now / DAY_MS);
    return this.#tx(async (q) => {
      let n = 0;
      n += (await q.query('DELETE FROM delivery_tokens WHERE expires_at <= $1', [now])).rowCount ?? 0;
      n += (await q.query('DELETE FROM stranger_pairs WHERE day < $1', [day - 1])).rowCount ?? 0;
      n += (await q.query('DELETE FROM stranger_windows WHERE day < $1', [day - 1])).rowCount ?? 0;
      n += (await q.query('DELETE FROM sealed_recipient_windows WHERE window_start < $1', [now - DAY_MS])).rowCount ?? 0;
      return n;
    });
  }
}
