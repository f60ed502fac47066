/**
 * `TokenStore` on the relay's SQLite database: its own tables, created if
 * missing, every write through the storage's group commit.
 * spec/12-sealed-sender.md §5-§6.
 */
import type Database from 'better-sqlite3';
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
import type { WriteBatcher } from './write-batcher.ts';

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

/** Thrown inside a write to roll back its savepoint and return `result`. */
class Abort<T> extends Error {
  constructor(readonly result: T) {
    super('aborted write');
  }
}

const b = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

interface TokenRow {
  account: Buffer;
  expires_at: number;
  flags: number;
  window_start: number;
  window_envelopes: number;
  window_bytes: number;
}

export class SqliteTokenStore implements TokenStore {
  readonly #writes: WriteBatcher;
  readonly #s;

  constructor(db: Database.Database, writes: WriteBatcher) {
    db.exec(SQLITE_TOKEN_TABLES);
    this.#writes = writes;
    this.#s = {
      live: db.prepare<[Buffer, number], { n: number }>('SELECT COUNT(*) AS n FROM delivery_tokens WHERE account = ? AND expires_at > ?'),
      get: db.prepare<[Buffer], TokenRow>(
        'SELECT account, expires_at, flags, window_start, window_envelopes, window_bytes FROM delivery_tokens WHERE hash = ?',
      ),
      upsert: db.prepare(
        `INSERT INTO delivery_tokens (hash, account, scope, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at WHERE delivery_tokens.account = excluded.account`,
      ),
      revoke: db.prepare('DELETE FROM delivery_tokens WHERE hash = ? AND account = ?'),
      flag: db.prepare('UPDATE delivery_tokens SET flags = flags + 1 WHERE hash = ? AND account = ?'),
      flags: db.prepare<[Buffer], { flags: number }>('SELECT flags FROM delivery_tokens WHERE hash = ?'),
      spendToken: db.prepare('UPDATE delivery_tokens SET window_start = ?, window_envelopes = ?, window_bytes = ? WHERE hash = ?'),
      recipientWindow: db.prepare<[Buffer], { window_start: number; envelopes: number; bytes: number }>(
        'SELECT window_start, envelopes, bytes FROM sealed_recipient_windows WHERE account = ?',
      ),
      putRecipientWindow: db.prepare(
        `INSERT INTO sealed_recipient_windows (account, window_start, envelopes, bytes) VALUES (?, ?, ?, ?)
         ON CONFLICT (account) DO UPDATE SET window_start = excluded.window_start, envelopes = excluded.envelopes, bytes = excluded.bytes`,
      ),
      pairKnown: db.prepare<[Buffer, number, Buffer], { n: number }>(
        'SELECT 1 AS n FROM stranger_pairs WHERE sender_account = ? AND day = ? AND recipient_account = ?',
      ),
      pairCount: db.prepare<[Buffer, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM stranger_pairs WHERE sender_account = ? AND day = ?',
      ),
      addPair: db.prepare('INSERT OR IGNORE INTO stranger_pairs (sender_account, recipient_account, day) VALUES (?, ?, ?)'),
      strangerWindow: db.prepare<[Buffer, number], { envelopes: number }>(
        'SELECT envelopes FROM stranger_windows WHERE recipient_account = ? AND day = ?',
      ),
      addStranger: db.prepare(
        `INSERT INTO stranger_windows (recipient_account, day, envelopes) VALUES (?, ?, ?)
         ON CONFLICT (recipient_account, day) DO UPDATE SET envelopes = envelopes + excluded.envelopes`,
      ),
      sweepTokens: db.prepare('DELETE FROM delivery_tokens WHERE expires_at <= ?'),
      sweepPairs: db.prepare('DELETE FROM stranger_pairs WHERE day < ?'),
      sweepStrangers: db.prepare('DELETE FROM stranger_windows WHERE day < ?'),
      sweepWindows: db.prepare('DELETE FROM sealed_recipient_windows WHERE window_start < ?'),
    };
  }

  registerTokens(account: AccountKey, tokens: readonly TokenRegistration[], now: number, maxLive: number): Promise<RegisterTokensResult> {
    const s = this.#s;
    return this.#writes
      .submit((): RegisterTokensResult => {
        for (const t of tokens) s.upsert.run(b(t.hash), b(account), t.scope, t.expiresAt);
        const live = (s.live.get(b(account), now) as { n: number }).n;
        if (live > maxLive) throw new Abort<RegisterTokensResult>({ status: 'too-many', limit: maxLive });
        return { status: 'stored', live };
      })
      .catch(unwrap<RegisterTokensResult>);
  }

  revokeTokens(account: AccountKey, hashes: readonly Uint8Array[]): Promise<number> {
    const s = this.#s;
    return this.#writes.submit(() => hashes.reduce((n, h) => n + s.revoke.run(b(h), b(account)).changes, 0));
  }

  flagToken(account: AccountKey, hash: Uint8Array, revokeAt: number): Promise<FlagResult> {
    const s = this.#s;
    return this.#writes.submit((): FlagResult => {
      if (s.flag.run(b(hash), b(account)).changes === 0) return 'unknown';
      const flags = (s.flags.get(b(hash)) as { flags: number }).flags;
      if (flags < revokeAt) return 'flagged';
      s.revoke.run(b(hash), b(account));
      return 'revoked';
    });
  }

  spendTokens(input: SpendTokensInput): Promise<SpendTokensResult> {
    const s = this.#s;
    const { now, perToken, perRecipient } = input;
    return this.#writes
      .submit((): SpendTokensResult => {
        const perAccount = new Map<string, { account: Buffer; envelopes: number; bytes: number }>();
        for (const use of input.uses) {
          const row = s.get.get(b(use.hash));
          if (!row || row.expires_at <= now || !row.account.equals(b(use.account)))
            throw new Abort<SpendTokensResult>({ status: 'invalid' });
          const start = windowStart(now, perToken.windowMs);
          const fresh = row.window_start !== start;
          const envelopes = (fresh ? 0 : row.window_envelopes) + use.envelopes;
          const bytes = (fresh ? 0 : row.window_bytes) + use.bytes;
          const limit = flaggedBudget(perToken, row.flags);
          if (envelopes > limit.envelopes || bytes > limit.bytes) {
            throw new Abort<SpendTokensResult>({ status: 'budget', scope: 'token', retryAfterMs: start + perToken.windowMs - now });
          }
          s.spendToken.run(start, envelopes, bytes, b(use.hash));
          const key = b(use.account).toString('hex');
          const acc = perAccount.get(key) ?? { account: b(use.account), envelopes: 0, bytes: 0 };
          acc.envelopes += use.envelopes;
          acc.bytes += use.bytes;
          perAccount.set(key, acc);
        }
        for (const acc of perAccount.values()) {
          const start = windowStart(now, perRecipient.windowMs);
          const row = s.recipientWindow.get(acc.account);
          const fresh = !row || row.window_start !== start;
          const envelopes = (fresh ? 0 : row.envelopes) + acc.envelopes;
          const bytes = (fresh ? 0 : row.bytes) + acc.bytes;
          if (envelopes > perRecipient.envelopes || bytes > perRecipient.bytes) {
            throw new Abort<SpendTokensResult>({ status: 'budget', scope: 'recipient', retryAfterMs: start + perRecipient.windowMs - now });
          }
          s.putRecipientWindow.run(acc.account, start, envelopes, bytes);
        }
        return { status: 'ok' };
      })
      .catch(unwrap<SpendTokensResult>);
  }

  spendStranger(input: StrangerInput): Promise<StrangerResult> {
    const s = this.#s;
    const day = Math.floor(input.now / DAY_MS);
    const retryAfterMs = (day + 1) * DAY_MS - input.now;
    const sender = b(input.sender);
    return this.#writes
      .submit((): StrangerResult => {
        for (const r of input.recipients) {
          const recipient = b(r.account);
          if (!s.pairKnown.get(sender, day, recipient)) {
            const n = (s.pairCount.get(sender, day) as { n: number }).n;
            if (n >= input.recipientsPerDay) throw new Abort<StrangerResult>({ status: 'exceeded', scope: 'sender', retryAfterMs });
            s.addPair.run(sender, recipient, day);
          }
          const taken = s.strangerWindow.get(recipient, day)?.envelopes ?? 0;
          if (taken + r.envelopes > input.envelopesPerDay) {
            throw new Abort<StrangerResult>({ status: 'exceeded', scope: 'recipient', retryAfterMs });
          }
          s.addStranger.run(recipient, day, r.envelopes);
        }
        return { status: 'ok' };
      })
      .catch(unwrap<StrangerResult>);
  }

  async liveTokens(account: AccountKey, now: number): Promise<number> {
    return (this.#s.live.get(b(account), now) as { n: number }).n;
  }

  sweepTokens(now: number): Promise<number> {
    const s = this.#s;
    const day = Math.floor(now / DAY_MS);
    return this.#writes.submit(
      () =>
        s.sweepTokens.run(now).changes +
        s.sweepPairs.run(day - 1).changes +
        s.sweepStrangers.run(day - 1).changes +
        s.sweepWindows.run(now - DAY_MS).changes,
    );
  }
}

function unwrap<T>(e: unknown): T {
  if (e instanceof Abort) return e.result as T;
  throw e;
}
