/**
 * Groups on top of core's sender keys. spec/10-client.md §4.3.
 *
 * A group, to the app, is a name and a set of accounts; to core it is a set
 * of devices. This module keeps the two in step: the devices of a group are
 * the trusted devices of its member accounts (ours included), synced into
 * the GroupSession before every send. Our sending chain goes, as a
 * distribution inside a one-to-one message, to every device that has not
 * had it yet; the distribution carries the group's state too, so a device
 * added to a member account learns the group from it.
 *
 * Membership is a chain of states (state/group-state.ts, spec/08-groups.md
 * §13): admins change the group, any member may leave, every change names
 * the state it changes, and every device picks the same head. A change that
 * is not allowed is refused with a typed warning and changes nothing.
 */
import { type DeviceCertificate, type GroupMember, GroupSession, bytesEqual, groupLimits, isParleyError } from '@parley/core';
import { type Content, type GroupState, MAX_GROUP_MEMBERS, encodeContent } from '../content/content.ts';
import { ClientError } from '../errors.ts';
import { type DeviceAddress, accountId, deviceKey } from '../state/ids.ts';
import { conversationId } from '../state/conversation-id.ts';
import { loadDevices } from '../state/devices.ts';
import { type GroupStateCore, type KnownState, ROOT_PARENT, addState, checkChange, headOf, stateHash } from '../state/group-state.ts';
import { type GroupRecord, deleteGroup, loadGroup, saveGroup } from '../state/groups.ts';
import { newContent, queueEntry, recordOutgoing } from './compose.ts';
import type { Context, Pending } from './context.ts';
import { devicesFor } from './directory.ts';
import { groupMessageVersion } from '../franking/group-version.ts';

const has = (list: readonly Uint8Array[], key: Uint8Array) => list.some((k) => bytesEqual(k, key));
const without = (list: readonly Uint8Array[], drop: readonly Uint8Array[]) => list.filter((k) => !has(drop, k));

/** The group's head as it travels, with our core epoch (bounded so that a joiner accepts it). */
export function stateOf(g: GroupRecord): GroupState {
  return wireState(headOf(g.states).state, g.session.epoch);
}

function wireState(s: GroupStateCore, epoch: number): GroupState {
  return { ...s, epoch: Math.min(epoch, groupLimits.MAX_GROUP_JOIN_EPOCH) };
}

function record(g: Omit<GroupRecord, 'members'>): GroupRecord {
  return { ...g, members: headOf(g.states).state.members };
}

/** Creates a group with us and `others` as members, us its first admin; queues the group-update to everyone. Call inside a transaction. */
export function createGroup(ctx: Context, name: string, others: readonly Uint8Array[], pending: Pending): Uint8Array {
  const members = [ctx.self.accountKey];
  for (const a of others) if (!has(members, a)) members.push(a);
  const session = GroupSession.create(ctx.device, [], { provider: ctx.provider });
  const state: GroupStateCore = {
    revision: 1,
    name,
    members,
    admins: [ctx.self.accountKey],
    parent: ROOT_PARENT,
    author: ctx.self.accountKey,
  };
  const hash = stateHash(ctx.provider, session.groupId, state);
  const group = record({
    groupId: session.groupId,
    states: [{ state, hash, author: ctx.self.accountKey, valid: true }],
    session,
    generation: session.sendingPosition.generation,
    distributedTo: [],
  });
  saveGroup(ctx.store, group);
  announce(ctx, group, members);
  pending.add('group-change', {
    conversation: conversationId({ kind: 'group', groupId: group.groupId }),
    name,
    members: members.map(accountId),
    added: members.map(accountId),
    removed: [],
    by: accountId(ctx.self.accountKey),
  });
  return group.groupId;
}

export interface GroupChange {
  readonly name?: string;
  readonly add?: readonly Uint8Array[];
  readonly remove?: readonly Uint8Array[];
  /** Members (current or added now) to make admins. */
  readonly addAdmins?: readonly Uint8Array[];
  /** Admins to make ordinary members. */
  readonly removeAdmins?: readonly Uint8Array[];
}

/**
 * Makes the next state from ours (one revision up, naming our head as its
 * parent), applies it here and queues it to old and new members. Only an
 * admin may change the group; any member may leave (remove itself). A
 * change we may not make is ClientError NOT_GROUP_ADMIN, and one past the
 * last revision GROUP_LIMIT; both change nothing. Call inside a transaction.
 */
