/**
 * What a send and a group fan-out answer alike (spec/09-relay.md §4.3,
 * §4.3.1): the per-recipient byte rate taken before anything is stored,
 * and the storage's verdict turned into 200 or a typed refusal, each
 * counted in the metrics. One place, so the two routes cannot drift apart.
 */
import type { RelayContext } from '../context.ts';
import { type RateBudget, takeAll, takeAllNow } from '../limits/rate-budgets.ts';
import type { StoreMessagesResult, StoreRates, TokenTake } from '../storage/types.ts';
import { rateLimited, throwIfRefused } from './store-result.ts';

/** One take per recipient account, keyed by sender and recipient account. */
function recipientTakes(sender: string, bytesPerAccount: ReadonlyMap<string, number>): TokenTake[] {
  const takes: TokenTake[] = [];
  for (const [account, amount] of bytesPerAccount) takes.push({ key: `${sender}>${account}`, amount });
  return takes;
}

/**
 * Runs the store with the send's per-recipient byte rates: the envelope
 * bytes taken from each recipient account's budget (keyed by sender and
 * recipient account: one sender spending it does not rate-limit everyone
 * else who writes to that recipient), all or none; 429 RATE_LIMITED when
 * one is spent. When the budget lives in the storage (shared by every relay
 * process), the store takes them inside its own transaction: no round trip
 * or transaction of their own, and a refusal gives them back by rolling
 * back ('rate-limited', answered by `answerSend`). Otherwise they are taken
 * before the store, so concurrent sends cannot overspend (at once from a
 * budget in memory: no promise per take, issue 15's loop cost per frame),
 * and given back if the store stores nothing new.
 */
export async function storeWithRecipientRates(
  relay: RelayContext,
  budget: RateBudget,
  sender: string,
  bytesPerAccount: ReadonlyMap<string, number>,
  now: number,
  store: (rates?: StoreRates) => Promise<StoreMessagesResult>,
): Promise<StoreMessagesResult> {
  const takes = recipientTakes(sender, bytesPerAccount);
  const inStorage = budget.inStorage?.(takes);
  if (inStorage) return store(inStorage);
  const taken = takeAllNow(budget, takes, now) ?? (await takeAll(budget, takes, now));
  if (!taken.ok) throw rateLimited(relay, taken.retryAfterMs);
  // The bytes taken go back unless the store stored something new (a refusal, a retry, a failure).
  let result: StoreMessagesResult;
  try {
    result = await store();
  } catch (error) {
    await taken.giveBack(now);
    throw error;
  }
  if (result.status !== 'stored' || result.stored === 0) await taken.giveBack(now);
  return result;
}

/**
 * 200 `{accepted}` for a stored send (waking the recipients' websockets and
 * calling `onStored` when anything new was stored), else the refusal.
 * `bytes` is what the send delivers in total (metrics).
 */
export function answerSend(
  relay: RelayContext,
  result: StoreMessagesResult,
  sent: { readonly envelopes: number; readonly bytes: number; readonly onStored?: () => void },
): { accepted: number } {
  throwIfRefused(relay, result);
  const { metrics, hub } = relay;
  metrics.envelopesAccepted.inc(result.stored);
  metrics.envelopesDuplicate.inc(result.duplicates);
  if (result.stored > 0) {
    sent.onStored?.();
    metrics.envelopeBytesAccepted.inc(sent.bytes);
  }
  // Unless the storage woke them at its commit already (SQLite, before the fsync). A retry
  // wakes its recipients again (its first wake-up may have been lost with the answer).
  if (result.recipients.length && !relay.storage.wakesOnCommit) hub.notify(result.recipients);
  return { accepted: sent.envelopes };
}
