/**
 * Replay records (spec/09-relay.md §3.3) and the sweep of expired rows.
 */
import { buf } from '../rows.ts';
import { REPLAY_SLOT_MS, type SeenRequest, type SeenVerdict, type SweepResult } from '../types.ts';
import { purgeMailboxes } from './devices.ts';
import type { WriteQueries } from './queries.ts';
import { type Maybe, type Rule, abort, get, getAll } from './step.ts';

/**
 * 'replayed' when this signer used this nonce before; 'over-quota' (nothing
 * stored) when the signer already holds `maxPerSigner` records; else the
 * record is stored and counted in its expiry slot.
 */
export function* rememberRequest(q: WriteQueries, r: SeenRequest): Rule<SeenVerdict> {
  const verdict = yield* recordRequest(q, r);
  // A refusal rolls back the writes (the slot was counted before the verdict was known).
  return verdict === 'fresh' ? verdict : abort(verdict);
}

/**
 * The replay record's three queries, issued together (one round trip where
 * the backend pipelines): store the record, count it in the signer's slot,
 * and read the signer's count. Counting locks the signer's slot row (where
 * there are row locks): concurrent requests of one signer, on any process,
 * count one after the other, and the count, a statement of its own after
 * the lock, sees every one committed before. The slot is counted even for
 * a replayed nonce: on any verdict but 'fresh' the caller must abort.
 */
export function requestQueries(q: WriteQueries, r: SeenRequest): [Maybe<boolean>, Maybe<void>, Maybe<number>] {
  return [
    q.insertSeenRequest(r.signer, buf(r.nonce), r.expiresAt, r.signerCertificateHash),
    q.bumpSeenSlot(r.signer, Math.floor(r.expiresAt / REPLAY_SLOT_MS)),
    q.seenCount(r.signer, Math.floor(r.now / REPLAY_SLOT_MS)),
  ];
}

/** The verdict from the answers of `requestQueries`. */
export function requestVerdict(r: SeenRequest, inserted: boolean, held: number): SeenVerdict {
  if (!inserted) return 'replayed';
  // The count includes this request.
  return held > r.maxPerSigner ? 'over-quota' : 'fresh';
}

/**
 * The replay record's writes and verdict, for a rule that records the
 * request inside its own transaction: on any verdict but 'fresh' the
 * caller must abort, which rolls the record back with everything else.
 */
export function* recordRequest(q: WriteQueries, r: SeenRequest): Rule<SeenVerdict> {
  const [inserted, , held] = yield* getAll(...requestQueries(q, r));
  return requestVerdict(r, inserted, held);
}

/**
 * Most rows one sweep write deletes, every table together (spec/09-relay.md §6). A write holds the
 * relay's writer while it runs (on SQLite the event loop itself), like a group commit: at the
 * 40-60 µs a deleted row costs, this is about one full group commit (MAX_BATCH_ROWS, 10-15 ms on a
 * quiet machine). The sweeper runs such writes one after another until nothing that was due when
 * it started is left, so other writes commit between them. Until session 6 one write deleted every
 * expired idempotency record and budget bucket with no bound, and up to 5,000 rows of each other
 * table: at 5,000 envelopes/s a minute's expired idempotency records alone are 300,000 rows, seconds
 * of a stalled loop.
 */
export const SWEEP_CHUNK_ROWS = 256;

/**
 * Deletes up to `limit` rows: first of a removed device's mailbox (devices.ts purgeMailboxes), then
 * expired messages, idempotency records, attachments (ids returned), replay records and full
 * budgets, in that order. `more` says the limit was reached, so
 * rows due at `now` may be left: the caller sweeps again with the same `now`.
 */
export function* sweep(q: WriteQueries, now: number, limit = SWEEP_CHUNK_ROWS): Rule<SweepResult> {
  let left = limit;
  // First the mailboxes of removed devices (devices.ts), one per write: the id waits for them.
  const purge = yield* purgeMailboxes(q, left);
  left -= purge.purged;
  const messages = left > 0 ? yield* get(q.sweepMessages(now, left)) : 0;
  left -= messages;
  const sentIds = left > 0 ? yield* get(q.sweepSentIds(now, left)) : 0;
  left -= sentIds;
  const attachments = left > 0 ? yield* get(q.sweepAttachments(now, left)) : [];
  left -= attachments.length;
  const seenRequests = left > 0 ? yield* get(q.sweepSeenRequests(now, Math.floor(now / REPLAY_SLOT_MS), left)) : 0;
  left -= seenRequests;
  const budgets = left > 0 ? yield* get(q.sweepBudgets(now, left)) : 0;
  left -= budgets;
  return { messages, purged: purge.purged, sentIds, attachments, seenRequests, budgets, more: left <= 0 || purge.more };
}
