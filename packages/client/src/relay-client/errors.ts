/**
 * Errors from the relay client. A refused request carries the relay's
 * stable `code` (spec/09-relay.md §9) and its structured `details`; a
 * transport failure has code NETWORK and status 0.
 */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  /** HTTP status, or 0 when no answer arrived. */
  readonly status: number;
  /** The relay's error code, or NETWORK / BAD_RESPONSE / BAD_BUNDLE (client-side). */
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function isRelayError(e: unknown, code?: string): e is RelayError {
  return e instanceof RelayError && (code === undefined || e.code === code);
}
