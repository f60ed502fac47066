/**
 * Group state: what the app sees of a group (the states of its membership
 * chain, spec/08-groups.md §13) and the device's core GroupSession, in the
 * `groups` table. spec/10-client.md §7.2.
 *
 *   version 2 (written):
 *   groups/<group id, base64url> -> ["parley/client-group", 2, session: bstr (core GroupSession),
 *       generation: uint, distributedTo: [* [account, deviceId]],
 *       accounts: [+ bstr .size 32],
 *       states: [+ [revision, name, members: [+ uint], admins: [+ uint], parent: bstr .size 32,
 *                   author: bstr .size 32, valid: bool]]]
 *
 * `accounts` lists every account any held state names, once; a state's
 * members and admins are indexes into it. Up to eight states of a
 * 1,000-member group share one copy of the keys: decoding a byte string
 * costs far more than decoding a small integer, and the record is read and
 * written on every group message.
 *
 *   version 1 (read and migrated): ["parley/client-group", 1, name, revision, [* account],
 *       session, generation, distributedTo]
 *
 * A version-1 record recorded no authority and no parent: it migrates to one
 * state with every member an admin (the old rule: any member could change
 * the group), the all-zero parent and the all-zero (unknown) author. Every device that held the same
 * version-1 state migrates to the same state hash, so their next change
 * links up.
 *
 * `distributedTo` lists the devices that were sent our sending chain of
 * `generation`; a device missing from it gets a distribution before our
 * next group message.
 */
import { type CryptoProvider, GroupSession, ParleyError, bytesEqual, decodeCbor, encodeCbor, limits, toHex } from '@parley/core';
import { GROUP_STATE_HASH_BYTES, MAX_GROUP_MEMBERS, MAX_GROUP_NAME_BYTES, MAX_GROUP_REVISION } from '../content/content.ts';
import { readArray, readBool, readBytes, readOptional, readText, readUint } from '../content/fields.ts';
import { type DeviceAddress, fromBase64Url, toBase64Url } from './ids.ts';
import type { ClientStore } from '../store/types.ts';
import {
  type GroupStateCore,
  type KnownState,
  MAX_KNOWN_GROUP_STATES,
  ROOT_PARENT,
  UNKNOWN_AUTHOR,
  headOf,
  knownState,
  stateHash,
} from './group-state.ts';
import { asRecord } from './record.ts';

const TAG = 'parley/client-group';
const VERSION = 2;

export interface GroupRecord {
  readonly groupId: Uint8Array;
  /** The membership chain as this device holds it; the head (`headOf`) is the group. */
  readonly states: readonly KnownState[];
  /** The head's member accounts (derived from `states`; not stored). */
  readonly members: readonly Uint8Array[];
  readonly session: GroupSession;
  readonly generation: number;
  readonly distributedTo: readonly DeviceAddress[];
}

/** The group's current state (name, members, admins, revision). */
export function headState(g: Pick<GroupRecord, 'states'>): GroupStateCore {
  return headOf(g.states).state;
}

export function loadGroup(store: ClientStore, groupId: Uint8Array, provider: CryptoProvider): GroupRecord | null {
  const bytes = store.get('groups', toBase64Url(groupId));
  if (!bytes) return null;
  let v: unknown;
  try {
    v = decodeCbor(bytes, TAG, limits.MAX_RECORD_BYTES);
  } catch (e) {
    throw new ParleyError('BAD_RECORD', `${TAG}: ${(e as Error).message}`);
  }
  if (!Array.isArray(v) || v[0] !== TAG) throw new ParleyError('BAD_RECORD', `${TAG}: wrong format tag`);
  if (v[1] === 1) return asRecord(TAG, () => fromVersion1(readArray(v, TAG, 8).slice(2), groupId, provider));
  if (v[1] !== VERSION) throw new ParleyError('UNSUPPORTED_VERSION', `${TAG}: unsupported record version`, { version: String(v[1]) });
  return asRecord(TAG, () => {
    const f = readArray(v, TAG, 7).slice(2);
    const accounts = readArray(f[3], 'accounts', { min: 1, max: MAX_KNOWN_GROUP_STATES * MAX_GROUP_MEMBERS }).map((a) =>
      readBytes(a, 'account', 32),
    );
    if (new Set(accounts.map(toHex)).size !== accounts.length) throw new ParleyError('MALFORMED', 'accounts: an account is listed twice');
    const states = readArray(f[4], 'states', { min: 1, max: MAX_KNOWN_GROUP_STATES }).map((s) =>
      readKnownState(s, accounts, groupId, provider),
    );
    if (!states.some((k) => k.valid)) throw new ParleyError('MALFORMED', 'states: none is valid');
    return {
      groupId,
      states,
      members: headOf(states).state.members,
      session: GroupSession.deserialize(readBytes(f[0], 'session', { max: limits.MAX_RECORD_BYTES }), provider),
      generation: readUint(f[1], 'generation'),
      distributedTo: readDevices(f[2]),
    };
  });
}

