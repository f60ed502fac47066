/**
 * One-to-one wire messages. spec/05-wire-format.md §2-§4.
 *
 *   RatchetMessage = [version, 2, header: bstr, ciphertext: bstr]
 *   PreKeyMessage  = [version, 1, initiatorCertificate, baseKey: bstr .size 32,
 *                     signedPreKeyId, oneTimePreKeyId / null, kemPreKeyId,
 *                     kemCiphertext: bstr .size 1088, message: bstr (a RatchetMessage)]
 *
 * The header travels as its own byte string so the exact bytes that were
 * authenticated (as associated data) are the bytes on the wire.
 *
 * Version 2 (spec/13-ratchet-v2.md §4, formats-v2 §3.2, §4.3):
 *   RatchetMessageV2 = [2, 2, header: bstr .size 60 (EncryptedHeader), ciphertext: bstr (>= 16)]
 *   PreKeyMessageV2  = [2, 1, initiatorCertificate, baseKey, signedPreKeyId,
 *                       oneTimePreKeyId / null, kemPreKeyId, kemCiphertext,
 *                       versions: [+ uint], message: bstr .cbor RatchetMessageV2]
 * The franking tag is not in the message: it travels beside it and is
 * passed to decrypt.
 */
import { type CborValue, decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readOptional, readUint, readVersion } from '../codec/fields.ts';
import { AEAD_TAG_BYTES, MLKEM768_CIPHERTEXT_BYTES } from '../crypto/backend.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { type DeviceCertificate, certificateFromCbor, certificateToCbor } from '../keys/certificate.ts';
import type { PreKeyUse } from '../keys/prekeys.ts';
import { MessageType, PROTOCOL_VERSION } from '../labels.ts';
import { MAX_MESSAGE_BYTES, MAX_PREKEY_ID } from '../limits.ts';
import { type Header, decodeHeader } from '../ratchet/header.ts';
import { ENCRYPTED_HEADER_BYTES } from '../ratchet/v2/header.ts';
import { readVersions } from './state-v2.ts';

