/**
 * Which devices of an account the client will talk to. spec/10-client.md §5.
 *
 * The relay names an account's devices and hands out their certificates,
 * but it is not trusted to: a device is trusted only when its certificate
 * verifies under the account key and the newest signed device list we hold
 * for the account names that exact certificate. Without a signed list no
 * device is trusted: a certificate never expires, so on its own it cannot
 * tell a current device from a removed one (issue 11 finding 3). Anything
 * else the relay lists is a ghost: refused, reported, never encrypted to.
 *
 * This module is pure: certificates and lists in, a verdict out.
 */
import {
  type CryptoProvider,
  type DeviceCertificate,
  bytesEqual,
  decodeCertificate,
  defaultProvider,
  verifyCertificate,
} from '@parley/core';
import { type DeviceList, listsCertificate } from './device-list.ts';

export type RefusalReason =
  /** Not a well-formed certificate. */
  | 'malformed'
  /** The account key did not sign it, or it names another account. */
  | 'bad-certificate'
  /** Listed under another device id than the one the relay gave. */
  | 'wrong-device-id'
  /** Two certificates for one device id. */
  | 'duplicate'
  /** A valid certificate the account's signed device list does not name (removed, or never added by the account). */
  | 'not-in-device-list'
  /** We hold no signed device list for the account (the relay serves none): nothing of it can be trusted yet. */
  | 'no-device-list';

export interface RefusedDevice {
  readonly deviceId: number;
  readonly reason: RefusalReason;
}

export interface DeviceVerdict {
  /** Ascending device id. */
  readonly trusted: readonly DeviceCertificate[];
  readonly refused: readonly RefusedDevice[];
}

export interface RelayDeviceEntry {
  readonly deviceId: number;
  readonly certificate: Uint8Array;
}

/** Sorts the relay's device entries for `accountKey` into trusted and refused. */
export function judgeDevices(
  accountKey: Uint8Array,
  entries: readonly RelayDeviceEntry[],
  list: DeviceList | null,
  provider: CryptoProvider = defaultProvider(),
): DeviceVerdict {
  const trusted = new Map<number, DeviceCertificate>();
  const refused: RefusedDevice[] = [];
  const seen = new Set<number>();
  for (const entry of entries) {
    if (seen.has(entry.deviceId)) {
      refused.push({ deviceId: entry.deviceId, reason: 'duplicate' });
      trusted.delete(entry.deviceId);
      continue;
    }
    seen.add(entry.deviceId);
    let certificate: DeviceCertificate;
    try {
      certificate = decodeCertificate(entry.certificate);
    } catch {
      refused.push({ deviceId: entry.deviceId, reason: 'malformed' });
      continue;
    }
    try {
      verifyCertificate(provider.backend, certificate, accountKey);
    } catch {
      refused.push({ deviceId: entry.deviceId, reason: 'bad-certificate' });
      continue;
    }
    if (certificate.deviceId !== entry.deviceId) {
      refused.push({ deviceId: entry.deviceId, reason: 'wrong-device-id' });
      continue;
    }
    if (!list) {
      refused.push({ deviceId: entry.deviceId, reason: 'no-device-list' });
      continue;
    }
    if (!listsCertificate(list, certificate, provider)) {
      refused.push({ deviceId: entry.deviceId, reason: 'not-in-device-list' });
      continue;
    }
    trusted.set(entry.deviceId, certificate);
  }
  return {
    trusted: [...trusted.values()].sort((a, b) => a.deviceId - b.deviceId),
    refused: refused.sort((a, b) => a.deviceId - b.deviceId),
  };
}

/**
 * Whether a certificate that arrived inside a message (a PreKeyMessage's
 * sender) may be trusted: it must verify under the account and be named by
 * the account's newest signed list we hold (a first message carries its
 * sender's list, accepted before this check).
 */
export function trustsCertificate(
  accountKey: Uint8Array,
  certificate: DeviceCertificate,
  list: DeviceList | null,
  provider: CryptoProvider = defaultProvider(),
): boolean {
  if (!bytesEqual(certificate.accountKey, accountKey)) return false;
  try {
    verifyCertificate(provider.backend, certificate, accountKey);
  } catch {
    return false;
  }
  return list !== null && listsCertificate(list, certificate, provider);
}
