/**
 * The account-signed device list. spec/10-client.md §5.1, spec/09-relay.md §4.1.
 *
 *   SignedDeviceList = [body: bstr, signature: bstr .size 64]
 *   body             = CBOR([version: 1, accountKey: bstr .size 32, revision: uint,
 *                            devices: [* [deviceId: uint, certificateHash: bstr .size 32]]])
 *   signature        = Ed25519(account key, CBOR(["Parley v1 device list", body]))
 *                      (`Account.signStatement`)
 *
 * A device certificate alone proves that the account once certified a
 * device; it cannot prove the device was not removed since. The list does:
 * the primary signs a new revision at every add and remove, clients keep the
 * highest revision they have seen, and a device whose certificate hash is not
 * in that revision is refused. Devices are sorted by id and unique, so a list
 * has one encoding.
 *
 * It lives in core because two parties check it: clients (which trust it)
 * and the relay (which stores the latest one and refuses forgeries and
 * rollbacks, though nobody has to trust it for that). This module knows
 * nothing of the relay or of sessions.
 */
import { bytesEqual } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import { type CryptoProvider, defaultProvider } from '../crypto/provider.ts';
import { ParleyError, fail } from '../errors.ts';
import { MAX_DEVICE_ID } from '../limits.ts';
import { type DeviceCertificate, encodeCertificate } from './certificate.ts';
import type { Account } from './identity.ts';

export const DEVICE_LIST_LABEL = 'Parley v1 device list';
export const DEVICE_LIST_VERSION = 1;
/** Devices in one list: well above the relay's per-account limit (32). */
export const MAX_LISTED_DEVICES = 256;
/** Encoded size of a signed list: 256 entries of about 40 bytes, with room. */
export const MAX_DEVICE_LIST_BYTES = 16 * 1024;
/** Revisions are uint32: a list at 2^32-1 is the last one an account can sign. */
export const MAX_DEVICE_LIST_REVISION = 0xffffffff;

export interface DeviceList {
  readonly accountKey: Uint8Array;
  /** Grows by at least one with every change the account signs. */
  readonly revision: number;
  /** deviceId -> SHA-256 of the device's encoded certificate. */
  readonly devices: ReadonlyMap<number, Uint8Array>;
  /** The signed encoding, as received or created (what is stored and forwarded). */
  readonly encoded: Uint8Array;
}

/** SHA-256 of the canonical certificate encoding: the relay's certificate hash too. */
export function certificateHash(certificate: DeviceCertificate, provider: CryptoProvider = defaultProvider()): Uint8Array {
  return provider.backend.sha256(encodeCertificate(certificate));
}

/**
 * Signs a list of `certificates` (all of `account`) at `revision`.
 *
 * @example
 * const list = signDeviceList(account, 1, [device.certificate]);
 * decodeSignedDeviceList(list.encoded, account.publicKey).revision; // 1
 */
export function signDeviceList(
  account: Account,
  revision: number,
  certificates: readonly DeviceCertificate[],
  provider: CryptoProvider = defaultProvider(),
): DeviceList {
  if (!Number.isSafeInteger(revision) || revision < 1 || revision > MAX_DEVICE_LIST_REVISION)
    throw new RangeError('"revision" expected 1..2^32-1');
  const sorted = [...certificates].sort((a, b) => a.deviceId - b.deviceId);
  for (let i = 0; i < sorted.length; i++) {
    const c = sorted[i] as DeviceCertificate;
    if (!bytesEqual(c.accountKey, account.publicKey)) throw new RangeError('"certificates" must all belong to the account');
    if (i > 0 && (sorted[i - 1] as DeviceCertificate).deviceId === c.deviceId)
      throw new RangeError('"certificates" has a duplicate device id');
  }
  if (sorted.length > MAX_LISTED_DEVICES) throw new RangeError(`"certificates" holds more than ${MAX_LISTED_DEVICES} devices`);
  const body = encodeCbor([
    DEVICE_LIST_VERSION,
    account.publicKey,
    revision,
    sorted.map((c) => [c.deviceId, certificateHash(c, provider)]),
  ]);
  const encoded = encodeCbor([body, account.signStatement(DEVICE_LIST_LABEL, body)]);
  return decodeSignedDeviceList(encoded, account.publicKey, provider);
}

