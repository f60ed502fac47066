/**
 * Replay records (spec/09-relay.md §3.3) and the sweep of expired rows.
 */
import { buf } from '../rows.ts';
import { REPLAY_SLOT_MS, type SeenRequest, type SeenVerdict, type SweepResult } from '../types.ts';
import type { WriteQueries } from './queries.ts';
import { type Rule, abort, get } from './step.ts';

/**
 * 'replayed' when this signer used this nonce before; 'over-quota' (nothing
 * stored) when the signer already holds `maxPerSigner` records; else the
 * record is stored and counted in its expiry slot.
 */
export function* rememberRequest(q: WriteQueries, r: SeenRequest): Rule<SeenVerdict> {
  const verdict = yield* recordRequest(q, r);
  // Over quota rolls back both writes.
  return verdict === 'over-quota' ? abort(verdict) : verdict;
}

/**
 * The replay record's writes and verdict, for a rule that records the
 * request inside its own transaction (a send, say): on 'over-quota' the
 * caller must abort, which rolls the record back with everything else.
 */
export function* recordRequest(q: WriteQueries, r: SeenRequest): Rule<SeenVerdict> {
  if (!(yield* get(q.insertSeenRequest(r.signer, buf(r.nonce), r.expiresAt)))) return 'replayed';
  // Counting first locks the signer's slot row (where there are row locks):
  // concurrent requests of one signer, on any process, count one after the other.
  yield* get(q.bumpSeenSlot(r.signer, Math.floor(r.expiresAt / REPLAY_SLOT_MS)));
  const held = yield* get(q.seenCount(r.signer, Math.floor(r.now / REPLAY_SLOT_MS)));
  // The count includes this request.
  return held > r.maxPerSigner ? 'over-quota' : 'fresh';
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