export interface RatchetMessage {
  readonly type: 'ratchet';
  readonly header: Header;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export interface PreKeyMessage {
  readonly type: 'prekey';
  readonly initiatorCertificate: DeviceCertificate;
  readonly use: PreKeyUse;
  readonly kemCiphertext: Uint8Array;
  readonly message: RatchetMessage;
  /** The embedded RatchetMessage bytes, as received. */
  readonly messageBytes: Uint8Array;
}

export interface RatchetMessageV2 {
  readonly type: 'ratchet2';
  /** EncryptedHeader, 60 bytes. */
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
}

export interface PreKeyMessageV2 {
  readonly type: 'prekey2';
  readonly initiatorCertificate: DeviceCertificate;
  readonly use: PreKeyUse;
  readonly kemCiphertext: Uint8Array;
  /** versions_A: the initiator's signed version set. */
  readonly versions: readonly number[];
  readonly message: RatchetMessageV2;
  readonly messageBytes: Uint8Array;
}

export type Message = RatchetMessage | PreKeyMessage | RatchetMessageV2 | PreKeyMessageV2;

const RATCHET_VERSION_2 = 2;

/**
 * The handshake fields of a PreKeyMessage (everything but the embedded
 * message), encoded. A responder keeps their digest with the session it
 * created, so a repeated PreKeyMessage whose handshake fields were altered
 * is refused rather than silently accepted.
 */
export function preKeyFieldsBytes(m: Pick<PreKeyMessage, 'initiatorCertificate' | 'use' | 'kemCiphertext'>): Uint8Array {
  return encodeCbor(preKeyHeadToCbor(m.initiatorCertificate, m.use, m.kemCiphertext));
}

/**
 * The handshake fields of a PreKeyMessageV2 (all but the embedded message),
 * encoded, for the responder's repeat check: as v1's plus versions_A, so a
 * repeat whose version list was rewritten is refused like one with another key.
 */
export function preKeyV2FieldsBytes(m: Pick<PreKeyMessageV2, 'initiatorCertificate' | 'use' | 'kemCiphertext' | 'versions'>): Uint8Array {
  return encodeCbor([...preKeyHeadToCbor(m.initiatorCertificate, m.use, m.kemCiphertext), [...m.versions]]);
}

/**
 * Fields 2..7 of PreKeyMessage and PreKeyMessageV2 (certificate, prekey use,
 * KEM ciphertext), the order `preKeyHeadFromFields` reads them in.
 */
function preKeyHeadToCbor(initiatorCertificate: DeviceCertificate, use: PreKeyUse, kemCiphertext: Uint8Array): CborValue[] {
  return [certificateToCbor(initiatorCertificate), use.baseKey, use.signedPreKeyId, use.oneTimePreKeyId, use.kemPreKeyId, kemCiphertext];
}

export function encodeRatchetMessage(headerBytes: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return encodeCbor([PROTOCOL_VERSION, MessageType.ratchet, headerBytes, ciphertext]);
}

export function encodePreKeyMessage(
  initiatorCertificate: DeviceCertificate,
  use: PreKeyUse,
  kemCiphertext: Uint8Array,
  messageBytes: Uint8Array,
): Uint8Array {
  return encodeCbor([PROTOCOL_VERSION, MessageType.preKey, ...preKeyHeadToCbor(initiatorCertificate, use, kemCiphertext), messageBytes]);
}

export function encodeRatchetMessageV2(header: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return encodeCbor([RATCHET_VERSION_2, MessageType.ratchet, header, ciphertext]);
}

export function encodePreKeyMessageV2(
  initiatorCertificate: DeviceCertificate,
  use: PreKeyUse,
  kemCiphertext: Uint8Array,
  versions: readonly number[],
  messageBytes: Uint8Array,
): Uint8Array {
  return encodeCbor([
    RATCHET_VERSION_2,
    MessageType.preKey,
    ...preKeyHeadToCbor(initiatorCertificate, use, kemCiphertext),
    [...versions],
    messageBytes,
  ]);
}

/** Decodes any message type of version 1 or 2; every field is checked. */
export function decodeMessage(bytes: Uint8Array): Message {
  const f = decodeCbor(bytes, 'Message', MAX_MESSAGE_BYTES);
  if (!Array.isArray(f) || f.length < 2) fail('MALFORMED', 'Message: expected an array with version and type');
  if (readVersion(f[0], 'Message', [PROTOCOL_VERSION, RATCHET_VERSION_2]) === RATCHET_VERSION_2) {
    switch (f[1]) {
      case MessageType.ratchet:
        return ratchetV2FromFields(f);
      case MessageType.preKey:
        return preKeyV2FromFields(f);
      default:
        return fail('MALFORMED', 'Message: unknown message type');
    }
  }
  switch (f[1]) {
    case MessageType.ratchet:
      return ratchetFromFields(f);
    case MessageType.preKey:
      return preKeyFromFields(f);
    default:
      return fail('MALFORMED', 'Message: unknown message type');
  }
}

function ratchetFromFields(f: unknown[]): RatchetMessage {
  readArray(f, 'RatchetMessage', 4);
  const headerBytes = readBytes(f[2], 'header', { max: 64 });
  const ciphertext = readBytes(f[3], 'ciphertext', { min: AEAD_TAG_BYTES, max: MAX_MESSAGE_BYTES });
  return { type: 'ratchet', header: decodeHeader(headerBytes), headerBytes, ciphertext };
}

function readId(v: unknown, field: string): number {
  const id = readUint(v, field, MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: prekey id 0 is reserved`, { field });
  return id;
}

/** Fields 2..7, the same in PreKeyMessage and PreKeyMessageV2: certificate, prekey use, KEM ciphertext. */
function preKeyHeadFromFields(f: unknown[]): { initiatorCertificate: DeviceCertificate; use: PreKeyUse; kemCiphertext: Uint8Array } {
  const initiatorCertificate = certificateFromCbor(f[2]);
  const baseKey = checkX25519PublicKey(readBytes(f[3], 'baseKey', 32), 'baseKey');
  const use: PreKeyUse = {
    baseKey,
    signedPreKeyId: readId(f[4], 'signedPreKeyId'),
    oneTimePreKeyId: readOptional(f[5], (v) => readId(v, 'oneTimePreKeyId')),
    kemPreKeyId: readId(f[6], 'kemPreKeyId'),
  };
  const kemCiphertext = readBytes(f[7], 'kemCiphertext', MLKEM768_CIPHERTEXT_BYTES);
  return { initiatorCertificate, use, kemCiphertext };
}

function preKeyFromFields(f: unknown[]): PreKeyMessage {
  readArray(f, 'PreKeyMessage', 9);
  const { initiatorCertificate, use, kemCiphertext } = preKeyHeadFromFields(f);
  const messageBytes = readBytes(f[8], 'message', { max: MAX_MESSAGE_BYTES });
  // The embedded message must be a RatchetMessage; its type is checked
  // before anything else is parsed, so PreKeyMessages cannot nest.
  const e = decodeCbor(messageBytes, 'RatchetMessage', MAX_MESSAGE_BYTES);
  if (!Array.isArray(e) || e.length < 2) fail('MALFORMED', 'RatchetMessage: expected an array with version and type');
  readVersion(e[0], 'RatchetMessage', [PROTOCOL_VERSION]);
  if (e[1] !== MessageType.ratchet) fail('MALFORMED', 'PreKeyMessage: embedded message must be a RatchetMessage');
  const inner = ratchetFromFields(e);
  return { type: 'prekey', initiatorCertificate, use, kemCiphertext, message: inner, messageBytes };
}

function ratchetV2FromFields(f: unknown[]): RatchetMessageV2 {
  readArray(f, 'RatchetMessageV2', 4);
  const header = readBytes(f[2], 'header', ENCRYPTED_HEADER_BYTES);
  const ciphertext = readBytes(f[3], 'ciphertext', { min: AEAD_TAG_BYTES, max: MAX_MESSAGE_BYTES });
  return { type: 'ratchet2', header, ciphertext };
}

function preKeyV2FromFields(f: unknown[]): PreKeyMessageV2 {
  readArray(f, 'PreKeyMessageV2', 10);
  const { initiatorCertificate, use, kemCiphertext } = preKeyHeadFromFields(f);
  const versions = readVersions(f[8], 'versions');
  const messageBytes = readBytes(f[9], 'message', { max: MAX_MESSAGE_BYTES });
  // The embedded message must be a RatchetMessageV2, checked before anything else is parsed.
  const e = decodeCbor(messageBytes, 'RatchetMessageV2', MAX_MESSAGE_BYTES);
  if (!Array.isArray(e) || e.length < 2) fail('MALFORMED', 'RatchetMessageV2: expected an array with version and type');
  readVersion(e[0], 'RatchetMessageV2', [RATCHET_VERSION_2]);
  if (e[1] !== MessageType.ratchet) fail('MALFORMED', 'PreKeyMessageV2: embedded message must be a RatchetMessageV2');
  return { type: 'prekey2', initiatorCertificate, use, kemCiphertext, versions, message: ratchetV2FromFields(e), messageBytes };
}
