/**
 * Sealing a message to one recipient device, and opening it.
 * spec/12-sealed-sender.md §4 (mode 1: contact token, HPKE auth mode).
 *
 * The seal hides who sent the message from the relay: the sender device id
 * and the message travel inside HPKE, and HPKE's auth mode proves to the
 * recipient that the holder of one of its contact's device identity keys
 * made it. The recipient learns the contact from the token the relay
 * delivered with the envelope; it tries that contact's trusted devices (at
 * most MAX_SEAL_CANDIDATES) and keeps the one whose 8-byte check value
 * matches. The caller then decrypts the inner message on that device's
 * session and calls `assertSealSender`: the session's peer identity key must
 * be the key that authenticated the seal (SEAL_SENDER_MISMATCH otherwise).
 *
 * Opening is pure: nothing is stored, so a failed open leaves every record
 * as it was.
 */
import { abytes, constantTimeEqual, utf8 } from '../bytes.ts';
import { encodeCbor } from '../codec/cbor.ts';
import { fail, isParleyError } from '../errors.ts';
import { type HpkeReceiverContext, hpkeAuthReceiverForCandidates, hpkeSetupSender } from '../crypto/hpke.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { FRANKING_TAG_BYTES, MAX_SEAL_CANDIDATES, SEAL_CHECK_BYTES, SealLabel, SealMode, TOKEN_HASH_BYTES } from './constants.ts';
import { decodeSeal, decodeSealedInner, encodeSeal, encodeSealedInner } from './format.ts';

const CHECK_CONTEXT = utf8(SealLabel.sealCheck);

/** HPKE info: binds the seal to the recipient device's certificate. */
export function sealInfo(recipientCertificateHash: Uint8Array): Uint8Array {
  abytes(recipientCertificateHash, 'recipientCertificateHash', 32);
  return encodeCbor([SealLabel.seal, recipientCertificateHash]);
}

/**
 * HPKE aad: binds the seal to the token it is delivered under (a relay that
 * moves a seal to another token makes it fail) and to the franking tag the
 * relay sees in clear. The tag is null while the inner message has none
 * (v1 messages; v2 before franking lands).
 */
export function sealAad(tokenHash: Uint8Array, frankingTag: Uint8Array | null): Uint8Array {
  abytes(tokenHash, 'tokenHash', TOKEN_HASH_BYTES);
  if (frankingTag !== null) abytes(frankingTag, 'frankingTag', FRANKING_TAG_BYTES);
  return encodeCbor([tokenHash, frankingTag]);
}

export interface SealContactParams {
  /** The recipient device's X25519 identity key (from its certificate). */
  readonly recipientIdentityKey: Uint8Array;
  /** SHA-256 of the recipient device's certificate (certificateHash). */
  readonly recipientCertificateHash: Uint8Array;
  /** The sender device's X25519 identity private key (auth mode). */
  readonly senderIdentityPrivateKey: Uint8Array;
  readonly senderDeviceId: number;
  /** Hash of the delivery token the send presents (deliveryTokenHash). */
  readonly tokenHash: Uint8Array;
  readonly frankingTag: Uint8Array | null;
  /** The message to wrap, unchanged (any version). */
  readonly message: Uint8Array;
}

/** Seals `message` for one recipient device (mode 1). Returns the Seal bytes. */
export function sealToContact(p: SealContactParams, provider?: CryptoProvider): Uint8Array {
  const prov = resolveProvider(provider);
  const { enc, context } = hpkeSetupSender(
    {
      recipientPublicKey: p.recipientIdentityKey,
      info: sealInfo(p.recipientCertificateHash),
      senderPrivateKey: p.senderIdentityPrivateKey,
    },
    prov,
  );
  const check = context.export(CHECK_CONTEXT, SEAL_CHECK_BYTES);
  const inner = encodeSealedInner({ senderDeviceId: p.senderDeviceId, message: p.message });
  const ciphertext = context.seal(sealAad(p.tokenHash, p.frankingTag), inner);
  return encodeSeal({ mode: SealMode.contact, enc, check, ciphertext });
}

