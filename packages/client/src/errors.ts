/**
 * The client SDK's coded errors. spec/10-client.md §9 lists every code.
 *
 * Failures from the protocol itself stay core's `ParleyError` (DECRYPT_FAILED,
 * BAD_CERTIFICATE, ...); this type covers what only the client can detect:
 * an untrusted device on the relay, an unknown contact, a relay that answers
 * out of contract. Messages name ids and counts, never key bytes or plaintext.
 */

export const ClientErrorCode = {
  /** The relay lists a device the account never certified (or removed): a ghost. */
  UNTRUSTED_DEVICE: 'UNTRUSTED_DEVICE',
  /** The relay answered something the protocol does not allow (wrong sender, bad bundle, ...). */
  RELAY_MISBEHAVED: 'RELAY_MISBEHAVED',
  /** The relay could not be reached or answered with an error; the operation may be retried. */
  RELAY_UNAVAILABLE: 'RELAY_UNAVAILABLE',
  /** The relay refused a request permanently (a 4xx other than the ones handled). */
  RELAY_REFUSED: 'RELAY_REFUSED',
  /** The account has no registered device on the relay. */
  UNKNOWN_ACCOUNT: 'UNKNOWN_ACCOUNT',
  /** No contact or group with this id. */
  UNKNOWN_CONVERSATION: 'UNKNOWN_CONVERSATION',
  /** This device does not hold the account key (only the primary can add or remove devices). */
  NOT_PRIMARY: 'NOT_PRIMARY',
  /** The store holds no identity yet, or one for another account. */
  NOT_REGISTERED: 'NOT_REGISTERED',
  /** A link request or response that does not match or does not verify. */
  BAD_LINK: 'BAD_LINK',
  /** The client was closed. */
  CLOSED: 'CLOSED',
  /** No stored message with this id in the conversation (never received, or disappeared). */
  UNKNOWN_MESSAGE: 'UNKNOWN_MESSAGE',
  /** A group change its author may not make: not an admin (a member may only leave), or not a member (spec 08 §13). */
  NOT_GROUP_ADMIN: 'NOT_GROUP_ADMIN',
  /** A group change that is not exactly one revision after the state it names, or names a state not held (spec 08 §13). */
  GROUP_OUT_OF_ORDER: 'GROUP_OUT_OF_ORDER',
  /** A group change past a group bound: the last revision, or more than MAX_GROUP_MEMBERS accounts (spec 08 §13). */
  GROUP_LIMIT: 'GROUP_LIMIT',
  /** A peer exceeded a per-sender budget (first-contact handshakes, spec/10-client.md §4.2.2); the envelope was dropped. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A peer's content asked for more than a named limit allows (a group past its member-device bound). */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /**
   * A peer's envelope made the SDK fail in a way it has no specific code for
   * (an untyped error: a bug of ours that the input reached). The envelope is
   * dropped like any other refused input; the fuzzer counts these and expects 0.
   */
  INTERNAL: 'INTERNAL',
  /** The local store failed (a write, a read or a commit): the envelope is not acknowledged. */
  STORE_FAILED: 'STORE_FAILED',
} as const;

export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

export type ClientErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly details: ClientErrorDetails;

  constructor(code: ClientErrorCode, message: string, details: ClientErrorDetails = {}) {
    super(`${code}: ${message}`);
    this.name = 'ClientError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function isClientError(e: unknown, code?: ClientErrorCode): e is ClientError {
  return e instanceof ClientError && (code === undefined || e.code === code);
}
