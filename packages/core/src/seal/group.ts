/**
 * Sealed group sends, store once and wrap per device (spec/12-sealed-sender.md
 * §10, design formats-v2 §8.3):
 *
 *   K            = 32 random bytes per send
 *   payload      = ChaCha20-Poly1305(K, nonce = 0^12, groupMessage, aad = "Parley v2 group payload")
 *   GroupKeyWrap = [ version: 2, type: 6, key: bstr .size 32, payloadDigest: bstr .size 32 ]
 *   payloadDigest = SHA-256(payload)
 *
 * Each recipient device gets the wrap inside its own seal (mode 1: the
 * sender's device is authenticated per recipient); the payload is sent and
 * stored once. K is used for one encryption only, so the zero nonce is safe.
 * The digest binds every wrap to the one payload, so a relay cannot hand
 * different members different payloads, and makes the payload
 * key-committing for each of them.
 */
import { abytes, constantTimeEqual, utf8 } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readVersion } from '../codec/fields.ts';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES } from '../crypto/backend.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { MAX_MESSAGE_BYTES } from '../limits.ts';
import { MAX_SEAL_BYTES, SEAL_VERSION } from './constants.ts';

/** MessageType of a GroupKeyWrap (only ever inside a seal). */
export const GROUP_KEY_WRAP_TYPE = 6;
/** AEAD associated data of a sealed group payload. */
export const GROUP_PAYLOAD_LABEL = 'Parley v2 group payload';
/** A GroupKeyWrap's encoded size: 1 + 1 + 1 + 34 + 34. */
export const GROUP_KEY_WRAP_BYTES = 71;

const ZERO_NONCE = new Uint8Array(AEAD_NONCE_BYTES);
const PAYLOAD_AAD = utf8(GROUP_PAYLOAD_LABEL);

export interface GroupKeyWrap {
  readonly key: Uint8Array;
  readonly payloadDigest: Uint8Array;
}

export function encodeGroupKeyWrap(w: GroupKeyWrap): Uint8Array {
  abytes(w.key, 'key', AEAD_KEY_BYTES);
  abytes(w.payloadDigest, 'payloadDigest', 32);
  return encodeCbor([SEAL_VERSION, GROUP_KEY_WRAP_TYPE, w.key, w.payloadDigest]);
}

/** True when a sealed message is a GroupKeyWrap (array of 4, version 2, type 6): the router's test. */
export function isGroupKeyWrap(message: Uint8Array): boolean {
  return (
    message.length === GROUP_KEY_WRAP_BYTES && message[0] === 0x84 && message[1] === SEAL_VERSION && message[2] === GROUP_KEY_WRAP_TYPE
  );
}

export function decodeGroupKeyWrap(bytes: Uint8Array): GroupKeyWrap {
  const v = decodeCbor(bytes, 'GroupKeyWrap', GROUP_KEY_WRAP_BYTES);
  if (!Array.isArray(v) || v.length < 1) fail('MALFORMED', 'GroupKeyWrap: expected an array');
  readVersion(v[0], 'GroupKeyWrap', [SEAL_VERSION]);
  const f = readArray(v, 'GroupKeyWrap', 4);
  if (f[1] !== GROUP_KEY_WRAP_TYPE) fail('MALFORMED', 'GroupKeyWrap: type is not 6');
  return { key: readBytes(f[2], 'key', AEAD_KEY_BYTES), payloadDigest: readBytes(f[3], 'payloadDigest', 32) };
}

/** Encrypts a group message once under a fresh key; returns the payload and the wrap every device gets. */
export function sealGroupPayload(message: Uint8Array, provider?: CryptoProvider): { payload: Uint8Array; wrap: Uint8Array } {
  abytes(message, 'message');
  if (message.length > MAX_MESSAGE_BYTES) throw new RangeError(`"message" over ${MAX_MESSAGE_BYTES} bytes`);
  const { backend, random } = resolveProvider(provider);
  const key = random(AEAD_KEY_BYTES);
  const payload = backend.aeadSeal(key, ZERO_NONCE, message, PAYLOAD_AAD);
  return { payload, wrap: encodeGroupKeyWrap({ key, payloadDigest: backend.sha256(payload) }) };
}

