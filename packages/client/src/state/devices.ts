/**
 * What this device knows about an account's devices (its own account and
 * every contact's), in the `devices` table under the account id.
 * spec/10-client.md §5.
 *
 *   ["parley/client-devices", 1, signedList: bstr / null,
 *    trusted: [* certificate (core array form)], refused: [* [deviceId, reason]],
 *    checkedAt: bstr .size 8,
 *    pins: [* [deviceId, certificateHash: bstr .size 32, minVersion]]]
 *
 * `pins` (spec/design/formats-v2.md §3.5) came later: a record saved
 * without it loads with no pins and is saved with them.
 *
 * `trusted` is the last verdict on the relay's list (devices we encrypt to);
 * `signedList` is the highest revision of the account-signed list we have
 * accepted, which later relay lists are judged against.
 */
import { type CryptoProvider, type DeviceCertificate, certificateFromCbor, certificateToCbor } from '@parley/core';
import { readArray, readBytes, readOptional, readText, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import { type DeviceList, decodeSignedDeviceList } from '../devices/device-list.ts';
import type { RefusalReason, RefusedDevice } from '../devices/trust.ts';
import { accountId } from './ids.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-devices';
const REASONS: readonly RefusalReason[] = [
  'malformed',
  'bad-certificate',
  'wrong-device-id',
  'duplicate',
  'not-in-device-list',
  'no-device-list',
];

/** One pin per device an account may hold: the relay's device limit (spec/09-relay.md §8). */
export const MAX_PINS_PER_ACCOUNT = 256;

/** The highest message version one device certificate was seen to sign (devices/version-pins.ts). */
export interface VersionPin {
  readonly deviceId: number;
  /** SHA-256 of the certificate the pin was learned for. */
  readonly certificateHash: Uint8Array;
  readonly minVersion: number;
}

function readPin(v: unknown): VersionPin {
  const e = readArray(v, 'pin', 3);
  return {
    deviceId: readUint(e[0], 'pin.deviceId'),
    certificateHash: readBytes(e[1], 'pin.certificateHash', 32),
    minVersion: readUint(e[2], 'pin.minVersion', 255),
  };
}

export interface KnownDevices {
  readonly accountKey: Uint8Array;
  readonly list: DeviceList | null;
  readonly trusted: readonly DeviceCertificate[];
  readonly refused: readonly RefusedDevice[];
  /** When the relay's list was last fetched and judged (0: never). */
  readonly checkedAt: number;
  /** Per device certificate, the highest version it was seen to sign (devices/version-pins.ts). */
  readonly pins: readonly VersionPin[];
}

export function emptyDevices(accountKey: Uint8Array): KnownDevices {
  return { accountKey, list: null, trusted: [], refused: [], checkedAt: 0, pins: [] };
}

export function loadDevices(store: ClientStore, accountKey: Uint8Array, provider: CryptoProvider): KnownDevices {
  const bytes = store.get('devices', accountId(accountKey));
  if (!bytes) return emptyDevices(accountKey);
  const f = decodeRecord(bytes, TAG, [4, 5]);
  return asRecord(TAG, () => ({
    accountKey,
    list: readOptional(f[0], (v) => decodeSignedDeviceList(readBytes(v, 'signedList', { max: 16384 }), accountKey, provider)),
    trusted: readArray(f[1], 'trusted', { min: 0, max: 256 }).map((c) => certificateFromCbor(c)),
    refused: readArray(f[2], 'refused', { min: 0, max: 256 }).map((r) => {
      const e = readArray(r, 'refused entry', 2);
      const reason = readText(e[1], 'reason', 32) as RefusalReason;
      if (!REASONS.includes(reason)) throw new TypeError('unknown refusal reason');
      return { deviceId: readUint(e[0], 'deviceId'), reason };
    }),
    checkedAt: readTimestamp(f[3], 'checkedAt'),
    pins: f.length > 4 ? readArray(f[4], 'pins', { min: 0, max: MAX_PINS_PER_ACCOUNT }).map(readPin) : [],
  }));
}

export function saveDevices(store: ClientStore, known: KnownDevices): void {
  store.put(
    'devices',
    accountId(known.accountKey),
    encodeRecord(TAG, [
      known.list?.encoded ?? null,
      known.trusted.map(certificateToCbor),
      known.refused.map((r) => [r.deviceId, r.reason]),
      timestampToBytes(known.checkedAt),
      known.pins.map((p) => [p.deviceId, p.certificateHash, p.minVersion]),
    ]),
  );
}