export function updateGroup(ctx: Context, groupId: Uint8Array, change: GroupChange, pending: Pending): void {
  const group = requireGroup(ctx, groupId);
  const self = ctx.self.accountKey;
  const head = headOf(group.states);
  const parent = head.state;
  const next = nextState(head, change, self);
  if (has(change.remove ?? [], self) && next.members.length === 0) {
    // The last member leaves: nobody is left to tell.
    deleteGroup(ctx.store, groupId);
    pending.add('group-change', changeEvent(groupId, parent.members, self, next));
    return;
  }
  const refusal = checkChange(parent, next, self);
  if (refusal) throw new ClientError(refusal.code, refusal.message);
  if (next.members.length > MAX_GROUP_MEMBERS) throw new ClientError('GROUP_LIMIT', `a group holds at most ${MAX_GROUP_MEMBERS} accounts`);
  const hash = stateHash(ctx.provider, groupId, next);
  const added = addState(group.states, next, hash, self);
  if (added.kind !== 'added') throw new ClientError('GROUP_OUT_OF_ORDER', 'the change could not be applied to this group');
  const after = moveHead(ctx, group, added.states, self, pending);
  announce(ctx, after ?? { groupId, states: added.states, session: group.session }, [
    ...parent.members,
    ...without(next.members, parent.members),
  ]);
}

/** The state `change` makes of `head` (not yet checked against the rules). */
function nextState(head: KnownState, change: GroupChange, self: Uint8Array): GroupStateCore {
  const parent = head.state;
  const removed = change.remove ?? [];
  let members = without(parent.members, removed);
  for (const a of change.add ?? []) if (!has(members, a)) members = [...members, a];
  let admins = without(parent.admins, [...removed, ...(change.removeAdmins ?? [])]);
  for (const a of change.addAdmins ?? []) if (has(members, a) && !has(admins, a)) admins = [...admins, a];
  // The last admin leaving hands the group to the longest-standing member, so it never loses its admins.
  if (has(removed, self) && admins.length === 0 && members.length > 0) admins = [members[0] as Uint8Array];
  return { revision: parent.revision + 1, name: change.name ?? parent.name, members, admins, parent: head.hash, author: self };
}

function announce(ctx: Context, group: Pick<GroupRecord, 'groupId' | 'states' | 'session'>, to: readonly Uint8Array[]): void {
  const state = wireState(headOf(group.states).state, group.session.epoch);
  const content = newContent(ctx, { type: 'group-update', state }, { group: group.groupId });
  const encoded = encodeContent(content);
  // One entry per account: a ghost device on one account must not hold up the others.
  for (const account of to) {
    const own = bytesEqual(account, ctx.self.accountKey);
    queueEntry(ctx, {
      messageId: content.messageId,
      attempt: 0,
      accounts: [account],
      toContacts: own ? null : encoded,
      toOwnDevices: own ? encoded : null,
      groupMessage: null,
      freshSession: null,
      keepForRetry: true,
      conversation: null,
      ttlSeconds: null,
    });
  }
}

export function requireGroup(ctx: Context, groupId: Uint8Array): GroupRecord {
  const g = loadGroup(ctx.store, groupId, ctx.provider);
  if (!g) throw new ClientError('UNKNOWN_CONVERSATION', 'no such group');
  return g;
}

function changeEvent(groupId: Uint8Array, beforeMembers: readonly Uint8Array[], by: Uint8Array, after: GroupStateCore) {
  return {
    conversation: conversationId({ kind: 'group', groupId }),
    name: after.name,
    members: after.members.map(accountId),
    added: without(after.members, beforeMembers).map(accountId),
    removed: without(beforeMembers, after.members).map(accountId),
    by: accountId(by),
  };
}

/**
 * Saves `states` and carries out what a new head means here: the group is
 * deleted if we left it, and the devices of accounts that left it leave the
 * GroupSession (core then rotates our chain, so they cannot read what
 * follows). Returns the saved record (null when deleted).
 */
function moveHead(ctx: Context, group: GroupRecord, states: readonly KnownState[], by: Uint8Array, pending: Pending): GroupRecord | null {
  const before = headOf(group.states);
  const after = headOf(states);
  if (bytesEqual(before.hash, after.hash)) {
    const same = record({ ...group, states });
    saveGroup(ctx.store, same);
    return same;
  }
  const event = changeEvent(group.groupId, before.state.members, after.author ?? by, after.state);
  if (!has(after.state.members, ctx.self.accountKey)) {
    deleteGroup(ctx.store, group.groupId);
    pending.add('group-change', event);
    return null;
  }
  const removed = without(before.state.members, after.state.members);
  const gone = group.session.members.filter((m) => !bytesEqual(m.accountKey, ctx.self.accountKey) && has(removed, m.accountKey));
  if (gone.length) group.session.changeMembers({ remove: gone });
  const saved = saveWithSession(ctx, record({ ...group, states }));
  pending.add('group-change', event);
  return saved;
}

