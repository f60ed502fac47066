/**
 * A group member device: an account key and one of its device ids.
 * spec/08-groups.md §2.
 *
 *   Member = [accountKey: bstr .size 32, deviceId: uint (1..2^31-1)]
 *
 * Groups are made of devices, not people: a person with three devices is
 * three members, and adding or removing one device is an ordinary membership
 * change. This module knows nothing of chains or keys.
 */
import { abytes, bytesEqual, toHex } from '../bytes.ts';
import type { CborValue } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import { fail } from '../errors.ts';
import type { DeviceCertificate } from '../keys/certificate.ts';
import { MAX_DEVICE_ID } from '../limits.ts';

export interface GroupMember {
  /** The account's Ed25519 public key. */
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

/** A map key naming a member device (public values only: account key hex and device id). */
export function memberKey(m: GroupMember): string {
  return `${toHex(m.accountKey)}.${m.deviceId}`;
}

export function sameMember(a: GroupMember, b: GroupMember): boolean {
  return a.deviceId === b.deviceId && bytesEqual(a.accountKey, b.accountKey);
}

/** The member a device certificate describes. */
export function memberOf(certificate: DeviceCertificate): GroupMember {
  return { accountKey: certificate.accountKey, deviceId: certificate.deviceId };
}

/** A copy the caller may keep (state never hands out its own byte arrays). */
export function copyMember(m: GroupMember): GroupMember {
  return { accountKey: new Uint8Array(m.accountKey), deviceId: m.deviceId };
}

/** Checks a member passed in by the caller (misuse is a TypeError/RangeError) and copies it. */
export function checkMember(m: GroupMember, name = 'member'): GroupMember {
  if (typeof m !== 'object' || m === null) throw new TypeError(`"${name}" expected { accountKey, deviceId }`);
  abytes(m.accountKey, `${name}.accountKey`, 32);
  if (!Number.isInteger(m.deviceId) || m.deviceId < 1 || m.deviceId > MAX_DEVICE_ID) {
    throw new RangeError(`"${name}.deviceId" expected an integer in 1..${MAX_DEVICE_ID}`);
  }
  return { accountKey: new Uint8Array(m.accountKey), deviceId: m.deviceId };
}

export function memberToCbor(m: GroupMember): CborValue {
  return [m.accountKey, m.deviceId];
}

export function memberFromCbor(v: unknown, what: string): GroupMember {
  const f = readArray(v, what, 2);
  const accountKey = readBytes(f[0], `${what}.accountKey`, 32);
  const deviceId = readUint(f[1], `${what}.deviceId`, MAX_DEVICE_ID);
  if (deviceId === 0) fail('MALFORMED', `${what}.deviceId: must be at least 1`, { field: `${what}.deviceId` });
  return { accountKey, deviceId };
}
