/**
 * Sending and acknowledging envelopes. spec/09-relay.md §4.3-§4.4.
 *
 * The order matters and is kept here once: lock the recipients' device rows
 * (before any counter is read or seq drawn, so per-device seqs commit in
 * order), drop retries known by client id, check the device lists and
 * mailbox limits (send-checks.ts), purge expired envelopes and check again
 * only when a mailbox looks full, then store and notify. The replay record
 * of a signed HTTP send is written first, in the same transaction.
 */
import { buf } from '../rows.ts';
import { retryAfterMs } from '../../limits/rate-budgets.ts';
import type {
  DeviceAddress,
  OutgoingEnvelope,
  StoreFanoutInput,
  StoreMessagesInput,
  StoreMessagesResult,
  StoreRates,
  StoreSealedGroupInput,
  TokenTake,
  TokenTakeResult,
} from '../types.ts';
import type { RecipientRow, WriteQueries } from './queries.ts';
import { type RecipientDeviceState, type SendVerdict, checkSend, hexOf, mailboxesToPurge, recipientAccounts } from './send-checks.ts';
import { requestQueries, requestVerdict } from './housekeeping.ts';
import { type Rule, abort, get, getAll, getLast } from './step.ts';

export function* storeMessages(q: WriteQueries, input: StoreMessagesInput): Rule<StoreMessagesResult> {
  return yield* store(q, input);
}

/**
 * One envelope for many devices (spec §4.3.1): exactly the checks and
 * answers of a send carrying this envelope for each recipient, but stored
 * once and referenced from each new recipient's mailbox row.
 */
export function* storeFanout(q: WriteQueries, input: StoreFanoutInput): Rule<StoreMessagesResult> {
  const { recipients, clientId, envelope, ...rest } = input;
  const envelopes = recipients.map(
    (r): OutgoingEnvelope => ({
      recipient: r.recipient,
      clientId,
      envelope,
      ...(r.certificateHash ? { certificateHash: r.certificateHash } : {}),
      ...(r.delivery ? { delivery: r.delivery } : {}),
    }),
  );
  return yield* store(q, { ...rest, envelopes }, envelope);
}

/**
 * A sealed group send (spec/12-sealed-sender.md §10): per recipient account,
 * the checks of a send from its token hash (device list, certificate hashes,
 * mailbox and token-share quotas counting the payload in every row,
 * idempotency per token hash, device and id); the first refusal aborts the
 * whole transaction. Then the payload once and a row per new device.
 */
export function* storeSealedGroup(q: WriteQueries, input: StoreSealedGroupInput): Rule<StoreMessagesResult> {
  const { payload, accounts, ...limits } = input;
  yield* get(q.lockMailboxes(accounts.flatMap((a) => [...recipientAccounts(a.envelopes).values()].map((r) => buf(r.accountKey)))));
  const rows: { sender: DeviceAddress; envelope: OutgoingEnvelope }[] = [];
  const recipients: DeviceAddress[] = [];
  let duplicates = 0;
  for (const a of accounts) {
    const sub: StoreMessagesInput = {
      ...limits,
      sender: a.sender,
      envelopes: a.envelopes.map((e) => ({ ...e, payloadBytes: payload.length })),
    };
    const verdict = yield* checkFresh(q, sub);
    if (verdict.status === 'refused') return abort<StoreMessagesResult>(verdict.verdict);
    duplicates += verdict.duplicates;
    if (verdict.status === 'none-fresh') continue;
    for (const envelope of verdict.fresh) rows.push({ sender: a.sender, envelope });
    recipients.push(...verdict.recipients);
  }
  if (rows.length === 0) return { status: 'stored', stored: 0, duplicates, recipients: [] };
  yield* get(q.insertSealedGroup(rows, payload, input.now, input.expiresAt));
  yield* get(q.notifyMailboxes(recipients));
  return { status: 'stored', stored: rows.length, duplicates, recipients };
}

type FreshVerdict =
  | { readonly status: 'none-fresh'; readonly duplicates: number }
  | { readonly status: 'ok'; readonly duplicates: number; readonly fresh: OutgoingEnvelope[]; readonly recipients: DeviceAddress[] }
  | { readonly status: 'refused'; readonly verdict: Exclude<SendVerdict, { status: 'ok' }> };

/**
 * The checks of a send from one sender, under the caller's mailbox locks:
 * which envelopes are new (by client id), then the device lists and quotas,
 * read again after expired envelopes were purged (they must not refuse a send).
 */
function* checkFresh(
  q: WriteQueries,
  input: StoreMessagesInput,
  read?: { readonly known: readonly boolean[]; readonly rows: readonly RecipientRow[] },
): Rule<FreshVerdict> {
  const senderAccount = buf(input.sender.accountKey);
  const accounts = [...recipientAccounts(input.envelopes).values()].map((a) => buf(a.accountKey));
  const known = read?.known ?? (yield* get(q.knownClientIds(input.sender, input.envelopes)));
  const fresh = input.envelopes.filter((_, i) => !known[i]);
  const duplicates = input.envelopes.length - fresh.length;
  if (fresh.length === 0) return { status: 'none-fresh', duplicates };
  // Counters and this sender's share of each mailbox, read under the locks (again after a purge).
  let rows = read?.rows;
  const check = function* (): Rule<ReturnType<typeof checkSend>> {
    const byAccount = groupByAccount(rows ?? (yield* get(q.recipientDevices(accounts, senderAccount))));
    rows = undefined;
    return checkSend(input, fresh, (accountKey) => byAccount.get(hexOf(accountKey)) ?? []);
  };
  let verdict = yield* check();
  const purge = mailboxesToPurge(verdict);
  if (purge.length) {
    // Expired envelopes must not refuse a send: drop them, then ask again.
    yield* get(q.purgeExpired(purge, input.now));
    verdict = yield* check();
  }
  if (verdict.status !== 'ok') return { status: 'refused', verdict };
  return { status: 'ok', duplicates, fresh, recipients: verdict.recipients };
}

