/**
 * The token tables on the relay's SQLite database (created if missing) and
 * their queries; the rules that use them are rules/tokens.ts, run by the
 * SQLite driver like every other storage rule (one group commit, a savepoint
 * each). spec/12-sealed-sender.md §5-§6.
 */
import type Database from 'better-sqlite3';
import type { RecipientWindowRow, TokenQueries, TokenReadQueries } from './rules/tokens.ts';

export const SQLITE_TOKEN_TABLES = `
  CREATE TABLE IF NOT EXISTS delivery_tokens (
    hash BLOB PRIMARY KEY,
    account BLOB NOT NULL,
    scope TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    window_start INTEGER NOT NULL DEFAULT 0,
    window_envelopes INTEGER NOT NULL DEFAULT 0,
    window_bytes INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS delivery_tokens_account ON delivery_tokens (account, expires_at);
  CREATE INDEX IF NOT EXISTS delivery_tokens_expiry ON delivery_tokens (expires_at);
  CREATE TABLE IF NOT EXISTS sealed_recipient_windows (
    account BLOB PRIMARY KEY,
    window_start INTEGER NOT NULL,
    envelopes INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS stranger_pairs (
    sender_account BLOB NOT NULL,
    recipient_account BLOB NOT NULL,
    day INTEGER NOT NULL,
    PRIMARY KEY (sender_account, day, recipient_account)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS stranger_windows (
    recipient_account BLOB NOT NULL,
    day INTEGER NOT NULL,
    envelopes INTEGER NOT NULL,
    PRIMARY KEY (recipient_account, day)
  ) WITHOUT ROWID;
`;

interface TokenRowSql {
  account: Buffer;
  expires_at: number;
  flags: number;
  window_start: number;
  window_envelopes: number;
  window_bytes: number;
}

/** Creates the tables if missing and prepares their statements. */
function tokenStatements(db: Database.Database) {
  db.exec(SQLITE_TOKEN_TABLES);
  return {
    live: db.prepare<[Buffer, number], { n: number }>('SELECT COUNT(*) AS n FROM delivery_tokens WHERE account = ? AND expires_at > ?'),
    get: db.prepare<[Buffer], TokenRowSql>(
      'SELECT account, expires_at, flags, window_start, window_envelopes, window_bytes FROM delivery_tokens WHERE hash = ?',
    ),
    upsert: db.prepare<[Buffer, Buffer, string, number]>(
      `INSERT INTO delivery_tokens (hash, account, scope, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE delivery_tokens.account = excluded.account`,
    ),
    revoke: db.prepare<[Buffer, Buffer]>('DELETE FROM delivery_tokens WHERE hash = ? AND account = ?'),
    deleteToken: db.prepare<[Buffer]>('DELETE FROM delivery_tokens WHERE hash = ?'),
    flag: db.prepare<[Buffer, Buffer], { flags: number }>(
      'UPDATE delivery_tokens SET flags = flags + 1 WHERE hash = ? AND account = ? RETURNING flags',
    ),
    spendToken: db.prepare<[number, number, number, Buffer]>(
      'UPDATE delivery_tokens SET window_start = ?, window_envelopes = ?, window_bytes = ? WHERE hash = ?',
    ),
    recipientWindow: db.prepare<[Buffer], { window_start: number; envelopes: number; bytes: number }>(
      'SELECT window_start, envelopes, bytes FROM sealed_recipient_windows WHERE account = ?',
    ),
    putRecipientWindow: db.prepare<[Buffer, number, number, number]>(
      `INSERT INTO sealed_recipient_windows (account, window_start, envelopes, bytes) VALUES (?, ?, ?, ?)
       ON CONFLICT (account) DO UPDATE SET window_start = excluded.window_start, envelopes = excluded.envelopes, bytes = excluded.bytes`,
    ),
    pairKnown: db.prepare<[Buffer, number, Buffer], { n: number }>(
      'SELECT 1 AS n FROM stranger_pairs WHERE sender_account = ? AND day = ? AND recipient_account = ?',
    ),
    pairCount: db.prepare<[Buffer, number], { n: number }>('SELECT COUNT(*) AS n FROM stranger_pairs WHERE sender_account = ? AND day = ?'),
    addPair: db.prepare<[Buffer, Buffer, number]>(
      'INSERT OR IGNORE INTO stranger_pairs (sender_account, recipient_account, day) VALUES (?, ?, ?)',
    ),
    addStranger: db.prepare<[Buffer, number, number], { envelopes: number }>(
      `INSERT INTO stranger_windows (recipient_account, day, envelopes) VALUES (?, ?, ?)
       ON CONFLICT (recipient_account, day) DO UPDATE SET envelopes = envelopes + excluded.envelopes
       RETURNING envelopes`,
    ),
    sweepTokens: db.prepare<[number]>('DELETE FROM delivery_tokens WHERE expires_at <= ?'),
    sweepPairs: db.prepare<[number]>('DELETE FROM stranger_pairs WHERE day < ?'),
    sweepStrangers: db.prepare<[number]>('DELETE FROM stranger_windows WHERE day < ?'),
    sweepWindows: db.prepare<[number]>('DELETE FROM sealed_recipient_windows WHERE window_start < ?'),
  };
}

