/**
 * The report flow's typed error. Its `code` is either the relay's refusal
 * code, unchanged (spec/17-franking-and-reports.md §8), or one of the
 * client's own checks made before anything is sent:
 *
 * - NOT_REPORTABLE: the reported message cannot be reported (`details.reason`
 *   says why: unknown, outgoing, not-franked, sealed, proof-expired, gone);
 * - BAD_CONTEXT: a context message is unknown in this conversation, repeated,
 *   the reported message itself, from another sender, not reportable, or
 *   there are more than MAX_REPORT_CONTEXT (`details.messageId`, `details.reason`).
 *
 * Messages name codes, item indices and message ids; never content or keys.
 */
export const RELAY_REPORT_CODES = [
  'FRANK_KEY_EXPIRED',
  'FRANK_INVALID',
  'TAG_MISMATCH',
  'CONTEXT_MISMATCH',
  'ATTACHMENT_MISMATCH',
  'ATTACHMENT_UNAVAILABLE',
  'TOKEN_INVALID_IN_REPORT',
  'ATTESTATION_INVALID',
  'SENDER_MISMATCH',
  'REPORT_DUPLICATE',
  'REPORT_BUDGET_EXCEEDED',
  'PAYLOAD_TOO_LARGE',
  'MALFORMED',
  'OVERSIZED',
] as const;

export type RelayReportCode = (typeof RELAY_REPORT_CODES)[number];
export type ReportErrorCode = RelayReportCode | 'NOT_REPORTABLE' | 'BAD_CONTEXT';

export type ReportErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export class ReportError extends Error {
  override readonly name = 'ReportError';
  readonly code: ReportErrorCode;
  readonly details: ReportErrorDetails;

  constructor(code: ReportErrorCode, message: string, details: ReportErrorDetails = {}) {
    super(`${code}: ${message}`);
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isReportError(e: unknown, code?: ReportErrorCode): e is ReportError {
  return e instanceof ReportError && (code === undefined || e.code === code);
}

export function isRelayReportCode(code: unknown): code is RelayReportCode {
  return typeof code === 'string' && (RELAY_REPORT_CODES as readonly string[]).includes(code);
}
