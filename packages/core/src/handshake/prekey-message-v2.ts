/**
 * PreKeyMessageV2: the first message of a version-2 session.
 * spec/05-wire-format.md §4.3 (spec/design/formats-v2.md §3.2).
 *
 *   PreKeyMessageV2 = [2, 1, initiatorCertificate, baseKey: bstr .size 32,
 *                      signedPreKeyId, oneTimePreKeyId / null, kemPreKeyId,
 *                      kemCiphertext: bstr .size 1088,
 *                      versions: [+ uint],        ; versions_A (keys/versions.ts rules)
 *                      message: bstr]             ; the session's first ratchet message
 *
 * Layout as the v1 PreKeyMessage with `versions` before the embedded message.
 * This module owns the framing only: the embedded message is parsed by the
 * session layer, which knows which ratchet version it carries.
 */
import { encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readOptional, readUint } from '../codec/fields.ts';
import { MLKEM768_CIPHERTEXT_BYTES } from '../crypto/backend.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { type DeviceCertificate, certificateFromCbor, certificateToCbor } from '../keys/certificate.ts';
import type { PreKeyUse } from '../keys/prekeys.ts';
import { readVersionList } from '../keys/versions.ts';
import { MessageType } from '../labels.ts';
import { MAX_MESSAGE_BYTES, MAX_PREKEY_ID } from '../limits.ts';

/** The version field of a PreKeyMessageV2. */
export const PREKEY_MESSAGE_V2_VERSION = 2;

export interface PreKeyMessageV2Fields {
  readonly initiatorCertificate: DeviceCertificate;
  readonly use: PreKeyUse;
  readonly kemCiphertext: Uint8Array;
  /** versions_A: what the initiator offers (bound into AD2). */
  readonly versions: readonly number[];
  /** The embedded ratchet message, as sent. */
  readonly messageBytes: Uint8Array;
}

export function encodePreKeyMessageV2(m: PreKeyMessageV2Fields): Uint8Array {
  return encodeCbor([
    PREKEY_MESSAGE_V2_VERSION,
    MessageType.preKey,
    certificateToCbor(m.initiatorCertificate),
    m.use.baseKey,
    m.use.signedPreKeyId,
    m.use.oneTimePreKeyId,
    m.use.kemPreKeyId,
    m.kemCiphertext,
    [...m.versions],
    m.messageBytes,
  ]);
}

function readId(v: unknown, field: string): number {
  const id = readUint(v, field, MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: prekey id 0 is reserved`, { field });
  return id;
}

/**
 * Reads the fields of a decoded PreKeyMessageV2 (the caller has checked
 * version 2 and type 1). Every field is checked; the embedded message is
 * returned as bytes for the session layer.
 */
export function readPreKeyMessageV2(f: unknown[]): PreKeyMessageV2Fields {
  readArray(f, 'PreKeyMessageV2', 10);
  return {
    initiatorCertificate: certificateFromCbor(f[2]),
    use: {
      baseKey: checkX25519PublicKey(readBytes(f[3], 'baseKey', 32), 'baseKey'),
      signedPreKeyId: readId(f[4], 'signedPreKeyId'),
      oneTimePreKeyId: readOptional(f[5], (v) => readId(v, 'oneTimePreKeyId')),
      kemPreKeyId: readId(f[6], 'kemPreKeyId'),
    },
    kemCiphertext: readBytes(f[7], 'kemCiphertext', MLKEM768_CIPHERTEXT_BYTES),
    versions: readVersionList(f[8], 'versions'),
    messageBytes: readBytes(f[9], 'message', { max: MAX_MESSAGE_BYTES }),
  };
}

/**
 * The handshake fields of a PreKeyMessageV2 (all but the embedded message),
 * encoded, for the responder's repeat check: as v1's, plus versions_A, so a
 * repeat whose list was rewritten is refused like one with another key.
 */
export function preKeyV2FieldsBytes(m: Omit<PreKeyMessageV2Fields, 'messageBytes'>): Uint8Array {
  return encodeCbor([
    certificateToCbor(m.initiatorCertificate),
    m.use.baseKey,
    m.use.signedPreKeyId,
    m.use.oneTimePreKeyId,
    m.use.kemPreKeyId,
    m.kemCiphertext,
    [...m.versions],
  ]);
}