/** What `requestQueries` answers for a send without a replay record (nothing to check). */
const NO_REPLAY: [boolean, undefined, number] = [true, undefined, 0];

/**
 * A send; with `shared`, every envelope is that one payload, stored once.
 * Two batches of queries (two round trips where the backend pipelines):
 * everything read under the locks, then every write with the commit.
 */
function* store(q: WriteQueries, input: StoreMessagesInput, shared?: Uint8Array): Rule<StoreMessagesResult> {
  const senderAccount = buf(input.sender.accountKey);
  const accounts = [...recipientAccounts(input.envelopes).values()].map((a) => buf(a.accountKey));
  // The replay record first (one commit per HTTP send), then the locks, then
  // what is read under them: each a statement of its own, run in this order,
  // so the reads see everything committed before the locks were granted.
  // The rate budgets last: their rows stay locked until the commit.
  const { rates } = input;
  const [inserted, , held, , known, rows, taken] = yield* getAll(
    ...(input.replay ? requestQueries(q, input.replay) : NO_REPLAY),
    q.lockMailboxes(accounts),
    q.knownClientIds(input.sender, input.envelopes),
    q.recipientDevices(accounts, senderAccount),
    rates ? takeTokens(q)(rates.limit, input.now, rates.takes) : undefined,
  );
  if (input.replay) {
    const verdict = requestVerdict(input.replay, inserted, held);
    // A refusal rolls the record back with everything else.
    if (verdict !== 'fresh') return abort<StoreMessagesResult>({ status: 'request-refused', verdict });
  }
  if (rates && taken?.some((t) => !t.ok)) {
    // All or none: the rollback gives back the takes that succeeded.
    return abort<StoreMessagesResult>({ status: 'rate-limited', retryAfterMs: rateRetryAfter(rates, taken) });
  }
  // A send that stores nothing new spends no budget (the replay record stays).
  const refuse = function* <R extends StoreMessagesResult>(result: R): Rule<R> {
    if (rates) yield* get(returnTokens(q)(rates.limit, input.now, rates.takes));
    return result;
  };

  const v = yield* checkFresh(q, input, { known, rows });
  if (v.status === 'none-fresh') {
    // A retry: the first answer was lost, maybe after its commit and before
    // its wake-ups went out (a backend may send them after the commit). Wake
    // the recipients again; a fetch that finds nothing new costs little.
    const again = [
      ...new Map(input.envelopes.map((e) => [`${hexOf(e.recipient.accountKey)}:${e.recipient.deviceId}`, e.recipient])).values(),
    ];
    yield* get(q.notifyMailboxes(again));
    return yield* refuse({ status: 'stored', stored: 0, duplicates: v.duplicates, recipients: again });
  }
  if (v.status === 'refused') return yield* refuse(v.verdict);

  // The writes and the wake-up, with the commit right behind them.
  yield* getLast(
    shared
      ? q.insertFanout(input.sender, v.fresh, shared, input.now, input.expiresAt)
      : q.insertMessages(input.sender, v.fresh, input.now, input.expiresAt),
    q.notifyMailboxes(v.recipients),
  );
  return { status: 'stored', stored: v.fresh.length, duplicates: v.duplicates, recipients: v.recipients };
}

function takeTokens(q: WriteQueries): NonNullable<WriteQueries['takeTokens']> {
  if (!q.takeTokens) throw new Error('this storage backend keeps no rate budgets inside its transactions');
  return q.takeTokens;
}

function returnTokens(q: WriteQueries): NonNullable<WriteQueries['returnTokens']> {
  if (!q.returnTokens) throw new Error('this storage backend keeps no rate budgets inside its transactions');
  return q.returnTokens;
}

/** When every refused bucket holds what its take needs again. */
function rateRetryAfter(rates: StoreRates, taken: readonly TokenTakeResult[]): number {
  let wait = 1;
  for (const [i, t] of taken.entries()) {
    if (t.ok) continue;
    const need = Math.min((rates.takes[i] as TokenTake).amount, rates.limit.capacity);
    wait = Math.max(wait, retryAfterMs(rates.limit, need, t.tokens));
  }
  return wait;
}

/** Deletes the recipient's own messages with these seqs; others' are ignored. */
export function* ackMessages(q: WriteQueries, recipient: DeviceAddress, seqs: readonly number[]): Rule<number> {
  if (seqs.length === 0) return 0;
  // One statement: it travels with its transaction's BEGIN and COMMIT.
  const [deleted] = yield* getLast(q.ackMessages(recipient, seqs));
  return deleted;
}

function groupByAccount(rows: readonly RecipientRow[]): Map<string, RecipientDeviceState[]> {
  const out = new Map<string, RecipientDeviceState[]>();
  for (const row of rows) {
    const k = hexOf(row.account);
    const list = out.get(k);
    if (list) list.push(row);
    else out.set(k, [row]);
  }
  return out;
}