function readAccountList(v: unknown, field: string): Uint8Array[] {
  return readArray(v, field, { min: 1, max: MAX_GROUP_MEMBERS }).map((m) => readBytes(m, field, 32));
}

/** A list of indexes into `accounts`, each at most once. */
function readAccountRefs(v: unknown, accounts: readonly Uint8Array[], field: string): Uint8Array[] {
  const refs = readArray(v, field, { min: 1, max: MAX_GROUP_MEMBERS }).map((i) => readUint(i, field, accounts.length - 1));
  if (new Set(refs).size !== refs.length) throw new ParleyError('MALFORMED', `${field}: an account is listed twice`);
  return refs.map((i) => accounts[i] as Uint8Array);
}

function readKnownState(v: unknown, accounts: readonly Uint8Array[], groupId: Uint8Array, provider: CryptoProvider): KnownState {
  const f = readArray(v, 'state', 7);
  const state: GroupStateCore = {
    revision: readUint(f[0], 'state.revision', MAX_GROUP_REVISION),
    name: readText(f[1], 'state.name', MAX_GROUP_NAME_BYTES),
    members: readAccountRefs(f[2], accounts, 'state.members'),
    admins: readAccountRefs(f[3], accounts, 'state.admins'),
    parent: readBytes(f[4], 'state.parent', GROUP_STATE_HASH_BYTES),
    author: readBytes(f[5], 'state.author', 32),
  };
  const valid = readBool(f[6], 'state.valid');
  // Recomputed, never stored (a record cannot carry a hash that does not match its state), and
  // only when asked: receiving a group message needs the head's members, not the hashes.
  let hash: Uint8Array | undefined;
  return {
    state,
    get hash() {
      hash ??= stateHash(provider, groupId, state);
      return hash;
    },
    author: bytesEqual(state.author, UNKNOWN_AUTHOR) ? null : state.author,
    valid,
  };
}

function readDevices(v: unknown): DeviceAddress[] {
  return readArray(v, 'distributedTo', { min: 0, max: 1 << 16 }).map((d) => {
    const f = readArray(d, 'device', 2);
    return { accountKey: readBytes(f[0], 'account', 32), deviceId: readUint(f[1], 'deviceId') };
  });
}

/** A version-1 record: one state, every member an admin, the all-zero parent. */
function fromVersion1(f: unknown[], groupId: Uint8Array, provider: CryptoProvider): GroupRecord {
  const members = readAccountList(f[2], 'members');
  const state: GroupStateCore = {
    revision: readUint(f[1], 'revision', MAX_GROUP_REVISION),
    name: readText(f[0], 'name', MAX_GROUP_NAME_BYTES),
    members,
    admins: members,
    parent: ROOT_PARENT,
    author: UNKNOWN_AUTHOR,
  };
  return {
    groupId,
    states: [knownState(provider, groupId, state, true)],
    members,
    session: GroupSession.deserialize(readBytes(f[3], 'session', { max: limits.MAX_RECORD_BYTES }), provider),
    generation: readUint(f[4], 'generation'),
    distributedTo: readDevices(f[5]),
  };
}

export function saveGroup(store: ClientStore, g: GroupRecord): void {
  const accounts: Uint8Array[] = [];
  const index = new Map<string, number>();
  // States loaded from one record share their key arrays: look those up by identity, others by value.
  const byObject = new Map<Uint8Array, number>();
  const refs = (list: readonly Uint8Array[]) =>
    list.map((a) => {
      let i = byObject.get(a);
      if (i !== undefined) return i;
      const key = toHex(a);
      i = index.get(key);
      if (i === undefined) {
        i = accounts.push(a) - 1;
        index.set(key, i);
      }
      byObject.set(a, i);
      return i;
    });
  const states = g.states.map((k) => [
    k.state.revision,
    k.state.name,
    refs(k.state.members),
    refs(k.state.admins),
    k.state.parent,
    k.state.author,
    k.valid,
  ]);
  store.put(
    'groups',
    toBase64Url(g.groupId),
    encodeCbor([
      TAG,
      VERSION,
      g.session.serialize(),
      g.generation,
      g.distributedTo.map((d) => [d.accountKey, d.deviceId]),
      accounts,
      states,
    ]),
  );
}

export function deleteGroup(store: ClientStore, groupId: Uint8Array): void {
  store.delete('groups', toBase64Url(groupId));
}

export function listGroupIds(store: ClientStore): Uint8Array[] {
  return store.list('groups').map((e) => fromBase64Url(e.key, 32) as Uint8Array);
}
