/**
 * Measures the group record (spec/10-client.md §7.2) at its worst case: a
 * group of 1,000 member accounts, every one an admin, holding 1 and 8 states
 * (spec/08-groups.md §13.4). The record is loaded and saved on every group
 * message, so these are per-message costs on top of the GroupSession's own.
 *
 *   node --import tsx packages/client/scripts/group-record-cost.ts
 */
import { Account, GroupSession, defaultProvider } from '@parley/core';
import { type KnownState, ROOT_PARENT, stateHash } from '../src/state/group-state.ts';
import { loadGroup, saveGroup } from '../src/state/groups.ts';
import { MemoryStore } from '../src/store/memory.ts';

const p = defaultProvider();
const device = Account.generate(p).createDevice(1, p);
const session = GroupSession.create(device, [], { provider: p });
const groupId = session.groupId;
const ROUNDS = 50;

// Eight consecutive changes, each replacing one member: the lists overlap as real histories do.
let members: Uint8Array[] = [device.accountKey, ...Array.from({ length: 999 }, () => p.random(32))];
const states: KnownState[] = [];
let parent: Uint8Array = ROOT_PARENT;
for (let revision = 1; revision <= 8; revision++) {
  if (revision > 1) members = [...members.slice(0, 1), ...members.slice(2), p.random(32)];
  const state = { revision, name: 'g', members, admins: members, parent, author: device.accountKey };
  const hash = stateHash(p, groupId, state);
  states.push({ state, hash, author: device.accountKey, valid: true });
  parent = hash;
}

const store = new MemoryStore();
for (const n of [1, 8]) {
  saveGroup(store, { groupId, states: states.slice(0, n), members, session, generation: 0, distributedTo: [] });
  const size = store.get('groups', Buffer.from(groupId).toString('base64url'))?.length ?? 0;
  let t = performance.now();
  for (let i = 0; i < ROUNDS; i++) loadGroup(store, groupId, p);
  const load = (performance.now() - t) / ROUNDS;
  const g = loadGroup(store, groupId, p);
  if (!g) throw new Error('record did not load');
  t = performance.now();
  for (let i = 0; i < ROUNDS; i++) saveGroup(store, g);
  const save = (performance.now() - t) / ROUNDS;
  console.log(`${n} state(s): record ${size} bytes, load ${load.toFixed(1)} ms, save ${save.toFixed(1)} ms`);
}
