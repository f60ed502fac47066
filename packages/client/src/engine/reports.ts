/**
 * The report flow on this device's store and relay (spec/14-franking.md
 * §6, spec/10-client.md §7.6): whether a received message can be reported,
 * the preview of exactly what a report sends, and filing it.
 *
 * Reads only: the franked rows are written with their messages
 * (engine/apply.ts) and expire with them, so a disappeared message has no
 * franking key left to report with. Filing sends one signed request to the
 * relay's report route and nothing to anyone else: the reported person
 * receives no envelope and learns nothing.
 */
import { bytesEqual, encodeReport, utf8 } from '@parley/core';
import { ClientError } from '../errors.ts';
import { type FrankedMessage, getFranked } from '../franking/store.ts';
import {
  MAX_REPORT_CONTEXT,
  type Reportability,
  type ReportPreview,
  assembleReport,
  notReportable,
  rowReportability,
} from '../reports/build.ts';
import { ReportError } from '../reports/errors.ts';
import { type ReportReason, isReportReason } from '../reports/reasons.ts';
import { parseConversationId } from '../state/conversation-id.ts';
import { listMessages } from '../state/history.ts';
import { messageIdText } from '../state/ids.ts';
import type { Context } from './context.ts';

/** Longest comment, in UTF-8 bytes: core's MAX_REPORT_COMMENT_BYTES (14 §8). */
export const MAX_REPORT_COMMENT_BYTES = 1024;

export interface ReportRequest {
  readonly conversation: string;
  /** The reported message (a message id as `history()` and the 'message' event give it). */
  readonly messageId: string;
  /** Up to MAX_REPORT_CONTEXT other received messages of the same conversation and sender, picked by the user. */
  readonly context?: readonly string[];
  readonly reason: ReportReason;
  readonly comment?: string;
}

export interface ReportOutcome {
  readonly queued: true;
  /** Messages the report carried (the reported one and its context). */
  readonly items: number;
}

/**
 * The franked row of a message this device received, or why there is none.
 * A message's history key ends with its id (state/history.ts), so the row is
 * found from the keys alone; messages are decoded only when there is no row
 * (to tell our own from an unfranked one).
 */
function lookup(ctx: Context, conversation: string, messageId: string): FrankedMessage | Reportability {
  parseConversationId(conversation);
  const suffix = `/${messageId}`;
  const key = ctx.store
    .list('messages', `${conversation}/`)
    .map((e) => e.key)
    .find((k) => k.endsWith(suffix));
  if (key === undefined) return notReportable('gone');
  const row = getFranked(ctx.store, key);
  if (row) return row;
  const message = listMessages(ctx.store, conversation).find((m) => messageIdText(m.content.messageId) === messageId);
  if (!message) return notReportable('gone');
  return notReportable(message.outgoing ? 'outgoing' : 'not-franked');
}

const isRow = (r: FrankedMessage | Reportability): r is FrankedMessage => 'delivery' in r;

export function reportability(ctx: Context, conversation: string, messageId: string): Reportability {
  const found = lookup(ctx, conversation, messageId);
  return isRow(found) ? rowReportability(found, ctx.clock()) : found;
}

function checkRequest(r: ReportRequest): void {
  if (typeof r !== 'object' || r === null) throw new TypeError('"request" expected an object');
  if (typeof r.messageId !== 'string') throw new TypeError('"messageId" expected a string');
  if (!isReportReason(r.reason)) throw new TypeError('"reason" expected one of REPORT_REASONS');
  if (r.comment !== undefined && typeof r.comment !== 'string') throw new TypeError('"comment" expected a string');
  if (utf8(r.comment ?? '').length > MAX_REPORT_COMMENT_BYTES)
    throw new RangeError(`"comment" is limited to ${MAX_REPORT_COMMENT_BYTES} bytes`);
  if (r.context !== undefined && (!Array.isArray(r.context) || !r.context.every((c) => typeof c === 'string'))) {
    throw new TypeError('"context" expected an array of message ids');
  }
}

/** The report exactly as `fileReport` sends it, and its preview; every client-side refusal is a ReportError. */
export function prepareReport(
  ctx: Context,
  r: ReportRequest,
): { report: ReturnType<typeof assembleReport>['report']; preview: ReportPreview } {
  checkRequest(r);
  const now = ctx.clock();
  const found = lookup(ctx, r.conversation, r.messageId);
  const verdict = isRow(found) ? rowReportability(found, now) : found;
  if (!verdict.reportable) {
    throw new ReportError('NOT_REPORTABLE', verdict.explanation, { messageId: r.messageId, reason: verdict.reason });
  }
  const reported = found as FrankedMessage;
  const context = r.context ?? [];
  if (context.length > MAX_REPORT_CONTEXT) {
    throw new ReportError('BAD_CONTEXT', `at most ${MAX_REPORT_CONTEXT} context messages`, {
      reason: 'too-many',
      limit: MAX_REPORT_CONTEXT,
    });
  }
  const seen = new Set([r.messageId]);
  const rows: FrankedMessage[] = [];
  for (const id of context) {
    const bad = (reason: string) => new ReportError('BAD_CONTEXT', `context message ${id}: ${reason}`, { messageId: id, reason });
    if (seen.has(id)) throw bad(id === r.messageId ? 'the reported message itself' : 'listed twice');
    seen.add(id);
    const row = lookup(ctx, r.conversation, id);
    if (!isRow(row)) throw bad(row.reportable ? 'not reportable' : row.reason);
    const ok = rowReportability(row, now);
    if (!ok.reportable) throw bad(ok.reason);
    // The relay refuses context from anyone but the reported message's sender (CONTEXT_MISMATCH): say so before sending.
    if (!bytesEqual(row.sender.accountKey, reported.sender.accountKey) || row.sender.deviceId !== reported.sender.deviceId) {
      throw bad('another sender');
    }
    rows.push(row);
  }
  // Conversation order, so the moderator reads them as they were received.
  rows.sort((a, b) => (a.messageKey < b.messageKey ? -1 : a.messageKey > b.messageKey ? 1 : 0));
  return assembleReport(r.conversation, reported, rows, r.reason, r.comment ?? '');
}

/** Builds the report from the stored franked material and files it with the relay. */
export async function fileReport(ctx: Context, r: ReportRequest): Promise<ReportOutcome> {
  const { report } = prepareReport(ctx, r);
  const link = ctx.relay.reports;
  if (!link) throw new ClientError('RELAY_REFUSED', 'this relay link cannot file reports');
  await link.fileReport(encodeReport(report));
  return { queued: true, items: report.items.length };
}