/**
 * Opens the payload with the key a seal delivered. The payload must be the
 * one the wrap names (SEAL_FAILED, reason payload-digest) and must open
 * (SEAL_FAILED, reason payload-aead). Pure.
 */
export function openGroupPayload(wrapBytes: Uint8Array, payload: Uint8Array, provider?: CryptoProvider): Uint8Array {
  const { backend } = resolveProvider(provider);
  const wrap = decodeGroupKeyWrap(wrapBytes);
  abytes(payload, 'payload');
  if (payload.length < AEAD_TAG_BYTES || payload.length > MAX_MESSAGE_BYTES + AEAD_TAG_BYTES) {
    fail('SEAL_FAILED', 'group payload of an impossible size', { reason: 'payload-size' });
  }
  if (!constantTimeEqual(backend.sha256(payload), wrap.payloadDigest)) {
    fail('SEAL_FAILED', 'the group payload is not the one the wrap names', { reason: 'payload-digest' });
  }
  const message = backend.aeadOpen(wrap.key, ZERO_NONCE, payload, PAYLOAD_AAD);
  if (message === null) fail('SEAL_FAILED', 'the group payload does not open', { reason: 'payload-aead' });
  return message;
}

/** MessageType of a SealedGroupEnvelope: what the relay delivers for one device of a sealed group send. */
export const SEALED_GROUP_ENVELOPE_TYPE = 7;

/**
 * What one recipient device receives from a sealed group send (spec/12 §10):
 *
 *   SealedGroupEnvelope = [ version: 2, type: 7, seal: bstr, payload: bstr ]
 *
 * The relay stores the payload once and the seal (a mode-1 Seal whose inner
 * message is a GroupKeyWrap) per mailbox row, and joins them at delivery;
 * the recipient opens the seal, then the payload. The relay learns nothing
 * from the framing it adds.
 */
export interface SealedGroupEnvelope {
  readonly seal: Uint8Array;
  readonly payload: Uint8Array;
}

/** Largest encoded SealedGroupEnvelope: a largest seal and payload plus a few bytes of framing. */
export const MAX_SEALED_GROUP_ENVELOPE_BYTES = MAX_SEAL_BYTES + MAX_MESSAGE_BYTES + AEAD_TAG_BYTES + 16;

export function encodeSealedGroupEnvelope(e: SealedGroupEnvelope): Uint8Array {
  abytes(e.seal, 'seal');
  abytes(e.payload, 'payload');
  return encodeCbor([SEAL_VERSION, SEALED_GROUP_ENVELOPE_TYPE, e.seal, e.payload]);
}

/** True when `bytes` starts like a SealedGroupEnvelope (array of 4, version 2, type 7): a router test. */
export function looksLikeSealedGroupEnvelope(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0x84 && bytes[1] === SEAL_VERSION && bytes[2] === SEALED_GROUP_ENVELOPE_TYPE;
}

export function decodeSealedGroupEnvelope(bytes: Uint8Array): SealedGroupEnvelope {
  const v = decodeCbor(bytes, 'SealedGroupEnvelope', MAX_SEALED_GROUP_ENVELOPE_BYTES);
  if (!Array.isArray(v) || v.length < 1) fail('MALFORMED', 'SealedGroupEnvelope: expected an array');
  readVersion(v[0], 'SealedGroupEnvelope', [SEAL_VERSION]);
  const f = readArray(v, 'SealedGroupEnvelope', 4);
  if (f[1] !== SEALED_GROUP_ENVELOPE_TYPE) fail('MALFORMED', 'SealedGroupEnvelope: type is not 7');
  return {
    seal: readBytes(f[2], 'seal', { min: 1, max: MAX_SEAL_BYTES }),
    payload: readBytes(f[3], 'payload', { min: AEAD_TAG_BYTES, max: MAX_MESSAGE_BYTES + AEAD_TAG_BYTES }),
  };
}