/**
 * Applies a group state received from `from` (a group-update, or the state
 * in a distribution for a group we do not hold yet). A group we do not hold
 * is joined only from a state that names us and was sent by one of its
 * admins (or by our own account's device); a change of a group we hold goes
 * through the membership rules (state/group-state.ts). Every refusal is a
 * `warning` event with its code and changes nothing. Call inside a transaction.
 */
export function applyGroupState(ctx: Context, from: DeviceCertificate, groupId: Uint8Array, state: GroupState, pending: Pending): void {
  const group = loadGroup(ctx.store, groupId, ctx.provider);
  const core: GroupStateCore = {
    revision: state.revision,
    name: state.name,
    members: state.members,
    admins: state.admins,
    parent: state.parent,
    author: state.author,
  };
  const hash = stateHash(ctx.provider, groupId, core);
  if (!group) {
    joinGroup(ctx, from, groupId, state, core, hash, pending);
    return;
  }
  const result = addState(group.states, core, hash, from.accountKey);
  switch (result.kind) {
    case 'duplicate':
      return;
    case 'refused':
      pending.add('warning', { code: result.refusal.code, message: `a group change was refused: ${result.refusal.message}` });
      return;
    case 'pending': {
      if (reanchor(ctx, group, from, core, hash, pending)) return;
      saveGroup(ctx.store, record({ ...group, states: result.states }));
      pending.add('warning', { code: result.refusal.code, message: `a group change is waiting: ${result.refusal.message}` });
      return;
    }
    case 'added': {
      const after = moveHead(ctx, group, result.states, from.accountKey, pending);
      if (after) rebaseLostChange(ctx, headOf(group.states), after, pending);
    }
  }
}

/** True when `descendant` is `ancestor` or is built on it, as far as the held states show. */
function builtOn(states: readonly KnownState[], descendant: KnownState, ancestor: Uint8Array): boolean {
  let k: KnownState | undefined = descendant;
  for (let i = 0; k && i <= states.length; i++) {
    if (bytesEqual(k.hash, ancestor)) return true;
    const parent: Uint8Array = k.state.parent;
    k = states.find((x) => bytesEqual(x.hash, parent));
  }
  return false;
}

/**
 * Our own change lost a tie (another admin's change of the same state won,
 * 08 §13.4): make it again on top of the winner, so that a removal, say, is
 * not silently undone by a concurrent rename. Only while we are still an
 * admin; the change is the same difference (members, admins, name) applied
 * to the new head, so every device of our account makes the same state.
 */
function rebaseLostChange(ctx: Context, lost: KnownState, group: GroupRecord, pending: Pending): void {
  const self = ctx.self.accountKey;
  const head = headOf(group.states);
  if (!lost.author || !bytesEqual(lost.author, self) || builtOn(group.states, head, lost.hash)) return;
  const base = group.states.find((k) => bytesEqual(k.hash, lost.state.parent));
  if (!base || !has(head.state.admins, self)) return;
  const was = base.state;
  const now = lost.state;
  const removed = without(was.members, now.members);
  const change: GroupChange = {
    name: now.name !== was.name ? now.name : undefined,
    add: without(now.members, was.members),
    remove: without(removed, [self]),
    addAdmins: without(now.admins, was.admins),
    removeAdmins: without(was.admins, now.admins),
  };
  const next = nextState(head, change, self);
  const same = (a: readonly Uint8Array[], b: readonly Uint8Array[]) => a.length === b.length && without(a, b).length === 0;
  if (next.name === head.state.name && same(next.members, head.state.members) && same(next.admins, head.state.admins)) return;
  // Another device of our account may have made it already; and it must pass the rules like any change.
  if (checkChange(head.state, next, self) !== null || next.members.length > MAX_GROUP_MEMBERS) return;
  const hash = stateHash(ctx.provider, group.groupId, next);
  if (group.states.some((k) => bytesEqual(k.hash, hash))) return;
  updateGroup(ctx, group.groupId, change, pending);
}