/**
 * Decodes a signed list and verifies its signature with `accountKey` (the
 * list must name that account). Throws MALFORMED / OVERSIZED /
 * UNSUPPORTED_VERSION / BAD_SIGNATURE.
 */
export function decodeSignedDeviceList(
  encoded: Uint8Array,
  accountKey: Uint8Array,
  provider: CryptoProvider = defaultProvider(),
): DeviceList {
  const outer = readArray(decodeCbor(encoded, 'SignedDeviceList', MAX_DEVICE_LIST_BYTES), 'SignedDeviceList', 2);
  const body = readBytes(outer[0], 'deviceList.body', { max: MAX_DEVICE_LIST_BYTES });
  const signature = readBytes(outer[1], 'deviceList.signature', 64);
  const v = decodeCbor(body, 'DeviceList', MAX_DEVICE_LIST_BYTES);
  // The version is checked before the field count, so a later version may have other fields.
  if (!Array.isArray(v) || typeof v[0] !== 'number') fail('MALFORMED', 'DeviceList: expected an array starting with a version');
  if (v[0] !== DEVICE_LIST_VERSION)
    throw new ParleyError('UNSUPPORTED_VERSION', `DeviceList: unsupported version ${v[0]}`, { version: v[0] });
  const f = readArray(v, 'DeviceList', 4);
  const listed = readBytes(f[1], 'deviceList.accountKey', 32);
  const revision = readUint(f[2], 'deviceList.revision');
  if (revision === 0) fail('MALFORMED', 'deviceList.revision: must be at least 1', { field: 'deviceList.revision' });
  const devices = new Map<number, Uint8Array>();
  let previous = 0;
  for (const entry of readArray(f[3], 'deviceList.devices', { min: 0, max: MAX_LISTED_DEVICES })) {
    const e = readArray(entry, 'deviceList.device', 2);
    const deviceId = readUint(e[0], 'deviceList.deviceId', MAX_DEVICE_ID);
    if (deviceId <= previous)
      fail('MALFORMED', 'deviceList.devices: device ids must be ascending and unique', { field: 'deviceList.devices' });
    previous = deviceId;
    devices.set(deviceId, readBytes(e[1], 'deviceList.certificateHash', 32));
  }
  if (!bytesEqual(listed, accountKey)) throw new ParleyError('BAD_SIGNATURE', 'device list names another account');
  if (!provider.backend.ed25519Verify(accountKey, encodeCbor([DEVICE_LIST_LABEL, body]), signature)) {
    throw new ParleyError('BAD_SIGNATURE', 'device list signature does not verify', { revision });
  }
  return { accountKey: listed, revision, devices, encoded: new Uint8Array(encoded) };
}

export type ListVerdict = 'newer' | 'same' | 'older' | 'conflict';

/**
 * How an incoming list relates to the one held: only a higher revision
 * replaces it. The same revision with other contents means the account key
 * signed two different lists for one revision (a bug or a stolen key): the
 * caller reports it and keeps the list it holds.
 */
export function compareDeviceLists(held: DeviceList | null, incoming: DeviceList): ListVerdict {
  if (!held || incoming.revision > held.revision) return 'newer';
  if (incoming.revision < held.revision) return 'older';
  return bytesEqual(held.encoded, incoming.encoded) ? 'same' : 'conflict';
}

/** True when the list names this exact certificate for its device id. */
export function listsCertificate(list: DeviceList, certificate: DeviceCertificate, provider?: CryptoProvider): boolean {
  return listsCertificateHash(list, certificate.deviceId, certificateHash(certificate, provider));
}

/** True when the list names `hash` for `deviceId`. */
export function listsCertificateHash(list: DeviceList, deviceId: number, hash: Uint8Array): boolean {
  const held = list.devices.get(deviceId);
  return held !== undefined && bytesEqual(held, hash);
}
