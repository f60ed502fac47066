/**
 * Device certificates: an account key's signature binding a device id to the
 * device's Ed25519 signing key and X25519 identity (DH) key.
 * spec/02-keys.md §3.
 *
 * This module knows nothing of prekeys or sessions.
 */
import { bytesEqual } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readBytes, readUint, readVersionedArray } from '../codec/fields.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { Label, PROTOCOL_VERSION } from '../labels.ts';
import { MAX_BUNDLE_BYTES, MAX_DEVICE_ID } from '../limits.ts';

export interface DeviceCertificate {
  readonly version: number;
  /** The account's Ed25519 identity key: who this device belongs to. */
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  /** The device's Ed25519 key: signs prekeys and group messages. */
  readonly signingKey: Uint8Array;
  /** The device's X25519 identity key: used in the PQXDH handshake. */
  readonly identityKey: Uint8Array;
  readonly signature: Uint8Array;
}

/** The bytes the account key signs. */
export function certificateSignedBytes(c: Omit<DeviceCertificate, 'signature'>): Uint8Array {
  return encodeCbor([Label.deviceCertificate, c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey]);
}

/** CBOR array form (used inside bundles and prekey messages). */
export function certificateToCbor(c: DeviceCertificate): (number | Uint8Array)[] {
  return [c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey, c.signature];
}

export function encodeCertificate(c: DeviceCertificate): Uint8Array {
  return encodeCbor(certificateToCbor(c));
}

/** Parses the array form; checks shapes and key validity, not the signature. */
export function certificateFromCbor(v: unknown): DeviceCertificate {
  const f = readVersionedArray(v, 'DeviceCertificate', [PROTOCOL_VERSION], 6);
  const version = f[0] as number;
  const accountKey = readBytes(f[1], 'accountKey', 32);
  const deviceId = readUint(f[2], 'deviceId', MAX_DEVICE_ID);
  if (deviceId === 0) fail('MALFORMED', 'deviceId: must be at least 1', { field: 'deviceId' });
  const signingKey = readBytes(f[3], 'signingKey', 32);
  const identityKey = checkX25519PublicKey(readBytes(f[4], 'identityKey', 32), 'identityKey');
  const signature = readBytes(f[5], 'signature', 64);
  return { version, accountKey, deviceId, signingKey, identityKey, signature };
}

export function decodeCertificate(bytes: Uint8Array): DeviceCertificate {
  return certificateFromCbor(decodeCbor(bytes, 'DeviceCertificate', MAX_BUNDLE_BYTES));
}

/**
 * Verifies the account signature. When `expectedAccountKey` is given, the
 * certificate must also name that account. Throws BAD_CERTIFICATE.
 */
export function verifyCertificate(backend: CryptoBackend, c: DeviceCertificate, expectedAccountKey?: Uint8Array): DeviceCertificate {
  if (expectedAccountKey && !bytesEqual(expectedAccountKey, c.accountKey)) {
    fail('BAD_CERTIFICATE', 'certificate names another account', { deviceId: c.deviceId });
  }
  if (!backend.ed25519Verify(c.accountKey, certificateSignedBytes(c), c.signature)) {
    fail('BAD_CERTIFICATE', 'device certificate signature does not verify', { deviceId: c.deviceId });
  }
  return c;
}

export function certificatesEqual(a: DeviceCertificate, b: DeviceCertificate): boolean {
  return bytesEqual(encodeCertificate(a), encodeCertificate(b));
}