/**
 * A device that holds nothing but the state it joined from (its anchor)
 * cannot judge a change of a state it never saw, yet its inviter may have
 * lost a tie and made the invitation again on top of the winner (§13.4).
 * Such a device takes a later state that names it, from an admin of its
 * anchor, as its new anchor: the same trust it gave the invitation itself.
 * A device that has applied any change never does this.
 */
function reanchor(
  ctx: Context,
  group: GroupRecord,
  from: DeviceCertificate,
  state: GroupStateCore,
  hash: Uint8Array,
  pending: Pending,
): boolean {
  const [anchor, ...rest] = group.states;
  if (!anchor || rest.length > 0 || anchor.author === null) return false;
  if (state.revision <= anchor.state.revision || !has(anchor.state.admins, from.accountKey)) return false;
  if (!has(state.members, ctx.self.accountKey) || !has(state.admins, from.accountKey)) return false;
  moveHead(ctx, group, [{ state, hash, author: state.author, valid: true }], from.accountKey, pending);
  return true;
}

function joinGroup(
  ctx: Context,
  from: DeviceCertificate,
  groupId: Uint8Array,
  state: GroupState,
  core: GroupStateCore,
  hash: Uint8Array,
  pending: Pending,
): void {
  const self = ctx.self.accountKey;
  // A state that does not name us is none of our business (for example the update that removed us, after we deleted the group).
  if (!has(state.members, self) || !has(state.members, from.accountKey)) return;
  if (!has(state.admins, from.accountKey) && !bytesEqual(from.accountKey, self)) {
    pending.add('warning', { code: 'NOT_GROUP_ADMIN', message: 'an invitation to a group from a member that is not its admin' });
    return;
  }
  let session: GroupSession;
  try {
    session = GroupSession.create(ctx.device, [], { groupId, epoch: state.epoch, provider: ctx.provider });
  } catch (e) {
    if (!isParleyError(e)) throw e;
    pending.add('warning', { code: e.code, message: 'an invitation to a group was refused' });
    return;
  }
  const group = record({
    groupId,
    states: [{ state: core, hash, author: core.author, valid: true }],
    session,
    generation: 0,
    distributedTo: [],
  });
  saveWithSession(ctx, group);
  pending.add('group-change', changeEvent(groupId, [], from.accountKey, core));
}

/** Saves a group, forgetting who had our chain when the chain changed (a rotation: everyone needs the new one). */
function saveWithSession(ctx: Context, g: GroupRecord): GroupRecord {
  const generation = g.session.sendingPosition.generation;
  const saved = { ...g, generation, distributedTo: generation === g.generation ? g.distributedTo : [] };
  saveGroup(ctx.store, saved);
  return saved;
}

/** Accepts a sender's chain (the content arrived on a one-to-one session with `sender`). Call inside a transaction. */
export function applyDistribution(
  ctx: Context,
  sender: DeviceCertificate,
  groupId: Uint8Array,
  distribution: Uint8Array,
  state: GroupState,
  pending: Pending,
): void {
  // The state rides along for a device that does not hold the group yet (a
  // newly linked one); a group we hold changes only through group-updates,
  // which carry their author.
  if (!loadGroup(ctx.store, groupId, ctx.provider)) applyGroupState(ctx, sender, groupId, state, pending);
  const group = loadGroup(ctx.store, groupId, ctx.provider);
  if (!group || !has(group.members, sender.accountKey)) return;
  // receive.ts already refuses senders outside the trusted device list; this
  // keeps a revoked device of a member from re-entering the group even if
  // that ever changes.
  const trusted = loadDevices(ctx.store, sender.accountKey, ctx.provider).trusted;
  if (!trusted.some((c) => deviceKey(c) === deviceKey(sender))) return;
  const member: GroupMember = { accountKey: sender.accountKey, deviceId: sender.deviceId };
  if (!group.session.isMember(member)) {
    if (group.session.members.length >= groupLimits.MAX_GROUP_MEMBER_DEVICES) {
      pending.add('warning', { code: 'OVERSIZED', message: 'a group distribution from a device past the member-device limit' });
      return;
    }
    group.session.changeMembers({ add: [member] });
  }
  try {
    group.session.processDistribution(distribution, sender);
  } catch (e) {
    const code = (e as { code?: string }).code ?? 'UNKNOWN';
    if (code !== 'DUPLICATE_MESSAGE') pending.add('warning', { code, message: 'a group distribution was not accepted' });
  }
  saveWithSession(ctx, group);
}

