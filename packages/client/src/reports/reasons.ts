/**
 * Why a user reports a message: the `reason` number of an AbuseReport
 * (spec/14-franking.md §6: 1..32). The list is the client's, shown on the
 * report screen; numbers are fixed once published (a moderator's queue
 * sorts by them), new reasons take the next free number.
 */
export const REPORT_REASONS = {
  spam: 1,
  harassment: 2,
  threat: 3,
  'sexual-content': 4,
  'child-safety': 5,
  'self-harm': 6,
  hate: 7,
  scam: 8,
  impersonation: 9,
  other: 10,
} as const;

export type ReportReason = keyof typeof REPORT_REASONS;

/** Text a report screen shows for each reason. */
export const REPORT_REASON_LABELS: Readonly<Record<ReportReason, string>> = {
  spam: 'Spam',
  harassment: 'Harassment or bullying',
  threat: 'Threats or violence',
  'sexual-content': 'Sexual content',
  'child-safety': 'Child safety',
  'self-harm': 'Self-harm',
  hate: 'Hate speech',
  scam: 'Scam or fraud',
  impersonation: 'Impersonation',
  other: 'Something else',
};

export function isReportReason(r: unknown): r is ReportReason {
  return typeof r === 'string' && Object.hasOwn(REPORT_REASONS, r);
}
