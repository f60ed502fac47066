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
 * Version 2 (spec/03-handshake.md §7, spec/design/formats-v2.md §3.2): the
 * same key agreement with `Info.pqxdh2`, and both devices' signed version
 * sets bound into the associated data:
 *   AD2 = SHA-256(CBOR([Label.associatedData2, cert_A, cert_B, versions_A, versions_B]))
 * The initiator chooses max(versions_A ∩ versions_B); the responder takes
 * versions_B from its own store (the signed prekey the message names), never
 * from the message, so a rewritten list fails the first message's AEAD.
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
  type AnyPreKeyBundle,
  type PreKeyStore,
  type PreKeyUse,
  decodeAnyBundle,
  encodeBundle,
  isBundleV2,
  lookupPreKeys,
  verifyBundle,
} from '../keys/prekeys.ts';
import { SUPPORTED_VERSIONS, checkNotDowngraded, checkVersionList, chooseVersion, highestCommonVersion } from '../keys/versions.ts';
import { Info, Label } from '../labels.ts';

/** The two signed version sets a version-2 session binds (initiator's first). */
export interface SessionVersions {
  readonly initiator: readonly number[];
  readonly responder: readonly number[];
}

const SALT = new Uint8Array(32);
const F = new Uint8Array(32).fill(0xff);

/** Associated data binding both devices' certificates (and so both accounts and identity keys). */
export function associatedData(p: CryptoProvider, initiator: DeviceCertificate, responder: DeviceCertificate): Uint8Array {
  return p.backend.sha256(encodeCbor([Label.associatedData, certificateToCbor(initiator), certificateToCbor(responder)]));
}

/** AD2: both certificates and both version sets (spec/design/formats-v2.md §3.2). */
export function associatedData2(
  p: CryptoProvider,
  initiator: DeviceCertificate,
  responder: DeviceCertificate,
  versions: SessionVersions,
): Uint8Array {
  return p.backend.sha256(
    encodeCbor([
      Label.associatedData2,
      certificateToCbor(initiator),
      certificateToCbor(responder),
      [...versions.initiator],
      [...versions.responder],
    ]),
  );
}

function deriveSecret(p: CryptoProvider, version: number, dhs: Uint8Array[], kemSecret: Uint8Array): Uint8Array {
  const ikm = concatBytes(F, ...dhs, kemSecret);
  const secret = p.backend.hkdfSha256(ikm, SALT, version === 2 ? Info.pqxdh2 : Info.pqxdh, 32);
  // Best effort: the DH outputs and the KEM secret are not needed again.
  wipe(ikm, kemSecret, ...dhs);
  return secret;
}

export interface InitiatorHandshake {
  /** The bundle as validated (a fresh copy, decoded from its encoding). */
  readonly bundle: AnyPreKeyBundle;
  /** The session's version: 1, or max(versions_A ∩ versions_B) for a v2 bundle. */
  readonly version: number;
  /** Both signed version sets (version 2 only; null for a version-1 session). */
  readonly versions: SessionVersions | null;
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  /** EK_A: the base key, sent in the clear; it also names the session. */
  readonly baseKey: DhKeyPair;
  readonly kemCiphertext: Uint8Array;
  readonly use: PreKeyUse;
}

export interface InitiateHandshakeOptions {
  readonly expectedAccountKey?: Uint8Array;
  /**
   * The caller's version pin for this peer device (spec/design/formats-v2.md
   * §3.5): a session below it is DOWNGRADE_REFUSED. Absent: no pin.
   */
  readonly minVersion?: number;
  /** The versions this device offers (default SUPPORTED_VERSIONS; a subset, for tests of older peers). */
  readonly localVersions?: readonly number[];
}

/** The versions a caller offers: a well-formed subset of what this implementation speaks. */
export function localVersionsOf(given: readonly number[] | undefined): readonly number[] {
  if (given === undefined) return SUPPORTED_VERSIONS;
  const list = checkVersionList(given, 'localVersions');
  if (!list.every((v) => SUPPORTED_VERSIONS.includes(v))) throw new RangeError('"localVersions" names a version this implementation lacks');
  return list;
}

/**
 * The initiator's side: verifies the bundle (certificate and every prekey
 * signature), chooses the version, refuses a downgrade below the pin, then
 * derives the shared secret with that version's info and associated data.
 */
export function initiate(
  p: CryptoProvider,
  device: DeviceIdentity,
  given: AnyPreKeyBundle,
  options: InitiateHandshakeOptions = {},
): InitiatorHandshake {
  // A bundle may be handed in as an object rather than decoded from bytes:
  // re-decode it so every length and key is checked exactly as on the wire.
  const bundle = decodeAnyBundle(encodeBundle(given));
  verifyBundle(bundle, { provider: p, expectedAccountKey: options.expectedAccountKey });
  const local = localVersionsOf(options.localVersions);
  // A v1 bundle says nothing of versions: its device (or the relay serving
  // it) offers version 1 only.
  const remote = isBundleV2(bundle) ? bundle.signedPreKey.versions : [1];
  const version = chooseVersion(local, remote);
  checkNotDowngraded(version, options.minVersion, local, bundle.certificate.deviceId);
  const versions = version >= 2 ? { initiator: local, responder: remote } : null;
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
    version,
    versions,
    sharedSecret: deriveSecret(p, version, dhs, kem.sharedSecret),
    associatedData: versions
      ? associatedData2(p, device.certificate, bundle.certificate, versions)
      : associatedData(p, device.certificate, bundle.certificate),
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
  readonly version: number;
  readonly versions: SessionVersions | null;
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
 *
 * `initiatorVersions` is versions_A of a PreKeyMessageV2 (absent for a v1
 * PreKeyMessage). A v1 message from a device pinned at 2 is
 * DOWNGRADE_REFUSED; a v2 message whose lists do not choose version 2 is
 * DECRYPT_FAILED, as a rewritten list would be at the AEAD.
 */
export function respond(
  p: CryptoProvider,
  device: DeviceIdentity,
  prekeys: PreKeyStore,
  initiatorCertificate: DeviceCertificate,
  use: PreKeyUse,
  kemCiphertext: Uint8Array,
  options: {
    expectedAccountKey?: Uint8Array;
    minVersion?: number;
    localVersions?: readonly number[];
    initiatorVersions?: readonly number[] | null;
  } = {},
): ResponderHandshake {
  verifyCertificate(p.backend, initiatorCertificate, options.expectedAccountKey);
  if (kemCiphertext.length !== MLKEM768_CIPHERTEXT_BYTES) fail('MALFORMED', 'kemCiphertext: wrong length');
  const initiatorVersions = options.initiatorVersions ?? null;
  const version = initiatorVersions ? 2 : 1;
  checkNotDowngraded(version, options.minVersion, localVersionsOf(options.localVersions), initiatorCertificate.deviceId);
  const keys = lookupPreKeys(prekeys, use);
  // versions_B from our own store: what we signed for this prekey.
  const versions = initiatorVersions
    ? { initiator: checkVersionList(initiatorVersions, 'versions'), responder: keys.signedVersions }
    : null;
  if (versions && highestCommonVersion(versions.initiator, versions.responder) !== version) {
    fail('DECRYPT_FAILED', 'the version sets of a version-2 PreKeyMessage do not choose version 2');
  }
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
    version,
    versions,
    sharedSecret: deriveSecret(p, version, dhs, kemSecret),
    associatedData: versions
      ? associatedData2(p, initiatorCertificate, device.certificate, versions)
      : associatedData(p, initiatorCertificate, device.certificate),
    signedPreKey: keys.signed,
  };
}
