/**
 * Delivery tokens and the budgets of sealed and first-contact sends
 * (spec/12-sealed-sender.md §5-§6) as rules: what is checked, in which
 * order, and what is spent, written once for every backend. A backend
 * provides `TokenQueries` (tokens-sqlite.ts, tokens-postgres.ts: the tables
 * and their statements) and runs each rule in one of its transactions, as it
 * runs the other storage rules.
 *
 * Lock order, for backends with row locks: token rows by hash ascending, then
 * recipient windows by account ascending; a registration locks its account,
 * a first-contact spend its sender. A backend without row locks (SQLite's
 * single writer) ignores the lock queries.
 */
import {
  type AccountKey,
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
} from '../tokens-types.ts';
import { buf } from '../rows.ts';
import { type Maybe, type Rule, abort, get } from './step.ts';

/** A token row, numbers as numbers. */
export interface TokenRow {
  readonly account: Buffer;
  readonly expiresAt: number;
  readonly flags: number;
  readonly windowStart: number;
  readonly windowEnvelopes: number;
  readonly windowBytes: number;
}

/** A recipient account's sealed-send window. */
export interface RecipientWindowRow {
  readonly windowStart: number;
  readonly envelopes: number;
  readonly bytes: number;
}

/** The token tables' queries inside a rule's transaction. */
export interface TokenQueries {
  /** Serialises token registrations of one account (so two cannot both pass the live limit). */
  lockTokenAccount(account: Buffer): Maybe<void>;
  /** Inserts the token, or refreshes its expiry when the same account registered it. */
  upsertToken(hash: Buffer, account: Buffer, scope: string, expiresAt: number): Maybe<void>;
  liveTokenCount(account: Buffer, now: number): Maybe<number>;
  /** Deletes the account's own tokens among `hashes`; returns how many went. */
  deleteAccountTokens(account: Buffer, hashes: readonly Buffer[]): Maybe<number>;
  /** Adds a flag to the account's token; its flag count after, or undefined when it has no such token. */
  flagToken(hash: Buffer, account: Buffer): Maybe<number | undefined>;
  deleteToken(hash: Buffer): Maybe<void>;
  /** The token row, locked. */
  token(hash: Buffer): Maybe<TokenRow | undefined>;
  setTokenWindow(hash: Buffer, start: number, envelopes: number, bytes: number): Maybe<void>;
  /** The account's window row, locked (a backend with row locks creates it empty at `start` first). */
  recipientWindow(account: Buffer, start: number): Maybe<RecipientWindowRow | undefined>;
  putRecipientWindow(account: Buffer, start: number, envelopes: number, bytes: number): Maybe<void>;
  /** Serialises first-contact spends of one sender account. */
  lockStrangerSender(sender: Buffer): Maybe<void>;
  strangerPairKnown(sender: Buffer, day: number, recipient: Buffer): Maybe<boolean>;
  strangerPairCount(sender: Buffer, day: number): Maybe<number>;
  addStrangerPair(sender: Buffer, recipient: Buffer, day: number): Maybe<void>;
  /** Adds `envelopes` to the recipient's count for `day`; returns the new count. */
  addStrangerEnvelopes(recipient: Buffer, day: number, envelopes: number): Maybe<number>;
  /** Deletes tokens expired at `now`, first-contact rows of days before `beforeDay`, windows started before `windowsBefore`. */
  sweepTokenTables(now: number, beforeDay: number, windowsBefore: number): Maybe<number>;
}

/** Reads outside a transaction. */
export interface TokenReadQueries {
  liveTokenCount(account: Buffer, now: number): Promise<number>;
}

export function* registerTokens(
  q: TokenQueries,
  account: AccountKey,
  tokens: readonly TokenRegistration[],
  now: number,
  maxLive: number,
): Rule<RegisterTokensResult> {
  const a = buf(account);
  yield* get(q.lockTokenAccount(a));
  for (const t of tokens) yield* get(q.upsertToken(buf(t.hash), a, t.scope, t.expiresAt));
  const live = yield* get(q.liveTokenCount(a, now));
  if (live > maxLive) abort<RegisterTokensResult>({ status: 'too-many', limit: maxLive });
  return { status: 'stored', live };
}

export function* revokeTokens(q: TokenQueries, account: AccountKey, hashes: readonly Uint8Array[]): Rule<number> {
  return yield* get(q.deleteAccountTokens(buf(account), hashes.map(buf)));
}

export function* flagToken(q: TokenQueries, account: AccountKey, hash: Uint8Array, revokeAt: number): Rule<FlagResult> {
  const flags = yield* get(q.flagToken(buf(hash), buf(account)));
  if (flags === undefined) return 'unknown';
  if (flags < revokeAt) return 'flagged';
  yield* get(q.deleteToken(buf(hash)));
  return 'revoked';
}

const byBytes = (x: Buffer, y: Buffer) => Buffer.compare(x, y);

