/**
 * One core SessionRecord per peer device, in the `sessions` table under
 * `<account id>.<device id>`. spec/10-client.md §7.
 *
 * A record that no longer loads (a corrupted or truncated write, a restore
 * from another build) is not fatal: it is replaced by an empty record and
 * reported, and the self-healing flow (spec §6) rebuilds the session.
 */
import { type CryptoProvider, SessionRecord, isParleyError } from '@parley/core';
import { type DeviceAddress, accountId, deviceKey } from './ids.ts';
import type { ClientStore } from '../store/types.ts';

export interface LoadedSession {
  readonly record: SessionRecord;
  /** True when a stored record existed but did not load; it has been replaced by an empty one. */
  readonly corrupted: boolean;
}

export function loadSession(store: ClientStore, peer: DeviceAddress, provider: CryptoProvider): LoadedSession {
  const bytes = store.get('sessions', deviceKey(peer));
  if (!bytes) return { record: new SessionRecord(provider), corrupted: false };
  try {
    return { record: SessionRecord.deserialize(bytes, provider), corrupted: false };
  } catch (e) {
    if (isParleyError(e, 'BAD_RECORD') || isParleyError(e, 'UNSUPPORTED_VERSION'))
      return { record: new SessionRecord(provider), corrupted: true };
    throw e;
  }
}

export function saveSession(store: ClientStore, peer: DeviceAddress, record: SessionRecord): void {
  store.put('sessions', deviceKey(peer), record.serialize());
}

export function deleteSession(store: ClientStore, peer: DeviceAddress): void {
  store.delete('sessions', deviceKey(peer));
}

/** Device ids we hold a session record with, for one account. */
export function sessionDeviceIds(store: ClientStore, accountKey: Uint8Array): number[] {
  const prefix = `${accountId(accountKey)}.`;
  return store
    .list('sessions', prefix)
    .map((e) => Number(e.key.slice(prefix.length)))
    .filter((n) => Number.isInteger(n) && n > 0)
    .sort((a, b) => a - b);
}
