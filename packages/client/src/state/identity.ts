/**
 * This device's own secrets and upkeep bookkeeping, in the `identity`
 * table. spec/10-client.md §7.
 *
 *   account  -> core Account.serialize()      (primary device only)
 *   device   -> core DeviceIdentity.serialize()
 *   prekeys  -> core PreKeyStore.serialize()
 *   upkeep   -> ["parley/client-upkeep", 1, [[signedPreKeyId, createdAt(8)] ...], registered: bool]
 */
import { Account, type CryptoProvider, DeviceIdentity, PreKeyStore } from '@parley/core';
import { readArray, readBool, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

export interface LocalIdentity {
  /** The account key pair: only on the primary device. */
  readonly account: Account | null;
  readonly device: DeviceIdentity;
  readonly prekeys: PreKeyStore;
}

export interface Upkeep {
  /** Signed prekeys this device made, oldest first, with when each became current. */
  readonly signedPreKeys: readonly { readonly id: number; readonly createdAt: number }[];
  /** True once the relay accepted this device's registration. */
  readonly registered: boolean;
}

const UPKEEP_TAG = 'parley/client-upkeep';

export function loadIdentity(store: ClientStore, provider: CryptoProvider): LocalIdentity | null {
  const deviceBytes = store.get('identity', 'device');
  const prekeyBytes = store.get('identity', 'prekeys');
  if (!deviceBytes || !prekeyBytes) return null;
  const device = DeviceIdentity.deserialize(deviceBytes, provider);
  const accountBytes = store.get('identity', 'account');
  const account = accountBytes ? Account.deserialize(accountBytes, provider) : null;
  return { account, device, prekeys: PreKeyStore.deserialize(prekeyBytes, device, provider) };
}

export function saveIdentity(store: ClientStore, identity: LocalIdentity): void {
  store.transaction(() => {
    if (identity.account) store.put('identity', 'account', identity.account.serialize());
    store.put('identity', 'device', identity.device.serialize());
    savePreKeys(store, identity.prekeys);
  });
}

export function savePreKeys(store: ClientStore, prekeys: PreKeyStore): void {
  store.put('identity', 'prekeys', prekeys.serialize());
}

export function loadUpkeep(store: ClientStore): Upkeep {
  const bytes = store.get('identity', 'upkeep');
  if (!bytes) return { signedPreKeys: [], registered: false };
  const f = decodeRecord(bytes, UPKEEP_TAG, 2);
  return asRecord(UPKEEP_TAG, () => ({
    signedPreKeys: readArray(f[0], 'signedPreKeys', { min: 0, max: 10_000 }).map((e) => {
      const r = readArray(e, 'signedPreKey', 2);
      return { id: readUint(r[0], 'id'), createdAt: readTimestamp(r[1], 'createdAt') };
    }),
    registered: readBool(f[1], 'registered'),
  }));
}

export function saveUpkeep(store: ClientStore, upkeep: Upkeep): void {
  store.put(
    'identity',
    'upkeep',
    encodeRecord(UPKEEP_TAG, [upkeep.signedPreKeys.map((s) => [s.id, timestampToBytes(s.createdAt)]), upkeep.registered]),
  );
}
