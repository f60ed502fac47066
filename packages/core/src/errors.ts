/**
 * Parley's one error type. Every failure caused by input from the outside
 * world (a peer, the relay, a storage layer) is a `ParleyError` with a stable
 * `code` that applications can branch on. Messages and fields never carry
 * key material or plaintext: only counters, lengths, ids and field names.
 *
 * Misuse of the API by the caller (wrong argument types) throws the standard
 * `TypeError` / `RangeError` instead, as noble does.
 *
 * spec/06-errors.md lists every code.
 */

export const ErrorCode = {
  /** Bytes are not well-formed CBOR, or not the shape the spec requires. */
  MALFORMED: 'MALFORMED',
  /** A version or format tag this implementation does not know. */
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  /** A field is longer than the spec allows. */
  OVERSIZED: 'OVERSIZED',
  /** A signature (certificate, prekey, group message) does not verify. */
  BAD_SIGNATURE: 'BAD_SIGNATURE',
  /** A device certificate is invalid or names another account or device. */
  BAD_CERTIFICATE: 'BAD_CERTIFICATE',
  /** A received public key is malformed or of low order (X25519). */
  BAD_PUBLIC_KEY: 'BAD_PUBLIC_KEY',
  /** A Diffie-Hellman output was all zero. */
  WEAK_KEY: 'WEAK_KEY',
  /** An initial message names a prekey id we do not hold (or have deleted). */
  UNKNOWN_PREKEY: 'UNKNOWN_PREKEY',
  /** An initial message that was already processed (replay of a handshake). */
  PREKEY_REUSED: 'PREKEY_REUSED',
  /** The AEAD tag did not verify: tampered, or for another session. */
  DECRYPT_FAILED: 'DECRYPT_FAILED',
  /** A message that was already decrypted (its key is gone). */
  DUPLICATE_MESSAGE: 'DUPLICATE_MESSAGE',
  /** A message further ahead in its chain than the forward-jump bound. */
  TOO_FAR_AHEAD: 'TOO_FAR_AHEAD',
  /** A message for a chain whose keys were already evicted or never known. */
  UNKNOWN_CHAIN: 'UNKNOWN_CHAIN',
  /** No session exists for the peer, or the message is not a prekey message. */
  NO_SESSION: 'NO_SESSION',
  /** Padding inside a decrypted message is not well-formed. */
  BAD_PADDING: 'BAD_PADDING',
  /** A stored record is malformed or of an unknown format. */
  BAD_RECORD: 'BAD_RECORD',
  /** The sender's identity differs from the one this session was made with. */
  IDENTITY_MISMATCH: 'IDENTITY_MISMATCH',
  /** Group: the group id is not one we hold state for. */
  UNKNOWN_GROUP: 'UNKNOWN_GROUP',
  /** Group: the sender device is not a member, or we hold no chain for it. */
  UNKNOWN_SENDER: 'UNKNOWN_SENDER',
  /** Group: the message is for an epoch outside the grace window. */
  STALE_EPOCH: 'STALE_EPOCH',
  /** Group: a sender-key distribution arrived on the wrong session. */
  FORGED_DISTRIBUTION: 'FORGED_DISTRIBUTION',
  /**
   * PQ chunks that cannot be decoded: too few, a repeated or out-of-range
   * index, or a chunk of the wrong length (spec/design/formats-v2.md §5.2, §13.1).
   */
  PQ_CHUNK_INVALID: 'PQ_CHUNK_INVALID',
  /**
   * Ratchet v2: no header key of any candidate session opens the encrypted
   * header (spec/13-ratchet-v2.md §5). Nothing else was computed.
   */
  HEADER_DECRYPT_FAILED: 'HEADER_DECRYPT_FAILED',
  /**
   * Ratchet v2: a header's PQ epoch that is not its chain's, or not the root
   * epoch (or the next one with the secret held) on a DH step (spec/13-ratchet-v2.md §6).
   */
  PQ_EPOCH_INVALID: 'PQ_EPOCH_INVALID',
  /** v2: the franking tag recomputed from the body differs from the authenticated one (formats-v2 §6.1). */
  FRANKING_TAG_MISMATCH: 'FRANKING_TAG_MISMATCH',
  /**
   * A version-1 bundle or PreKeyMessage (or a negotiated version below the
   * pin) for a peer device already seen signing version 2
   * (spec/design/formats-v2.md §3.3, §3.5).
   */
  DOWNGRADE_REFUSED: 'DOWNGRADE_REFUSED',
  /**
   * A sealed envelope that does not open: unknown token, wrong mode, no
   * candidate sender's check value matches, AEAD failure, or a sender device
   * id that is not the candidate that authenticated (spec/12-sealed-sender.md §4).
   */
  SEAL_FAILED: 'SEAL_FAILED',
  /** The seal's authenticated sender key is not the one the inner message's session holds. */
  SEAL_SENDER_MISMATCH: 'SEAL_SENDER_MISMATCH',
  /** The caller asked for something the state does not allow. */
  INVALID_STATE: 'INVALID_STATE',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Non-secret context attached to an error (ids, counters, lengths). */
export type ErrorDetails = Readonly<Record<string, string | number | boolean | null>>;

export class ParleyError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(`${code}: ${message}`);
    this.name = 'ParleyError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}

export function fail(code: ErrorCode, message: string, details?: ErrorDetails): never {
  throw new ParleyError(code, message, details);
}

export function isParleyError(e: unknown, code?: ErrorCode): e is ParleyError {
  return e instanceof ParleyError && (code === undefined || e.code === code);
}
