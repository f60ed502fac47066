/**
 * `/report` in the terminal chat (spec/14-franking.md §6): pick a received
 * message and, if wanted, up to 10 more of the same sender as context; see
 * exactly what will be sent; confirm; see the outcome.
 *
 *   /report                                  numbered list of received messages (and which cannot be reported, why)
 *   /report <n> <reason> [+<m>,<m>…] [comment]   the screen of what will be sent, then "send this report? (yes/no)"
 *
 * One dialog per chat: `handle` takes the lines the user types while the
 * dialog waits for its answer. Output goes through the chat's printer.
 * Nothing is sent before "yes".
 */
import type { ParleyClient } from '../client.ts';
import type { ReportRequest } from '../engine/reports.ts';
import type { ReportPreview, ReportPreviewItem } from '../reports/build.ts';
import { isReportError } from '../reports/errors.ts';
import { REPORT_REASONS, REPORT_REASON_LABELS, type ReportReason, isReportReason } from '../reports/reasons.ts';
import type { StoredMessage } from '../state/history.ts';
import { accountId, messageIdText } from '../state/ids.ts';
import { UsageError } from './commands.ts';
import { byMessageTime, nameOf, preview, time } from './format.ts';

/** Received messages listed by `/report`: enough to pick context, short enough to read. */
export const REPORT_LIST_LENGTH = 20;

export const REPORT_HELP = `  /report                  list received messages to report (numbered)
  /report <n> <reason> [+<m>,<m>…] [comment]
                           report message n (with messages m… as context); reasons: ${Object.keys(REPORT_REASONS).join(', ')}`;

/** What a refusal means to the person reporting. */
const REFUSALS: Readonly<Record<string, string>> = {
  REPORT_DUPLICATE: 'you already reported this message',
  REPORT_BUDGET_EXCEEDED: 'too many reports today; try again tomorrow',
  FRANK_KEY_EXPIRED: 'the delivery proof of a message has expired: it can no longer be reported',
  ATTACHMENT_UNAVAILABLE: 'the relay no longer stores the file of a message',
  ATTACHMENT_MISMATCH: 'a file does not match its message',
  TAG_MISMATCH: 'a message does not match its proof',
  FRANK_INVALID: 'a message does not match its delivery proof',
  CONTEXT_MISMATCH: 'a context message is not from the same sender',
  TOKEN_INVALID_IN_REPORT: 'sealed-sender messages cannot be reported to this relay',
};

export interface ReportPrinter {
  print(line: string): void;
}

function bodyLine(b: ReportPreviewItem['body']): string {
  if (b.type === 'text') return b.text;
  if (b.type === 'attachment') {
    return `[file ${b.fileName ?? 'unnamed'}, ${b.size} bytes${b.contentType ? `, ${b.contentType}` : ''}]${b.caption ? ` ${b.caption}` : ''}`;
  }
  return `[${b.bytes} bytes this app cannot show]`;
}

/** The screen of exactly what will be sent. */
export function previewLines(client: ParleyClient, p: ReportPreview): string[] {
  const lines = [
    "  ── report: this is exactly what will be sent to the relay's moderators ──",
    `  reason:   ${REPORT_REASON_LABELS[p.reason]}`,
    `  comment:  ${p.comment ? JSON.stringify(p.comment) : '(none)'}`,
    `  sender:   ${nameOf(client, p.reportedSender.account)} (${p.reportedSender.account}, device ${p.reportedSender.deviceId})`,
  ];
  for (const item of p.items) {
    lines.push(`  ${item.role === 'reported' ? 'REPORTED' : 'context '} [${time(item.acceptedAt)}] ${bodyLine(item.body)}`);
  }
  lines.push(`  also sent: ${p.disclosed.join('; ')}`);
  lines.push(`  ${nameOf(client, p.reportedSender.account)} is not told.`);
  return lines;
}

interface Listed {
  readonly n: number;
  readonly message: StoredMessage;
}

export class ReportDialog {
  readonly #client: ParleyClient;
  readonly #conversation: string;
  readonly #out: ReportPrinter;
  /** The numbers of the last listing: `/report <n>` means what the user saw. */
  #listed: Listed[] | null = null;
  #pending: ReportRequest | null = null;

  constructor(client: ParleyClient, conversation: string, out: ReportPrinter) {
    this.#client = client;
    this.#conversation = conversation;
    this.#out = out;
  }

  /** True while the dialog waits for yes/no: the chat hands it the next line instead of sending it. */
  get waiting(): boolean {
    return this.#pending !== null;
  }

  #list(): Listed[] {
    const received = byMessageTime(this.#client.history(this.#conversation)).filter((m) => !m.outgoing);
    return received.slice(-REPORT_LIST_LENGTH).map((message, i) => ({ n: i + 1, message }));
  }

  /** `/report` and its arguments. */
  command(args: string): void {
    const words = args.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) {
      this.#listed = this.#list();
      if (this.#listed.length === 0) {
        this.#out.print('  (no received messages to report)');
        return;
      }
      for (const { n, message } of this.#listed) {
        const id = messageIdText(message.content.messageId);
        const verdict = this.#client.reportable(this.#conversation, id);
        const who = nameOf(this.#client, accountId(message.sender.accountKey));
        const note = verdict.reportable ? '' : `   (${verdict.explanation})`;
        this.#out.print(`  ${String(n).padStart(2)}  [${time(message.content.sentAt)}] ${who}: ${preview(message)}${note}`);
      }
      this.#out.print('  then: /report <n> <reason> [+<m>,<m>…] [comment]');
      return;
    }
    const listed = this.#listed ?? this.#list();
    const pick = (word: string): string => {
      const n = Number(word);
      const found = listed.find((l) => l.n === n);
      if (!found) throw new UsageError(`no message ${word} in the list (/report lists them)`);
      return messageIdText(found.message.content.messageId);
    };
    const [n, reason, ...rest] = words as [string, string | undefined, ...string[]];
    if (!reason || !isReportReason(reason))
      throw new UsageError(`usage: /report <n> <reason> [+<m>,…] [comment]; reasons: ${Object.keys(REPORT_REASONS).join(', ')}`);
    const context = rest[0]?.startsWith('+') ? (rest.shift() as string).slice(1).split(',').filter(Boolean).map(pick) : [];
    const request: ReportRequest = {
      conversation: this.#conversation,
      messageId: pick(n),
      context,
      reason: reason as ReportReason,
      comment: rest.join(' '),
    };
    let shown: ReportPreview;
    try {
      shown = this.#client.reportPreview(request);
    } catch (e) {
      if (isReportError(e)) {
        this.#out.print(`  cannot report: ${e.message.replace(/^[A-Z_]+: /, '')}`);
        return;
      }
      throw e;
    }
    for (const line of previewLines(this.#client, shown)) this.#out.print(line);
    this.#out.print('  send this report? (yes/no)');
    this.#pending = request;
  }

  /** The answer to "send this report?". */
  async answer(line: string): Promise<void> {
    const request = this.#pending;
    this.#pending = null;
    if (!request) return;
    if (!/^y(es)?$/i.test(line.trim())) {
      this.#out.print('  (report not sent)');
      return;
    }
    try {
      const outcome = await this.#client.report(request);
      this.#out.print(`  report sent: ${outcome.items} message${outcome.items === 1 ? '' : 's'} queued for the moderators`);
    } catch (e) {
      if (isReportError(e)) {
        this.#out.print(`  report refused: ${REFUSALS[e.code] ?? e.code} (${e.code})`);
        return;
      }
      throw e;
    }
  }
}
