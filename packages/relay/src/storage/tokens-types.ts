/**
 * Delivery tokens and the budgets of sealed and first-contact sends, as
 * stored. spec/12-sealed-sender.md §5-§6.
 *
 * A token row holds the token's hash, the recipient account that registered
 * it, its scope, expiry, flag count and the current budget window; never the
 * token itself and nothing about whoever holds it. Sealed envelopes are
 * stored by `RelayStorage.storeMessages` with the token hash in the sender
 * slot and device 0 (no device has id 0), so the mailbox, idempotency and
 * per-sender share rules apply per token, and no sender is stored.
 *
 * The tables are their own (created if missing, outside the migrations), so
 * the v1 schema can change without them; the rules are the storage's
 * (rules/tokens.ts), run by each backend's driver like every other rule.
 */
/** An account is its 32-byte Ed25519 account key (as in types.ts, which imports this module). */
export type AccountKey = Uint8Array;

export type TokenScope = 'contact' | 'group';

export interface TokenRegistration {
  readonly hash: Uint8Array;
  readonly expiresAt: number;
  readonly scope: TokenScope;
}

export type RegisterTokensResult =
  | { readonly status: 'stored'; readonly live: number }
  | { readonly status: 'too-many'; readonly limit: number };

/** A fixed window budget: at most `envelopes` and `bytes` per `windowMs`. */
export interface WindowBudget {
  readonly windowMs: number;
  readonly envelopes: number;
  readonly bytes: number;
}

export interface TokenSpend {
  readonly account: AccountKey;
  readonly hash: Uint8Array;
  readonly envelopes: number;
  readonly bytes: number;
}

export interface SpendTokensInput {
  readonly uses: readonly TokenSpend[];
  readonly now: number;
  /** Per token; each flag halves it. */
  readonly perToken: WindowBudget;
  /** Per recipient account, over every token of that account. */
  readonly perRecipient: WindowBudget;
}

export type SpendTokensResult =
  | { readonly status: 'ok' }
  /** Unknown, expired or revoked: one answer for all three (no oracle). */
  | { readonly status: 'invalid' }
  | { readonly status: 'budget'; readonly scope: 'token' | 'recipient'; readonly retryAfterMs: number };

export interface StrangerInput {
  readonly sender: AccountKey;
  readonly recipients: readonly { readonly account: AccountKey; readonly envelopes: number }[];
  readonly now: number;
  /** New recipient accounts one sender account may reach per day. */
  readonly recipientsPerDay: number;
  /** Identified envelopes one recipient account takes per day. */
  readonly envelopesPerDay: number;
}

export type StrangerResult =
  | { readonly status: 'ok' }
  | { readonly status: 'exceeded'; readonly scope: 'sender' | 'recipient'; readonly retryAfterMs: number };

export type FlagResult = 'flagged' | 'revoked' | 'unknown';

export interface TokenStore {
  /** Adds live token hashes for `account`; refused whole when the live count would pass `maxLive`. Known hashes are refreshed. */
  registerTokens(account: AccountKey, tokens: readonly TokenRegistration[], now: number, maxLive: number): Promise<RegisterTokensResult>;
  /** Removes the account's own tokens among `hashes` (others' are ignored); returns how many went. */
  revokeTokens(account: AccountKey, hashes: readonly Uint8Array[]): Promise<number>;
  /** Counts a flag on the account's token; at `revokeAt` flags the token is revoked. */
  flagToken(account: AccountKey, hash: Uint8Array, revokeAt: number): Promise<FlagResult>;
  /** All or nothing: every token live for its account and within budget, then every budget spent. */
  spendTokens(input: SpendTokensInput): Promise<SpendTokensResult>;
  /** All or nothing: the first-contact budgets of an identified send, checked and spent. */
  spendStranger(input: StrangerInput): Promise<StrangerResult>;
  /** Live tokens of an account (for its own devices' bookkeeping). */
  liveTokens(account: AccountKey, now: number): Promise<number>;
  /** Deletes expired tokens and stale budget windows. */
  sweepTokens(now: number): Promise<number>;
}

export const DAY_MS = 86_400_000;

/** Window arithmetic shared by both backends: a fixed window starting at a multiple of its width. */
export function windowStart(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

/** A flagged token's budget: halved per flag. */
export function flaggedBudget(budget: WindowBudget, flags: number): { envelopes: number; bytes: number } {
  const f = 2 ** Math.max(0, flags);
  return { envelopes: Math.floor(budget.envelopes / f), bytes: Math.floor(budget.bytes / f) };
}
