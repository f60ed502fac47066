/**
 * Sessions this device must never encrypt on again, because the store
 * they were loaded from was restored from an older copy.
 * spec/10-client.md §7.5.
 *
 *   identity/retired/<account id>.<device id> -> session id (the session's base key)
 *
 * A restored sending chain repeats message keys (and so AEAD key and nonce
 * pairs) that the lost newer copy already used. Retiring the session by its
 * id, rather than deleting it, keeps its receiving side (a peer's message in
 * flight still decrypts), while the sender starts a fresh session before
 * its next message, even if a peer's message makes the retired one current
 * again. One entry per peer device at most.
 */
import { bytesEqual } from '@parley/core';
import { type DeviceAddress, deviceKey } from './ids.ts';
import type { ClientStore } from '../store/types.ts';

const PREFIX = 'retired/';

export function retireSession(store: ClientStore, peerKey: string, sessionId: Uint8Array): void {
  store.put('identity', `${PREFIX}${peerKey}`, sessionId);
}

/** True when `sessionId` is the retired session of this peer device. */
export function isRetired(store: ClientStore, peer: DeviceAddress, sessionId: Uint8Array | null): boolean {
  if (!sessionId) return false;
  const retired = store.get('identity', `${PREFIX}${deviceKey(peer)}`);
  return retired !== undefined && bytesEqual(retired, sessionId);
}

export function retiredCount(store: ClientStore): number {
  return store.list('identity', PREFIX).length;
}
