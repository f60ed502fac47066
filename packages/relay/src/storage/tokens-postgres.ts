/**
 * The token tables on the relay's PostgreSQL database (created if missing)
 * and their queries; the rules that use them are rules/tokens.ts, run by the
 * PostgreSQL driver like every other storage rule (one transaction, retried
 * after a lost race). Rows are locked in the rules' order (token hashes, then
 * recipient accounts, ascending), so concurrent sends under the same tokens
 * serialise instead of deadlocking. spec/12-sealed-sender.md §5-§6.
 */
import type pg from 'pg';
import type { TokenQueries, TokenReadQueries } from './rules/tokens.ts';

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

const count = async (p: Promise<pg.QueryResult<{ n: string }>>): Promise<number> => Number((await p).rows[0]?.n ?? 0);
const run = async (p: Promise<unknown>): Promise<void> => {
  await p;
};

const LIVE = 'SELECT COUNT(*) AS n FROM delivery_tokens WHERE account = $1 AND expires_at > $2';

/** The token queries inside a rule's transaction, on its connection. */
export function tokenQueries(q: Q): TokenQueries {
  return {
    lockTokenAccount: (account) =>
      run(q.query('SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, $2), 0))', [account, 'hex'])),
    upsertToken: (hash, account, scope, expiresAt) =>
      run(
        q.query(
          `INSERT INTO delivery_tokens (hash, account, scope, expires_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE delivery_tokens.account = excluded.account`,
          [hash, account, scope, expiresAt],
        ),
      ),
    liveTokenCount: (account, now) => count(q.query<{ n: string }>(LIVE, [account, now])),
    deleteAccountTokens: async (account, hashes) =>
      (await q.query('DELETE FROM delivery_tokens WHERE account = $1 AND hash = ANY($2::bytea[])', [account, hashes])).rowCount ?? 0,
    flagToken: async (hash, account) =>
      (
        await q.query<{ flags: number }>('UPDATE delivery_tokens SET flags = flags + 1 WHERE hash = $1 AND account = $2 RETURNING flags', [
          hash,
          account,
        ])
      ).rows[0]?.flags,
    deleteToken: (hash) => run(q.query('DELETE FROM delivery_tokens WHERE hash = $1', [hash])),
    token: async (hash) => {
      const r = (
        await q.query<{
          account: Buffer;
          expires_at: string;
          flags: number;
          window_start: string;
          window_envelopes: string;
          window_bytes: string;
        }>(
          'SELECT account, expires_at, flags, window_start, window_envelopes, window_bytes FROM delivery_tokens WHERE hash = $1 FOR UPDATE',
          [hash],
        )
      ).rows[0];
      return (
        r && {
          account: r.account,
          expiresAt: Number(r.expires_at),
          flags: r.flags,
          windowStart: Number(r.window_start),
          windowEnvelopes: Number(r.window_envelopes),
          windowBytes: Number(r.window_bytes),
        }
      );
    },
    setTokenWindow: (hash, start, envelopes, bytes) =>
      run(
        q.query('UPDATE delivery_tokens SET window_start = $1, window_envelopes = $2, window_bytes = $3 WHERE hash = $4', [
          start,
          envelopes,
          bytes,
          hash,
        ]),
      ),
    recipientWindow: async (account, start) => {
      // Created empty first, so that the row exists to be locked: two sends cannot both read "no window".
      await q.query(
        `INSERT INTO sealed_recipient_windows (account, window_start, envelopes, bytes) VALUES ($1, $2, 0, 0)
         ON CONFLICT (account) DO NOTHING`,
        [account, start],
      );
      const r = (
        await q.query<{ window_start: string; envelopes: string; bytes: string }>(
          'SELECT window_start, envelopes, bytes FROM sealed_recipient_windows WHERE account = $1 FOR UPDATE',
          [account],
        )
      ).rows[0];
      return r && { windowStart: Number(r.window_start), envelopes: Number(r.envelopes), bytes: Number(r.bytes) };
    },
    putRecipientWindow: (account, start, envelopes, bytes) =>
      run(
        q.query('UPDATE sealed_recipient_windows SET window_start = $2, envelopes = $3, bytes = $4 WHERE account = $1', [
          account,
          start,
          envelopes,
          bytes,
        ]),
      ),
    lockStrangerSender: (sender) =>
      run(q.query('SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, $2), 1))', [sender, 'hex'])),
    strangerPairKnown: async (sender, day, recipient) =>
      ((
        await q.query('SELECT 1 FROM stranger_pairs WHERE sender_account = $1 AND day = $2 AND recipient_account = $3', [
          sender,
          day,
          recipient,
        ])
      ).rowCount ?? 0) > 0,
    strangerPairCount: (sender, day) =>
      count(q.query<{ n: string }>('SELECT COUNT(*) AS n FROM stranger_pairs WHERE sender_account = $1 AND day = $2', [sender, day])),
    addStrangerPair: (sender, recipient, day) =>
      run(
        q.query('INSERT INTO stranger_pairs (sender_account, recipient_account, day) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
          sender,
          recipient,
          day,
        ]),
      ),
    addStrangerEnvelopes: async (recipient, day, envelopes) =>
      Number(
        (
          await q.query<{ envelopes: string }>(
            `INSERT INTO stranger_windows (recipient_account, day, envelopes) VALUES ($1, $2, $3)
             ON CONFLICT (recipient_account, day) DO UPDATE SET envelopes = stranger_windows.envelopes + excluded.envelopes
             RETURNING envelopes`,
            [recipient, day, envelopes],
          )
        ).rows[0]?.envelopes ?? 0,
      ),
    sweepTokenTables: async (now, beforeDay, windowsBefore) => {
      let n = 0;
      n += (await q.query('DELETE FROM delivery_tokens WHERE expires_at <= $1', [now])).rowCount ?? 0;
      n += (await q.query('DELETE FROM stranger_pairs WHERE day < $1', [beforeDay])).rowCount ?? 0;
      n += (await q.query('DELETE FROM stranger_windows WHERE day < $1', [beforeDay])).rowCount ?? 0;
      n += (await q.query('DELETE FROM sealed_recipient_windows WHERE window_start < $1', [windowsBefore])).rowCount ?? 0;
      return n;
    },
  };
}

export function tokenReads(pool: Q): TokenReadQueries {
  return { liveTokenCount: (account, now) => count(pool.query<{ n: string }>(LIVE, [account, now])) };
}
