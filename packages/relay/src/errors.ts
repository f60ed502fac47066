/**
 * The relay's coded errors: every failure a client can cause has a stable
 * `code` and an HTTP status, listed in spec/09-relay.md §9. Messages name
 * fields and limits, never values: no key, envelope or body byte ever lands
 * in an error (or, through it, in a log).
 *
 * Built with @fastify/error so fastify's reply path knows the status.
 */
import createError, { type FastifyError } from '@fastify/error';

/** Every code the relay answers with, and its HTTP status. */
export const ERROR_STATUS = {
  /** Body, parameter, base64url or CBOR that is not well-formed. */
  MALFORMED: 400,
  /** The request does not match the route's schema. */
  VALIDATION_FAILED: 400,
  /** A certificate in the request does not verify or names another account/device. */
  BAD_CERTIFICATE: 400,
  /** A prekey signature does not verify against the device's signing key. */
  BAD_SIGNATURE: 400,
  /** A public key in the request is malformed or of low order. */
  BAD_PUBLIC_KEY: 400,
  /** A format version this relay does not know. */
  UNSUPPORTED_VERSION: 400,
  /** No Authorization header. */
  AUTH_REQUIRED: 401,
  /** The Authorization header is not in the Parley format. */
  AUTH_MALFORMED: 401,
  /** The request signature does not verify. */
  AUTH_BAD_SIGNATURE: 401,
  /** The signed timestamp is outside the replay window. */
  AUTH_STALE_TIMESTAMP: 401,
  /** This exact signed request was already seen within the window. */
  AUTH_REPLAYED: 401,
  /** The signer names a device (or account) the relay does not know. */
  AUTH_UNKNOWN_DEVICE: 401,
  /** A delivery token that is unknown, expired or revoked: one code for all three (spec/12-sealed-sender.md §5). */
  TOKEN_INVALID: 403,
  /** Authenticated, but this signer may not call this route (e.g. the account key on a device route). */
  FORBIDDEN: 403,
  /** A certificate that was replaced or removed may not be registered again. */
  CERTIFICATE_REVOKED: 403,
  /** Unknown target, or a target the caller may not touch: the same answer for both. */
  NOT_FOUND: 404,
  /** The send does not cover exactly the recipient accounts' devices. */
  MISMATCHED_DEVICES: 409,
  /** A token registration above MAX_TOKENS_PER_ACCOUNT live tokens. */
  TOO_MANY_TOKENS: 409,
  /** Too many devices on one account. */
  TOO_MANY_DEVICES: 409,
  /** Registration: the device id's previous mailbox is still being purged (details.retryAfterSeconds). */
  DEVICE_PURGING: 409,
  /** The upload would exceed the per-device prekey pool. */
  TOO_MANY_PREKEYS: 409,
  /** Attachment upload: the offset is not where the stored bytes end. */
  OFFSET_MISMATCH: 409,
  /** Attachment upload: another request is writing this upload now. */
  UPLOAD_IN_PROGRESS: 409,
  /** Attachment: the device has too many unfinished uploads. */
  TOO_MANY_UPLOADS: 409,
  /** A signed device list with a lower revision than the held one, or the same revision with other devices. */
  DEVICE_LIST_OUTDATED: 409,
  /** Report: the reporter already reported this envelope. */
  REPORT_DUPLICATE: 409,
  /** Envelopes were encrypted for a certificate the device no longer has. */
  STALE_DEVICES: 410,
  /** A body, envelope, attachment or field above its limit. */
  PAYLOAD_TOO_LARGE: 413,
  /** One field (an envelope, a key) is above its limit. */
  OVERSIZED: 413,
  /** More envelopes in one send than the relay accepts. */
  TOO_MANY_ENVELOPES: 413,
  /** More recipient devices in one group fan-out than the relay accepts. */
  TOO_MANY_RECIPIENTS: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** A plain HTTP request to the websocket route. */
  UPGRADE_REQUIRED: 426,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
  /** Report: more reports than REPORTS_PER_DAY from one reporter account. */
  REPORT_BUDGET_EXCEEDED: 429,
  /** Report verification (spec/14-franking.md §7.2): the frank key of the item's period is destroyed. */
  FRANK_KEY_EXPIRED: 422,
  /** Report: the frank does not match this reporter, device, time, envelope id, tag and sender. */
  FRANK_INVALID: 422,
  /** Report: the franking tag does not open to this plaintext and sender under this franking key. */
  TAG_MISMATCH: 422,
  /** Report: a sealed item's moderator token does not verify. */
  TOKEN_INVALID_IN_REPORT: 422,
  /** Report: a sealed item's attestation over the tag does not verify. */
  ATTESTATION_INVALID: 422,
  /** Report: the sealed item's token names another sender. */
  SENDER_MISMATCH: 422,
  /** Report: a context item of another sender, or an envelope twice. */
  CONTEXT_MISMATCH: 422,
  /**
   * Report: a file the franked message names is left out or named twice, or its blob is not the
   * pointer's (length, header, key commitment, a chunk tag, digest; spec/14-franking.md §6 step 5).
   */
  ATTACHMENT_MISMATCH: 422,
  /** Report: a file's blob was not sent with the report and the relay no longer stores it. */
  ATTACHMENT_UNAVAILABLE: 422,
  /** A delivery token's (or its recipient's) sealed budget is spent (details.retryAfterSeconds). */
  TOKEN_BUDGET_EXCEEDED: 429,
  /** The strangers path's budget of the sender or of the recipient is spent. */
  STRANGER_BUDGET_EXCEEDED: 429,
  /** A recipient device's mailbox, or the sender's share of it, is at its message or byte limit. */
  MAILBOX_FULL: 507,
  /** The uploading device or its account would go over its stored attachment bytes. */
  QUOTA_EXCEEDED: 507,
  /** The relay is shutting down or cannot take the request now. */
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type RelayErrorCode = keyof typeof ERROR_STATUS;

/** Non-secret, structured context returned to the client (device ids, limits, offsets). */
export type RelayErrorDetails = Readonly<Record<string, unknown>>;

export interface RelayError extends FastifyError {
  readonly code: RelayErrorCode;
  readonly statusCode: number;
  readonly details?: RelayErrorDetails;
}

const constructors = new Map(
  (Object.keys(ERROR_STATUS) as RelayErrorCode[]).map((code) => [code, createError(code, '%s', ERROR_STATUS[code])]),
);

/** Makes a coded error; throw it from any route or hook. */
export function relayError(code: RelayErrorCode, message: string, details?: RelayErrorDetails): RelayError {
  const Ctor = constructors.get(code) as NonNullable<ReturnType<typeof constructors.get>>;
  const error = new Ctor(message) as RelayError & { details?: RelayErrorDetails };
  if (details) error.details = details;
  return error;
}

export function isRelayError(e: unknown): e is RelayError {
  if (!(e instanceof Error)) return false;
  const { code, statusCode } = e as Error & { code?: unknown; statusCode?: unknown };
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code) && typeof statusCode === 'number';
}