/**
 * Makes the GroupSession's devices the trusted devices of the member
 * accounts. Returns the devices, ours left out. Call inside a transaction.
 */
function syncDevices(ctx: Context, group: GroupRecord): DeviceCertificate[] {
  const desired: DeviceCertificate[] = [];
  for (const account of group.members) desired.push(...loadDevices(ctx.store, account, ctx.provider).trusted);
  const want = new Set(desired.map((c) => deviceKey(c)));
  const selfKey = deviceKey(ctx.self);
  const current = group.session.members.filter((m) => deviceKey(m) !== selfKey);
  const currentKeys = new Set(current.map((m) => deviceKey(m)));
  const add = desired.filter((c) => !currentKeys.has(deviceKey(c))).map((c) => ({ accountKey: c.accountKey, deviceId: c.deviceId }));
  const remove = current.filter((m) => !want.has(deviceKey(m)));
  if (add.length || remove.length) group.session.changeMembers({ add, remove });
  return desired;
}

/** Fetches (when stale) the device lists of every member account, before a group send. */
export async function prepareGroupSend(ctx: Context, groupId: Uint8Array, pending: Pending): Promise<void> {
  const group = requireGroup(ctx, groupId);
  for (const account of group.members) await devicesFor(ctx, account, pending);
}

/**
 * Encrypts one content for the group and queues it: first our chain to the
 * devices that lack it, then the group message to every device of every
 * member account. Records it in history when `record`. Returns the group
 * message's outbox key (as queueDirect does). Call inside a transaction.
 */
export function queueGroupContent(ctx: Context, groupId: Uint8Array, content: Content, record: boolean): string {
  const group = requireGroup(ctx, groupId);
  const expireTimer = content.expireTimer;
  const devices = syncDevices(ctx, group);
  const generation = group.session.sendingPosition.generation;
  const had = generation === group.generation ? group.distributedTo : [];
  const hadKeys = new Set(had.map((d) => deviceKey(d)));
  const lacking = devices.filter((c) => !hadKeys.has(deviceKey(c))).map((c) => ({ accountKey: c.accountKey, deviceId: c.deviceId }));
  const before = lacking.length ? group.session.distribution(lacking) : null;
  if (!content.group || !bytesEqual(content.group, groupId)) throw new TypeError('"content" expected to name this group');
  const encoded = encodeContent(content);
  // v2 (franked) only when every member device runs v2 (franking/group-version.ts).
  const sealed = group.session.encrypt(encoded, { version: groupMessageVersion(ctx, devices) });
  // A rotation inside encrypt starts a new chain: then every device needs it, and the earlier distribution is moot.
  const distribution = sealed.distribution ?? before;
  const state = stateOf(group);
  if (distribution?.recipients.length) {
    const d = newContent(ctx, { type: 'distribution', distribution: distribution.bytes, state }, { group: groupId });
    const dEncoded = encodeContent(d);
    const accounts = unique(distribution.recipients.map((r) => r.accountKey));
    for (const account of accounts) {
      const own = bytesEqual(account, ctx.self.accountKey);
      queueEntry(ctx, {
        messageId: d.messageId,
        attempt: 0,
        accounts: [account],
        toContacts: own ? null : dEncoded,
        toOwnDevices: own ? dEncoded : null,
        groupMessage: null,
        freshSession: null,
        keepForRetry: true,
        conversation: null,
        ttlSeconds: null,
      });
    }
  }
  const conversation = conversationId({ kind: 'group', groupId });
  const key = queueEntry(ctx, {
    messageId: content.messageId,
    attempt: 0,
    accounts: group.members,
    // Kept for retry requests: a member that cannot read the group message gets this content one-to-one.
    toContacts: encoded,
    toOwnDevices: encoded,
    groupMessage: sealed.message,
    groupFrankingTag: sealed.frankingTag,
    freshSession: null,
    keepForRetry: true,
    conversation: record ? conversation : null,
    ttlSeconds: expireTimer > 0 ? expireTimer : null,
  });
  if (record) recordOutgoing(ctx, conversation, content);
  const distributedTo: DeviceAddress[] = devices.map((c) => ({ accountKey: c.accountKey, deviceId: c.deviceId }));
  saveGroup(ctx.store, { ...group, generation: group.session.sendingPosition.generation, distributedTo });
  return key;
}

function unique(keys: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const k of keys) if (!has(out, k)) out.push(k);
  return out;
}
