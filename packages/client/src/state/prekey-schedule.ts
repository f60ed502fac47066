/**
 * Bookkeeping for the last-resort ML-KEM prekey's rotation, next to (and
 * shaped like) the signed prekey's in state/identity.ts. spec/10-client.md §4.4.
 *
 *   identity/upkeep-kem -> ["parley/client-upkeep-kem", 1, [[lastResortKemPreKeyId, createdAt(8)] ...]]
 *
 * A store written before this record existed has none: the first upkeep
 * round adopts the current last-resort key with "now" as its creation time
 * (its real age is unknown; counting from the upgrade rotates it at most
 * one rotation period late).
 */
import { readArray, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-upkeep-kem';
const KEY = 'upkeep-kem';

export interface ScheduledKey {
  readonly id: number;
  /** When it became current (ms since the epoch). */
  readonly createdAt: number;
}

/** Last-resort KEM prekeys this device made, oldest first. Empty for a store from before the schedule. */
export function loadLastResortSchedule(store: ClientStore): ScheduledKey[] {
  const bytes = store.get('identity', KEY);
  if (!bytes) return [];
  const f = decodeRecord(bytes, TAG, 1);
  return asRecord(TAG, () =>
    readArray(f[0], 'lastResort', { min: 0, max: 10_000 }).map((e) => {
      const r = readArray(e, 'lastResort entry', 2);
      return { id: readUint(r[0], 'id'), createdAt: readTimestamp(r[1], 'createdAt') };
    }),
  );
}

export function saveLastResortSchedule(store: ClientStore, keys: readonly ScheduledKey[]): void {
  store.put('identity', KEY, encodeRecord(TAG, [keys.map((k) => [k.id, timestampToBytes(k.createdAt)])]));
}

/**
 * How many of the keys before the newest are still within their grace
 * period: a key stops being current when its successor is created, and an
 * initial message made with it may arrive until `graceMs` after that.
 */
export function keysInGrace(keys: readonly ScheduledKey[], now: number, graceMs: number): number {
  const older = keys.slice(0, -1);
  // older[i] was replaced when keys[i + 1] was created.
  return older.filter((_, i) => now - (keys[i + 1] as ScheduledKey).createdAt < graceMs).length;
}