/** All or nothing: every token live for its account and within its budget, then every recipient's budget. */
export function* spendTokens(q: TokenQueries, input: SpendTokensInput): Rule<SpendTokensResult> {
  const { now, perToken, perRecipient } = input;
  const uses = input.uses.map((u) => ({ ...u, hash: buf(u.hash), account: buf(u.account) })).sort((x, y) => byBytes(x.hash, y.hash));
  const perAccount = new Map<string, { account: Buffer; envelopes: number; bytes: number }>();
  for (const use of uses) {
    const row = yield* get(q.token(use.hash));
    if (!row || row.expiresAt <= now || !row.account.equals(use.account)) abort<SpendTokensResult>({ status: 'invalid' });
    const start = windowStart(now, perToken.windowMs);
    const fresh = row.windowStart !== start;
    const envelopes = (fresh ? 0 : row.windowEnvelopes) + use.envelopes;
    const bytes = (fresh ? 0 : row.windowBytes) + use.bytes;
    const limit = flaggedBudget(perToken, row.flags);
    if (envelopes > limit.envelopes || bytes > limit.bytes) {
      abort<SpendTokensResult>({ status: 'budget', scope: 'token', retryAfterMs: start + perToken.windowMs - now });
    }
    yield* get(q.setTokenWindow(use.hash, start, envelopes, bytes));
    const key = use.account.toString('hex');
    const acc = perAccount.get(key) ?? { account: use.account, envelopes: 0, bytes: 0 };
    acc.envelopes += use.envelopes;
    acc.bytes += use.bytes;
    perAccount.set(key, acc);
  }
  for (const acc of [...perAccount.values()].sort((x, y) => byBytes(x.account, y.account))) {
    const start = windowStart(now, perRecipient.windowMs);
    const row = yield* get(q.recipientWindow(acc.account, start));
    const fresh = !row || row.windowStart !== start;
    const envelopes = (fresh ? 0 : row.envelopes) + acc.envelopes;
    const bytes = (fresh ? 0 : row.bytes) + acc.bytes;
    if (envelopes > perRecipient.envelopes || bytes > perRecipient.bytes) {
      abort<SpendTokensResult>({ status: 'budget', scope: 'recipient', retryAfterMs: start + perRecipient.windowMs - now });
    }
    yield* get(q.putRecipientWindow(acc.account, start, envelopes, bytes));
  }
  return { status: 'ok' };
}

/** All or nothing: the sender's new recipients today, then each recipient's identified envelopes today. */
export function* spendStranger(q: TokenQueries, input: StrangerInput): Rule<StrangerResult> {
  const day = Math.floor(input.now / DAY_MS);
  const retryAfterMs = (day + 1) * DAY_MS - input.now;
  const sender = buf(input.sender);
  const recipients = input.recipients
    .map((r) => ({ account: buf(r.account), envelopes: r.envelopes }))
    .sort((x, y) => byBytes(x.account, y.account));
  yield* get(q.lockStrangerSender(sender));
  for (const r of recipients) {
    if (!(yield* get(q.strangerPairKnown(sender, day, r.account)))) {
      const n = yield* get(q.strangerPairCount(sender, day));
      if (n >= input.recipientsPerDay) abort<StrangerResult>({ status: 'exceeded', scope: 'sender', retryAfterMs });
      yield* get(q.addStrangerPair(sender, r.account, day));
    }
    const taken = yield* get(q.addStrangerEnvelopes(r.account, day, r.envelopes));
    if (taken > input.envelopesPerDay) abort<StrangerResult>({ status: 'exceeded', scope: 'recipient', retryAfterMs });
  }
  return { status: 'ok' };
}

export function* sweepTokens(q: TokenQueries, now: number): Rule<number> {
  return yield* get(q.sweepTokenTables(now, Math.floor(now / DAY_MS) - 1, now - DAY_MS));
}

/** A backend's transactions and reads, as far as the token rules need them. */
export interface TokenDriver {
  transact<T>(rule: (q: TokenQueries) => Rule<T>): Promise<T>;
  readonly read: TokenReadQueries;
}

/** The `TokenStore` of a backend: each call one rule in one transaction. */
export function ruleTokenStore(driver: TokenDriver): TokenStore {
  return {
    registerTokens: (account, tokens, now, maxLive) => driver.transact((q) => registerTokens(q, account, tokens, now, maxLive)),
    revokeTokens: (account, hashes) => driver.transact((q) => revokeTokens(q, account, hashes)),
    flagToken: (account, hash, revokeAt) => driver.transact((q) => flagToken(q, account, hash, revokeAt)),
    spendTokens: (input) => driver.transact((q) => spendTokens(q, input)),
    spendStranger: (input) => driver.transact((q) => spendStranger(q, input)),
    liveTokens: (account, now) => driver.read.liveTokenCount(buf(account), now),
    sweepTokens: (now) => driver.transact((q) => sweepTokens(q, now)),
  };
}
