/**
 * Group state: what the app sees of a group (name, member accounts) and the
 * device's core GroupSession, in the `groups` table. spec/10-client.md §4.3.
 *
 *   groups/<group id, base64url> -> ["parley/client-group", 1, name: tstr, revision: uint,
 *       members: [* bstr .size 32], session: bstr (core GroupSession), generation: uint,
 *       distributedTo: [* [account, deviceId]]]
 *
 * `distributedTo` lists the devices that were sent our sending chain of
 * `generation`; a device missing from it gets a distribution before our
 * next group message.
 */
import { type CryptoProvider, GroupSession } from '@parley/core';
import { readArray, readBytes, readText, readUint } from '../content/fields.ts';
import { type DeviceAddress, fromBase64Url, toBase64Url } from '../ids.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-group';

export interface GroupRecord {
  readonly groupId: Uint8Array;
  readonly name: string;
  /** Grows with every change; the highest wins. */
  readonly revision: number;
  /** Member accounts, ours included. */
  readonly members: readonly Uint8Array[];
  readonly session: GroupSession;
  readonly generation: number;
  readonly distributedTo: readonly DeviceAddress[];
}

export function loadGroup(store: ClientStore, groupId: Uint8Array, provider: CryptoProvider): GroupRecord | null {
  const bytes = store.get('groups', toBase64Url(groupId));
  if (!bytes) return null;
  const f = decodeRecord(bytes, TAG, 6);
  return asRecord(TAG, () => ({
    groupId,
    name: readText(f[0], 'name', 256),
    revision: readUint(f[1], 'revision'),
    members: readArray(f[2], 'members', { min: 0, max: 1000 }).map((m) => readBytes(m, 'member', 32)),
    session: GroupSession.deserialize(readBytes(f[3], 'session', { max: 64 << 20 }), provider),
    generation: readUint(f[4], 'generation'),
    distributedTo: readArray(f[5], 'distributedTo', { min: 0, max: 1 << 16 }).map((v) => {
      const d = readArray(v, 'device', 2);
      return { accountKey: readBytes(d[0], 'account', 32), deviceId: readUint(d[1], 'deviceId') };
    }),
  }));
}

export function saveGroup(store: ClientStore, g: GroupRecord): void {
  store.put(
    'groups',
    toBase64Url(g.groupId),
    encodeRecord(TAG, [
      g.name,
      g.revision,
      [...g.members],
      g.session.serialize(),
      g.generation,
      g.distributedTo.map((d) => [d.accountKey, d.deviceId]),
    ]),
  );
}

export function deleteGroup(store: ClientStore, groupId: Uint8Array): void {
  store.delete('groups', toBase64Url(groupId));
}

export function listGroupIds(store: ClientStore): Uint8Array[] {
  return store.list('groups').map((e) => fromBase64Url(e.key, 32) as Uint8Array);
}