/** A device of the contact that the token names, as the recipient trusts it. */
export interface SealCandidate {
  readonly deviceId: number;
  /** Its X25519 identity key, from the certificate the recipient holds for it. */
  readonly identityKey: Uint8Array;
}

export interface OpenContactSealParams {
  readonly seal: Uint8Array;
  readonly recipientIdentityPrivateKey: Uint8Array;
  readonly recipientCertificateHash: Uint8Array;
  /** Hash of the token the envelope was delivered under (from the relay). */
  readonly tokenHash: Uint8Array;
  readonly frankingTag: Uint8Array | null;
  /** The contact's trusted devices; only the first MAX_SEAL_CANDIDATES are tried. */
  readonly candidates: readonly SealCandidate[];
}

export interface OpenedSeal {
  readonly senderDeviceId: number;
  /** The identity key that authenticated the seal: the inner session's peer must hold it. */
  readonly senderIdentityKey: Uint8Array;
  readonly message: Uint8Array;
}

/**
 * Opens a mode-1 seal. Errors: MALFORMED / UNSUPPORTED_VERSION / OVERSIZED
 * (decoding), BAD_PUBLIC_KEY (enc), SEAL_FAILED (mode, no check match, AEAD,
 * or a device id other than the candidate's). Pure: nothing to roll back.
 */
export function openContactSeal(p: OpenContactSealParams, provider?: CryptoProvider): OpenedSeal {
  const prov = resolveProvider(provider);
  const seal = decodeSeal(p.seal);
  if (seal.mode !== SealMode.contact || seal.check === null)
    fail('SEAL_FAILED', 'seal mode does not match a contact token', { reason: 'mode' });
  const info = sealInfo(p.recipientCertificateHash);
  const aad = sealAad(p.tokenHash, p.frankingTag);
  const candidates = p.candidates.slice(0, MAX_SEAL_CANDIDATES);
  // DH(skR, enc) once for all candidates; a bad enc is the seal's fault (BAD_PUBLIC_KEY) and ends here.
  const forCandidate = hpkeAuthReceiverForCandidates({ enc: seal.enc, recipientPrivateKey: p.recipientIdentityPrivateKey, info }, prov);
  for (const candidate of candidates) {
    let context: HpkeReceiverContext;
    try {
      context = forCandidate(candidate.identityKey);
    } catch (e) {
      // This candidate's key cannot have made the seal (malformed, small order, zero DH): try the next.
      if (isParleyError(e)) continue;
      throw e;
    }
    const check = context.export(CHECK_CONTEXT, SEAL_CHECK_BYTES);
    if (!constantTimeEqual(check, seal.check)) continue;
    let plaintext: Uint8Array;
    try {
      plaintext = context.open(aad, seal.ciphertext);
    } catch (e) {
      if (isParleyError(e, 'DECRYPT_FAILED')) fail('SEAL_FAILED', 'seal does not open', { reason: 'aead' });
      throw e;
    }
    let inner: ReturnType<typeof decodeSealedInner>;
    try {
      inner = decodeSealedInner(plaintext);
    } catch (e) {
      // Authenticated but ill-formed: only the sender could have made it; still a typed refusal.
      if (isParleyError(e)) fail('SEAL_FAILED', 'sealed inner structure is malformed', { reason: 'inner' });
      throw e;
    }
    if (inner.senderDeviceId !== candidate.deviceId) {
      fail('SEAL_FAILED', 'sealed sender device id is not the device that authenticated', { reason: 'device-id' });
    }
    return { senderDeviceId: inner.senderDeviceId, senderIdentityKey: candidate.identityKey, message: inner.message };
  }
  return fail('SEAL_FAILED', 'no candidate sender opens the seal', { reason: 'no-candidate', candidates: candidates.length });
}

/**
 * After the inner message decrypted on a session: that session's peer
 * identity key must be the key that authenticated the seal.
 */
export function assertSealSender(opened: OpenedSeal, sessionPeerIdentityKey: Uint8Array): void {
  if (!constantTimeEqual(opened.senderIdentityKey, sessionPeerIdentityKey)) {
    fail('SEAL_SENDER_MISMATCH', 'the sealed sender is not the peer of the session that decrypted the message');
  }
}
