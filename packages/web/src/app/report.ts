/**
 * The report screen's text: the preview of exactly what will be sent, and
 * what each outcome means to the person reporting (spec/14-franking.md §6).
 */
import type { ReportError, ReportPreview } from '@parley/client';
import { REPORT_REASON_LABELS } from '@parley/client';
import { h } from './dom.ts';
import { sizeText, time } from './format.ts';

/** What a refusal means, in words; the code follows in brackets. */
const REFUSALS: Readonly<Record<string, string>> = {
  REPORT_DUPLICATE: 'You already reported this message.',
  REPORT_BUDGET_EXCEEDED: 'Too many reports today; try again tomorrow.',
  FRANK_KEY_EXPIRED: 'The delivery proof of a message has expired: it can no longer be reported.',
  ATTACHMENT_UNAVAILABLE: 'The relay no longer stores the file of a message.',
  ATTACHMENT_MISMATCH: 'A file does not match its message.',
  TAG_MISMATCH: 'A message does not match its proof.',
  FRANK_INVALID: 'A message does not match its delivery proof.',
  CONTEXT_MISMATCH: 'A context message is not from the same person.',
  TOKEN_INVALID_IN_REPORT: 'Sealed-sender messages cannot be reported to this relay.',
};

export function reportOutcomeText(e: ReportError): string {
  if (e.code === 'NOT_REPORTABLE' || e.code === 'BAD_CONTEXT') return e.message.replace(/^[A-Z_]+: /, '');
  return `Report refused: ${REFUSALS[e.code] ?? 'the relay did not accept it.'} (${e.code})`;
}

/** The preview as nodes: reason, comment, each message with its sender and time, and what else the moderators learn. */
export function reportPreviewNodes(p: ReportPreview, nameOf: (account: string) => string): Node[] {
  const items = p.items.map((item) => {
    const b = item.body;
    const content =
      b.type === 'text'
        ? b.text
        : b.type === 'attachment'
          ? `[file ${b.fileName ?? 'unnamed'}, ${sizeText(b.size)}]${b.caption ? ` ${b.caption}` : ''}`
          : `[${b.bytes} bytes]`;
    return h(
      'li',
      { 'data-testid': 'report-item', 'data-role': item.role },
      h('strong', {}, item.role === 'reported' ? 'Reported: ' : 'Context: '),
      `${time(item.acceptedAt)} ${nameOf(item.sender.account)}: `,
      content,
    );
  });
  return [
    h('p', {}, `Reason: ${REPORT_REASON_LABELS[p.reason]}`),
    h('p', {}, `Comment: ${p.comment || '(none)'}`),
    h('ol', {}, ...items),
    h('p', { class: 'small' }, `Also sent: ${p.disclosed.join('; ')}.`),
    h('p', { class: 'small' }, `${nameOf(p.reportedSender.account)} is not told that you reported.`),
  ];
}
