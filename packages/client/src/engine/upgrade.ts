/**
 * Upgrading a v1 session to v2 (formats-v2 §3.3, spec/10-client.md §4.1.2).
 *
 * A v1 session between two devices that both run v2 (an old session, or one
 * started while one side was old) is replaced by the first side that holds
 * the other's v2 signed prekey: a normal initiate from its v2 bundle. The v1
 * session is archived in the record (it still decrypts late messages) and
 * the event `session-upgraded` names the peer device; the peer sees the same
 * event when the first v2 message arrives.
 *
 * Holding the peer's v2 signed prekey means its version pin says 2 (we
 * fetched its bundle since it upgraded). Without the pin nothing in a v1
 * session says the peer has upgraded, so a device on a v1 session is asked
 * for its bundle at most once per UPGRADE_PROBE_INTERVAL_MS when we send to
 * it; a v1 answer leaves the session as it is.
 */
import type { DeviceCertificate, SessionRecord } from '@parley/core';
import { pinOfTrustedDevice } from '../devices/version-pins.ts';
import { type DeviceAddress, accountId, deviceKey } from '../state/ids.ts';
import { loadDevices } from '../state/devices.ts';
import type { Context, Pending } from './context.ts';

/**
 * How often a device still on a v1 session is asked whether it runs v2 now.
 * Each ask claims a bundle, which spends one of the peer's one-time prekeys
 * when the answer is v1 (a v2 answer is used for the new session), so once a
 * day per device: an upgraded peer is found within a day of the next send,
 * and a v1 peer loses at most one one-time prekey a day to it.
 */
export const UPGRADE_PROBE_INTERVAL_MS = 24 * 3600 * 1000;

const probeKey = (c: DeviceAddress) => `u/${deviceKey(c)}`;

/** True when a send to `c` should fetch its bundle to move its v1 session to v2. */
export function upgradeDue(ctx: Context, record: SessionRecord, c: DeviceCertificate): boolean {
  if (!ctx.options.sessionVersions.includes(2) || record.sessionVersion !== 1) return false;
  const pin = pinOfTrustedDevice(loadDevices(ctx.store, c.accountKey, ctx.provider), c.deviceId, ctx.provider);
  if (pin !== undefined && pin >= 2) return true;
  return ctx.store.get('processed', probeKey(c)) === undefined;
}

/** Remembers that `c` was asked (its answer was v1), until the interval has passed. Call inside a transaction. */
export function markProbed(ctx: Context, c: DeviceAddress): void {
  ctx.store.put('processed', probeKey(c), new Uint8Array(0), ctx.clock() + UPGRADE_PROBE_INTERVAL_MS);
}

/** Reports a v1 session with `peer` replaced by a v2 one (sender or receiver side). */
export function noteUpgrade(pending: Pending, peer: DeviceAddress, before: 1 | 2 | null, after: 1 | 2 | null): void {
  if (before === 1 && after === 2) {
    pending.add('session-upgraded', { account: accountId(peer.accountKey), deviceId: peer.deviceId, version: 2, previousVersion: 1 });
  }
}