type TokenStatements = ReturnType<typeof tokenStatements>;

/** Creates the token tables if missing; their queries inside a write and outside. */
export function sqliteTokenQueries(db: Database.Database): { readonly write: TokenQueries; readonly read: TokenReadQueries } {
  const s = tokenStatements(db);
  return { write: tokenQueries(s), read: tokenReads(s) };
}

/** The token queries inside a write: writes are serial here, so the lock queries do nothing. */
function tokenQueries(s: TokenStatements): TokenQueries {
  return {
    lockTokenAccount: () => {},
    upsertToken: (hash, account, scope, expiresAt) => {
      s.upsert.run(hash, account, scope, expiresAt);
    },
    liveTokenCount: (account, now) => (s.live.get(account, now) as { n: number }).n,
    deleteAccountTokens: (account, hashes) => hashes.reduce((n, h) => n + s.revoke.run(h, account).changes, 0),
    flagToken: (hash, account) => s.flag.get(hash, account)?.flags,
    deleteToken: (hash) => {
      s.deleteToken.run(hash);
    },
    token: (hash) => {
      const r = s.get.get(hash);
      return (
        r && {
          account: r.account,
          expiresAt: r.expires_at,
          flags: r.flags,
          windowStart: r.window_start,
          windowEnvelopes: r.window_envelopes,
          windowBytes: r.window_bytes,
        }
      );
    },
    setTokenWindow: (hash, start, envelopes, bytes) => {
      s.spendToken.run(start, envelopes, bytes, hash);
    },
    recipientWindow: (account): RecipientWindowRow | undefined => {
      const r = s.recipientWindow.get(account);
      return r && { windowStart: r.window_start, envelopes: r.envelopes, bytes: r.bytes };
    },
    putRecipientWindow: (account, start, envelopes, bytes) => {
      s.putRecipientWindow.run(account, start, envelopes, bytes);
    },
    lockStrangerSender: () => {},
    strangerPairKnown: (sender, day, recipient) => s.pairKnown.get(sender, day, recipient) !== undefined,
    strangerPairCount: (sender, day) => (s.pairCount.get(sender, day) as { n: number }).n,
    addStrangerPair: (sender, recipient, day) => {
      s.addPair.run(sender, recipient, day);
    },
    addStrangerEnvelopes: (recipient, day, envelopes) => (s.addStranger.get(recipient, day, envelopes) as { envelopes: number }).envelopes,
    sweepTokenTables: (now, beforeDay, windowsBefore) =>
      s.sweepTokens.run(now).changes +
      s.sweepPairs.run(beforeDay).changes +
      s.sweepStrangers.run(beforeDay).changes +
      s.sweepWindows.run(windowsBefore).changes,
  };
}

function tokenReads(s: TokenStatements): TokenReadQueries {
  return { liveTokenCount: async (account, now) => (s.live.get(account, now) as { n: number }).n };
}
