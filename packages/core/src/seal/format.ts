/**
 * The Seal's wire format and its SealedInner, byte by byte.
 * spec/12-sealed-sender.md §4.1.
 *
 *   Seal = [ version: 2, type: 5, mode: 1 / 2, enc: bstr .size 32,
 *            check: bstr .size 8 / null, ciphertext: bstr ]
 *   SealedInner (mode 1) = [ senderDeviceId: uint, message: bstr ]
 *
 * Decoding is strict (canonical CBOR, exact field count and sizes) and runs
 * before any cryptography, so a hostile seal costs one bounded parse.
 */
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint, readVersion } from '../codec/fields.ts';
import { fail } from '../errors.ts';
import { AEAD_TAG_BYTES } from '../crypto/backend.ts';
import { HPKE_ENC_BYTES } from '../crypto/hpke.ts';
import { MAX_DEVICE_ID, MAX_MESSAGE_BYTES } from '../limits.ts';
import { MAX_SEAL_BYTES, SEAL_CHECK_BYTES, SEAL_MESSAGE_TYPE, SEAL_VERSION, SealMode } from './constants.ts';

export interface Seal {
  readonly mode: SealMode;
  /** HPKE encapsulated key: the sender's ephemeral X25519 public key. */
  readonly enc: Uint8Array;
  /** Mode 1: HPKE Export(context, "Parley v2 seal check", 8); mode 2: null. */
  readonly check: Uint8Array | null;
  /** HPKE ciphertext of a SealedInner, tag included. */
  readonly ciphertext: Uint8Array;
}

export function encodeSeal(seal: Seal): Uint8Array {
  return encodeCbor([SEAL_VERSION, SEAL_MESSAGE_TYPE, seal.mode, seal.enc, seal.check, seal.ciphertext]);
}

/** True when `bytes` starts like a Seal (array of 6, version 2, type 5): a cheap router test, not a validation. */
export function looksLikeSeal(bytes: Uint8Array): boolean {
  return bytes.length > 3 && bytes[0] === 0x86 && bytes[1] === SEAL_VERSION && bytes[2] === SEAL_MESSAGE_TYPE;
}

export function decodeSeal(bytes: Uint8Array): Seal {
  const v = decodeCbor(bytes, 'Seal', MAX_SEAL_BYTES);
  if (!Array.isArray(v) || v.length < 1) fail('MALFORMED', 'Seal: expected an array');
  // The version is read before the field count, so a future seal is UNSUPPORTED_VERSION, not MALFORMED.
  readVersion(v[0], 'Seal', [SEAL_VERSION]);
  const f = readArray(v, 'Seal', 6);
  if (f[1] !== SEAL_MESSAGE_TYPE) fail('MALFORMED', 'Seal: type is not 5');
  const mode = f[2];
  if (mode !== SealMode.contact && mode !== SealMode.member) fail('MALFORMED', 'Seal: unknown mode');
  const enc = readBytes(f[3], 'enc', HPKE_ENC_BYTES);
  let check: Uint8Array | null = null;
  if (mode === SealMode.contact) check = readBytes(f[4], 'check', SEAL_CHECK_BYTES);
  else if (f[4] !== null) fail('MALFORMED', 'Seal: a mode-2 seal carries no check value');
  const ciphertext = readBytes(f[5], 'ciphertext', { min: AEAD_TAG_BYTES, max: MAX_SEAL_BYTES });
  return { mode, enc, check, ciphertext };
}

export interface SealedInner {
  readonly senderDeviceId: number;
  /** The wrapped message, unchanged: a v1 PreKey/Ratchet message today, a v2 message later. */
  readonly message: Uint8Array;
}

export function encodeSealedInner(inner: SealedInner): Uint8Array {
  return encodeCbor([inner.senderDeviceId, inner.message]);
}

export function decodeSealedInner(bytes: Uint8Array): SealedInner {
  const f = readArray(decodeCbor(bytes, 'SealedInner', MAX_SEAL_BYTES), 'SealedInner', 2);
  const senderDeviceId = readUint(f[0], 'senderDeviceId', MAX_DEVICE_ID);
  if (senderDeviceId === 0) fail('MALFORMED', 'SealedInner: device id 0 is not a device');
  return { senderDeviceId, message: readBytes(f[1], 'message', { min: 1, max: MAX_MESSAGE_BYTES }) };
}
