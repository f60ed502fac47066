/**
 * The PQXDH key agreement (after Signal's PQXDH specification), with a
 * device's X25519 identity key in the role of IK. spec/03-handshake.md §2-§4.
 *
 *   DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)   DH3 = DH(EK_A, SPK_B)
 *   DH4 = DH(EK_A, OPK_B)   (only when a one-time prekey was used)
 *   (CT, SS) = ML-KEM-768.Encaps(PQPK_B)
 *   SK = HKDF-SHA256(salt = 0^32, ikm = 0xFF^32 || DH1 || DH2 || DH3 [|| DH4] || SS,
 *                    info = Info.pqxdh, 32)
 *   AD = SHA-256(CBOR([Label.associatedData, cert_A, cert_B]))
 *
 * This module knows nothing of the ratchet or of wire messages: it returns
 * the shared secret, the associated data and what the responder needs.
 */
import { concatBytes, wipe } from '../bytes.ts';
import { encodeCbor } from '../codec/cbor.ts';
import { MLKEM768_CIPHERTEXT_BYTES } from '../crypto/backend.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { type DhKeyPair, dh, generateDhKeyPair } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { type DeviceCertificate, certificateToCbor, verifyCertificate } from '../keys/certificate.ts';
import type { DeviceIdentity } from '../keys/identity.ts';
import {
  type PreKeyBundle,
  type PreKeyStore,
  type PreKeyUse,
  decodeBundle,
  encodeBundle,
  lookupPreKeys,
  verifyBundle,
} from '../keys/prekeys.ts';
import { Info, Label } from '../labels.ts';

const SALT = new Uint8Array(32);
const F = new Uint8Array(32).fill(0xff);

/** Associated data binding both devices' certificates (and so both accounts and identity keys). */
export function associatedData(p: CryptoProvider, initiator: DeviceCertificate, responder: DeviceCertificate): Uint8Array {
  return p.backend.sha256(encodeCbor([Label.associatedData, certificateToCbor(initiator), certificateToCbor(responder)]));
}

function deriveSecret(p: CryptoProvider, dhs: Uint8Array[], kemSecret: Uint8Array): Uint8Array {
  const ikm = concatBytes(F, ...dhs, kemSecret);
  const secret = p.backend.hkdfSha256(ikm, SALT, Info.pqxdh, 32);
  // Best effort: the DH outputs and the KEM secret are not needed again.
  wipe(ikm, kemSecret, ...dhs);
  return secret;
}

export interface InitiatorHandshake {
  /** The bundle as validated (a fresh copy, decoded from its encoding). */
  readonly bundle: PreKeyBundle;
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  /** EK_A: the base key, sent in the clear; it also names the session. */
  readonly baseKey: DhKeyPair;
  readonly kemCiphertext: Uint8Array;
  readonly use: PreKeyUse;
}

/**
 * The initiator's side: verifies the bundle (certificate and every prekey
 * signature), then derives the shared secret.
 */
export function initiate(
  p: CryptoProvider,
  device: DeviceIdentity,
  given: PreKeyBundle,
  options: { expectedAccountKey?: Uint8Array } = {},
): InitiatorHandshake {
  // A bundle may be handed in as an object rather than decoded from bytes:
  // re-decode it so every length and key is checked exactly as on the wire.
  const bundle = decodeBundle(encodeBundle(given));
  verifyBundle(bundle, { provider: p, ...options });
  const b = p.backend;
  const ik = device.identityKeyPair;
  const ek = generateDhKeyPair(p);
  const dhs = [
    dh(b, ik.privateKey, bundle.signedPreKey.publicKey),
    dh(b, ek.privateKey, bundle.certificate.identityKey),
    dh(b, ek.privateKey, bundle.signedPreKey.publicKey),
  ];
  if (bundle.oneTimePreKey) dhs.push(dh(b, ek.privateKey, bundle.oneTimePreKey.publicKey));
  // EK_A's private half is used only in the DHs above.
  wipe(ek.privateKey);
  // m is the preimage of the KEM secret (K = G(m || H(ek))[0:32], FIPS 203):
  // reading it later would reveal SS, so it is wiped once used, also when
  // encapsulation refuses the key (noble wipes only an m it drew itself).
  const m = p.random(32);
  let kem: { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  try {
    kem = b.mlkemEncapsulate(bundle.kemPreKey.publicKey, m);
  } catch {
    wipe(...dhs);
    fail('BAD_PUBLIC_KEY', 'kemPreKey.publicKey: invalid ML-KEM-768 public key', { field: 'kemPreKey.publicKey' });
  } finally {
    wipe(m);
  }
  const baseKey = { publicKey: ek.publicKey, privateKey: new Uint8Array(0) };
  return {
    bundle,
    sharedSecret: deriveSecret(p, dhs, kem.sharedSecret),
    associatedData: associatedData(p, device.certificate, bundle.certificate),
    baseKey,
    kemCiphertext: kem.ciphertext,
    use: {
      signedPreKeyId: bundle.signedPreKey.id,
      oneTimePreKeyId: bundle.oneTimePreKey?.id ?? null,
      kemPreKeyId: bundle.kemPreKey.id,
      baseKey: ek.publicKey,
    },
  };
}

export interface ResponderHandshake {
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  /** The signed prekey pair: the responder's first ratchet key. */
  readonly signedPreKey: DhKeyPair;
}

/**
 * The responder's side: verifies the initiator's certificate, looks the
 * prekeys up by id (UNKNOWN_PREKEY / PREKEY_REUSED), decapsulates and
 * derives the same secret. Consumes nothing: the session layer deletes the
 * one-time keys only after the first message has decrypted.
 */
export function respond(
  p: CryptoProvider,
  device: DeviceIdentity,
  prekeys: PreKeyStore,
  initiatorCertificate: DeviceCertificate,
  use: PreKeyUse,
  kemCiphertext: Uint8Array,
  options: { expectedAccountKey?: Uint8Array } = {},
): ResponderHandshake {
  verifyCertificate(p.backend, initiatorCertificate, options.expectedAccountKey);
  if (kemCiphertext.length !== MLKEM768_CIPHERTEXT_BYTES) fail('MALFORMED', 'kemCiphertext: wrong length');
  const keys = lookupPreKeys(prekeys, use);
  const b = p.backend;
  const ik = device.identityKeyPair;
  const dhs = [
    dh(b, keys.signed.privateKey, initiatorCertificate.identityKey),
    dh(b, ik.privateKey, use.baseKey),
    dh(b, keys.signed.privateKey, use.baseKey),
  ];
  if (keys.oneTime) dhs.push(dh(b, keys.oneTime.privateKey, use.baseKey));
  const kemSecret = b.mlkemDecapsulate(kemCiphertext, keys.kemSecretKey);
  return {
    sharedSecret: deriveSecret(p, dhs, kemSecret),
    associatedData: associatedData(p, initiatorCertificate, device.certificate),
    signedPreKey: keys.signed,
  };
}
