/**
 * From franked rows (franking/store.ts) to an AbuseReport (core's codec,
 * spec/14-franking.md §6) and to the preview a report screen shows: the
 * same rows, item for item, so the user sees exactly what is sent.
 * Pure: no store, no relay, no clock (the caller passes `now`).
 */
import {
  type AbuseReport,
  FRANK_KEY_PERIOD_MS,
  FRANK_KEY_RETENTION_MS,
  MAX_REPORT_ITEMS,
  type ReportItem,
  attachment,
  frankKeyExpired,
} from '@parley/core';
import { type ContentBody, decodeContent } from '../content/content.ts';
import type { FrankedMessage } from '../franking/store.ts';
import { accountId, messageIdText } from '../state/ids.ts';
import { REPORT_REASONS, type ReportReason } from './reasons.ts';

/** Context messages a report may carry: the relay's MAX_REPORT_ITEMS less the reported message. */
export const MAX_REPORT_CONTEXT = MAX_REPORT_ITEMS - 1;

/** Why a message cannot be reported. */
export type NotReportableReason =
  /** Not stored on this device: it disappeared (its franking key went with it), was deleted, or never arrived. */
  | 'gone'
  /** Our own message. */
  | 'outgoing'
  /** Received without franking material (a v1 sender, or the row was dropped past the store's bound). */
  | 'not-franked'
  /** Sent sealed: only a moderation service holding the moderator keys can verify it (14 §5). */
  | 'sealed'
  /** The relay's frank key for its day is destroyed (14 §4): nobody can prove it any more. */
  | 'proof-expired';

/** What a UI says for each reason; the wording for a disappeared message is the one issue 19 asks for. */
export const NOT_REPORTABLE_TEXT: Readonly<Record<NotReportableReason, string>> = {
  gone: 'This message can no longer be reported: it disappeared or was deleted.',
  outgoing: 'Your own messages cannot be reported.',
  'not-franked': 'This message cannot be reported: it was sent by an app version without verifiable reports.',
  sealed: 'This message was sent with sealed sender and cannot be reported to this relay.',
  'proof-expired': 'This message can no longer be reported: its delivery proof has expired.',
};

export type Reportability =
  | { readonly reportable: true; readonly until: number }
  | { readonly reportable: false; readonly reason: NotReportableReason; readonly explanation: string };

export function notReportable(reason: NotReportableReason): Reportability {
  return { reportable: false, reason, explanation: NOT_REPORTABLE_TEXT[reason] };
}

/** When a franked row stops being reportable: the earlier of its frank key's destruction and its message's expiry. */
export function reportableUntil(row: FrankedMessage): number {
  const destroyed = (row.delivery.frankKeyId + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS;
  return row.expiresAt === null ? destroyed : Math.min(destroyed, row.expiresAt);
}

/** The relay-independent checks of a franked row at `now`. */
export function rowReportability(row: FrankedMessage, now: number): Reportability {
  if (row.sealed) return notReportable('sealed');
  if (frankKeyExpired(row.delivery.frankKeyId, now)) return notReportable('proof-expired');
  if (row.expiresAt !== null && row.expiresAt <= now) return notReportable('gone');
  return { reportable: true, until: reportableUntil(row) };
}

const be8 = (ms: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms));
  return out;
};

/** One report item from a franked row. Files are listed by pointer; the relay checks its stored blob (14 §6 step 5). */
export function reportItem(row: FrankedMessage, role: 1 | 2): ReportItem {
  const pointers = attachment.contentAttachmentPointers(row.plaintext);
  return {
    role,
    envelopeId: row.delivery.envelopeId,
    acceptedAt: be8(row.delivery.acceptedAt),
    frankKeyId: row.delivery.frankKeyId,
    frank: row.delivery.frank,
    recipientDevice: row.recipientDevice,
    frankingTag: row.delivery.frankingTag,
    frankingKey: row.frankingKey,
    sender: row.sender,
    plaintext: row.plaintext,
    token: null,
    attestation: row.attestation,
    attachments: pointers.map((_, pointerIndex) => ({ pointerIndex, blob: null })),
  };
}

/** What one item shows: who sent it, when the relay accepted it, and its content as the moderator will read it. */
export interface ReportPreviewItem {
  readonly role: 'reported' | 'context';
  readonly messageId: string;
  readonly sender: { readonly account: string; readonly deviceId: number };
  /** When the relay accepted it (ms): the time the moderator sees. */
  readonly acceptedAt: number;
  readonly body:
    | { readonly type: 'text'; readonly text: string }
    | {
        readonly type: 'attachment';
        readonly caption: string;
        readonly fileName: string | null;
        readonly contentType: string | null;
        readonly size: number;
      }
    /** Bytes this client cannot show as a message (sent as they are). */
    | { readonly type: 'other'; readonly bytes: number };
}

export interface ReportPreview {
  readonly conversation: string;
  readonly reason: ReportReason;
  readonly comment: string;
  /** The reported message first, then the context messages in conversation order. */
  readonly items: readonly ReportPreviewItem[];
  /** The person whose messages these are (told nothing by the report). */
  readonly reportedSender: { readonly account: string; readonly deviceId: number };
  /** What else the moderator learns: the reporter's account and device (signed request), and that files are checked. */
  readonly disclosed: readonly string[];
}

function shownBody(plaintext: Uint8Array): ReportPreviewItem['body'] {
  let body: ContentBody;
  try {
    body = decodeContent(plaintext).body;
  } catch {
    return { type: 'other', bytes: plaintext.length };
  }
  if (body.type === 'text') return { type: 'text', text: body.text };
  if (body.type === 'attachment') {
    const a = body.attachment;
    return { type: 'attachment', caption: body.caption, fileName: a.fileName, contentType: a.contentType, size: a.size };
  }
  return { type: 'other', bytes: plaintext.length };
}

export function previewItem(row: FrankedMessage, role: 1 | 2): ReportPreviewItem {
  return {
    role: role === 1 ? 'reported' : 'context',
    messageId: messageIdText(row.messageId),
    sender: { account: accountId(row.sender.accountKey), deviceId: row.sender.deviceId },
    acceptedAt: row.delivery.acceptedAt,
    body: shownBody(row.plaintext),
  };
}

/** The report and its preview from the reported row and the context rows (already checked and ordered). */
export function assembleReport(
  conversation: string,
  reported: FrankedMessage,
  context: readonly FrankedMessage[],
  reason: ReportReason,
  comment: string,
): { report: AbuseReport; preview: ReportPreview } {
  const rows: [FrankedMessage, 1 | 2][] = [[reported, 1], ...context.map((r): [FrankedMessage, 2] => [r, 2])];
  const files = rows.some(([r]) => attachment.contentAttachmentPointers(r.plaintext).length > 0);
  return {
    report: { reason: REPORT_REASONS[reason], comment, items: rows.map(([r, role]) => reportItem(r, role)) },
    preview: {
      conversation,
      reason,
      comment,
      items: rows.map(([r, role]) => previewItem(r, role)),
      reportedSender: { account: accountId(reported.sender.accountKey), deviceId: reported.sender.deviceId },
      disclosed: [
        'your account and this device (the report is signed by it)',
        'the sender, the delivery time and the full content of each message listed',
        ...(files ? ['the files these messages carry (the relay checks its stored copy against each message)'] : []),
      ],
    },
  };
}
