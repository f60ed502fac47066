/**
 * Replay records (spec/09-relay.md §3.3) and the sweep of expired rows.
 */
import { buf } from '../rows.ts';
import { REPLAY_SLOT_MS, type SeenRequest, type SeenVerdict, type SweepResult } from '../types.ts';
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
    q.insertSeenRequest(r.signer, buf(r.nonce), r.expiresAt),
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

/** Deletes expired messages, idempotency records, attachments (ids returned), replay records and full budgets. */
export function* sweep(q: WriteQueries, now: number): Rule<SweepResult> {
  const messages = yield* get(q.sweepMessages(now));
  const sentIds = yield* get(q.sweepSentIds(now));
  const attachments = yield* get(q.sweepAttachments(now));
  const seenRequests = yield* get(q.sweepSeenRequests(now, Math.floor(now / REPLAY_SLOT_MS)));
  const budgets = yield* get(q.sweepBudgets(now));
  return { messages, sentIds, attachments, seenRequests, budgets };
}
