/**
 * Sending and acknowledging envelopes. spec/09-relay.md §4.3-§4.4.
 *
 * The order matters and is kept here once: lock the recipients' device rows
 * (before any counter is read or seq drawn, so per-device seqs commit in
 * order), drop retries known by client id, check the device lists and
 * mailbox limits (send-checks.ts), purge expired envelopes and check again
 * only when a mailbox looks full, then store and notify. A backend that
 * wants to fold more into the send's transaction (a replay record, say)
 * composes another rule around this one in its `transact`.
 */
import { buf } from '../rows.ts';
import type {
  DeviceAddress,
  OutgoingEnvelope,
  StoreFanoutInput,
  StoreMessagesInput,
  StoreMessagesResult,
  StoreSealedGroupInput,
} from '../types.ts';
import type { RecipientRow, WriteQueries } from './queries.ts';
import { type RecipientDeviceState, type SendVerdict, checkSend, hexOf, mailboxesToPurge, recipientAccounts } from './send-checks.ts';
import { recordRequest } from './housekeeping.ts';
import { type Rule, abort, get } from './step.ts';

export function* storeMessages(q: WriteQueries, input: StoreMessagesInput): Rule<StoreMessagesResult> {
  if (input.replay) {
    // The signed request's replay record first, in the same transaction: one commit per HTTP send.
    const seen = yield* recordRequest(q, input.replay);
    // Over quota rolls the record back with everything else.
    if (seen === 'over-quota') return abort<StoreMessagesResult>({ status: 'request-refused', verdict: seen });
    if (seen === 'replayed') return { status: 'request-refused', verdict: seen };
  }
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
function* checkFresh(q: WriteQueries, input: StoreMessagesInput): Rule<FreshVerdict> {
  const senderAccount = buf(input.sender.accountKey);
  const accounts = [...recipientAccounts(input.envelopes).values()].map((a) => buf(a.accountKey));
  const known = yield* get(q.knownClientIds(input.sender, input.envelopes));
  const fresh = input.envelopes.filter((_, i) => !known[i]);
  const duplicates = input.envelopes.length - fresh.length;
  if (fresh.length === 0) return { status: 'none-fresh', duplicates };
  const check = function* (): Rule<ReturnType<typeof checkSend>> {
    const byAccount = groupByAccount(yield* get(q.recipientDevices(accounts, senderAccount)));
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

/** A send; with `shared`, every envelope is that one payload, stored once. */
function* store(q: WriteQueries, input: StoreMessagesInput, shared?: Uint8Array): Rule<StoreMessagesResult> {
  yield* get(q.lockMailboxes([...recipientAccounts(input.envelopes).values()].map((a) => buf(a.accountKey))));
  const v = yield* checkFresh(q, input);
  if (v.status === 'none-fresh') return { status: 'stored', stored: 0, duplicates: v.duplicates, recipients: [] };
  if (v.status === 'refused') return v.verdict;
  if (shared) yield* get(q.insertFanout(input.sender, v.fresh, shared, input.now, input.expiresAt));
  else yield* get(q.insertMessages(input.sender, v.fresh, input.now, input.expiresAt));
  yield* get(q.notifyMailboxes(v.recipients));
  return { status: 'stored', stored: v.fresh.length, duplicates: v.duplicates, recipients: v.recipients };
}

/** Deletes the recipient's own messages with these seqs; others' are ignored. */
export function* ackMessages(q: WriteQueries, recipient: DeviceAddress, seqs: readonly number[]): Rule<number> {
  if (seqs.length === 0) return 0;
  return yield* get(q.ackMessages(recipient, seqs));
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
