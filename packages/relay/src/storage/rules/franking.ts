/**
 * Franking state (spec/14-franking.md §4, §7): the relay's frank keys and
 * the abuse-report queue. The only state franking adds: a frank is computed
 * at acceptance and travels with its envelope.
 */
import { buf } from '../rows.ts';
import type { FileReportInput, FileReportResult } from '../types.ts';
import type { WriteQueries } from './queries.ts';
import { type Rule, get } from './step.ts';

/**
 * FK[keyId], made from `candidate` when absent. Insert-if-absent then read,
 * in one transaction: whichever process inserts first, all read its key.
 */
export function* frankKey(q: WriteQueries, keyId: number, candidate: Uint8Array, destroyAt: number): Rule<Buffer> {
  yield* get(q.insertFrankKey(keyId, buf(candidate), destroyAt));
  const key = yield* get(q.frankKey(keyId));
  if (key === undefined) throw new Error('frank key vanished inside its own transaction');
  return key;
}

/**
 * Queues a verified report. The reporter account's budget is counted under
 * its account lock, so concurrent reports on several processes cannot
 * overspend it; a duplicate (reporter, envelope id) stores nothing.
 */
export function* fileReport(q: WriteQueries, r: FileReportInput): Rule<FileReportResult> {
  const reporter = buf(r.reporter.accountKey);
  yield* get(q.lockAccount(reporter));
  const filed = yield* get(q.countReports(reporter, r.receivedAt - r.windowMs));
  if (filed >= r.maxPerWindow) return { status: 'over-budget' };
  const id = yield* get(q.insertReport({ reporter: r.reporter, envelopeId: r.envelopeId, receivedAt: r.receivedAt, report: r.report }));
  return id === false ? { status: 'duplicate' } : { status: 'queued', id };
}
