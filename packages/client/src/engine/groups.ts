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
 * Membership changes are decided by members: any member may send a
 * group-update with a higher revision (ties: the same revision from two
 * members at once is resolved in favour of the larger CBOR([name, members]),
 * so every device converges on one).
 */
import { type DeviceCertificate, type GroupMember, GroupSession, encodeCbor } from '@parley/core';
import { bytesEqual, compareBytes } from '../bytes.ts';
import { type Content, type ContentBody, type GroupState, encodeContent } from '../content/content.ts';
import { ClientError } from '../errors.ts';
import { type DeviceAddress, accountId, deviceKey } from '../ids.ts';
import { conversationId } from '../state/conversation-id.ts';
import { loadDevices } from '../state/devices.ts';
import { type GroupRecord, deleteGroup, loadGroup, saveGroup } from '../state/groups.ts';
import { MessageStatus, addMessage } from '../state/history.ts';
import { newContent, queueEntry } from './compose.ts';
import type { Context, Pending } from './context.ts';
import { devicesFor } from './directory.ts';

const has = (list: readonly Uint8Array[], key: Uint8Array) => list.some((k) => bytesEqual(k, key));

export function stateOf(g: GroupRecord): GroupState {
  return { revision: g.revision, name: g.name, members: g.members, epoch: g.session.epoch };
}

/** Creates a group with us and `others` as members; queues the group-update to everyone. Call inside a transaction. */
export function createGroup(ctx: Context, name: string, others: readonly Uint8Array[], pending: Pending): Uint8Array {
  const members = [ctx.self.accountKey, ...others.filter((a) => !bytesEqual(a, ctx.self.accountKey))];
  const session = GroupSession.create(ctx.device, [], { provider: ctx.provider });
  const group: GroupRecord = {
    groupId: session.groupId,
    name,
    revision: 1,
    members,
    session,
    generation: session.sendingPosition.generation,
    distributedTo: [],
  };
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

/** Changes name or members (a new revision), applies it here and queues it to old and new members. Call inside a transaction. */
export function updateGroup(
  ctx: Context,
  groupId: Uint8Array,
  change: { name?: string; add?: readonly Uint8Array[]; remove?: readonly Uint8Array[] },
  pending: Pending,
): void {
  const group = requireGroup(ctx, groupId);
  let members = group.members.filter((m) => !has(change.remove ?? [], m));
  for (const a of change.add ?? []) if (!has(members, a)) members = [...members, a];
  const state: GroupState = { revision: group.revision + 1, name: change.name ?? group.name, members, epoch: group.session.epoch };
  applyGroupState(ctx, ctx.device.certificate, groupId, state, pending);
  const after = loadGroup(ctx.store, groupId, ctx.provider);
  const recipients = [...group.members, ...members.filter((m) => !has(group.members, m))];
  announce(ctx, after ?? { ...group, ...state }, recipients);
}

function announce(
  ctx: Context,
  group: Pick<GroupRecord, 'groupId' | 'revision' | 'name' | 'members'> & { session?: GroupSession },
  to: readonly Uint8Array[],
): void {
  const state: GroupState = { revision: group.revision, name: group.name, members: group.members, epoch: group.session?.epoch ?? 0 };
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

/**
 * Applies a group state received from `from` (or made here). Creates the
 * group when we are invited, deletes it when we are removed, and removes the
 * devices of departed accounts from the GroupSession (core then rotates our
 * chain, so they cannot read what follows). Call inside a transaction.
 */
export function applyGroupState(ctx: Context, from: DeviceCertificate, groupId: Uint8Array, state: GroupState, pending: Pending): void {
  const group = loadGroup(ctx.store, groupId, ctx.provider);
  if (group) {
    if (!has(group.members, from.accountKey)) return;
    if (state.revision < group.revision) return;
    // Two members changed the group at once: every device keeps the same one of the two.
    if (state.revision === group.revision && compareBytes(tieBreak(state), tieBreak(group)) <= 0) return;
  } else if (!has(state.members, ctx.self.accountKey) || !has(state.members, from.accountKey)) {
    return;
  }
  const before = group?.members ?? [];
  const added = state.members.filter((m) => !has(before, m));
  const removed = before.filter((m) => !has(state.members, m));
  const conversation = conversationId({ kind: 'group', groupId });
  const event = {
    conversation,
    name: state.name,
    members: state.members.map(accountId),
    added: added.map(accountId),
    removed: removed.map(accountId),
    by: accountId(from.accountKey),
  };
  if (!has(state.members, ctx.self.accountKey)) {
    deleteGroup(ctx.store, groupId);
    pending.add('group-change', event);
    return;
  }
  const session = group?.session ?? GroupSession.create(ctx.device, [], { groupId, epoch: state.epoch, provider: ctx.provider });
  const gone = session.members.filter((m) => !bytesEqual(m.accountKey, ctx.self.accountKey) && has(removed, m.accountKey));
  if (gone.length) session.changeMembers({ remove: gone });
  saveWithSession(ctx, {
    groupId,
    name: state.name,
    revision: state.revision,
    members: state.members,
    session,
    generation: group?.generation ?? 0,
    distributedTo: group?.distributedTo ?? [],
  });
  pending.add('group-change', event);
}

/** What decides between two states of one revision: CBOR([name, members]), the larger wins. */
function tieBreak(g: Pick<GroupState, 'name' | 'members'>): Uint8Array {
  return encodeCbor([g.name, [...g.members]]);
}

/** Saves a group, forgetting who had our chain when the chain changed (a rotation: everyone needs the new one). */
function saveWithSession(ctx: Context, g: GroupRecord): void {
  const generation = g.session.sendingPosition.generation;
  saveGroup(ctx.store, { ...g, generation, distributedTo: generation === g.generation ? g.distributedTo : [] });
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
  applyGroupState(ctx, sender, groupId, state, pending);
  const group = loadGroup(ctx.store, groupId, ctx.provider);
  if (!group || !has(group.members, sender.accountKey)) return;
  // receive.ts already refuses senders outside the trusted device list; this
  // keeps a revoked device of a member from re-entering the group even if
  // that ever changes.
  const trusted = loadDevices(ctx.store, sender.accountKey, ctx.provider).trusted;
  if (!trusted.some((c) => deviceKey(c) === deviceKey(sender))) return;
  const member: GroupMember = { accountKey: sender.accountKey, deviceId: sender.deviceId };
  if (!group.session.isMember(member)) group.session.changeMembers({ add: [member] });
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
 * member account. Records it in history. Call inside a transaction.
 */
export function queueGroupContent(ctx: Context, groupId: Uint8Array, body: ContentBody, expireTimer: number, record: boolean): Content {
  const group = requireGroup(ctx, groupId);
  const devices = syncDevices(ctx, group);
  const generation = group.session.sendingPosition.generation;
  const had = generation === group.generation ? group.distributedTo : [];
  const hadKeys = new Set(had.map((d) => deviceKey(d)));
  const lacking = devices.filter((c) => !hadKeys.has(deviceKey(c))).map((c) => ({ accountKey: c.accountKey, deviceId: c.deviceId }));
  const before = lacking.length ? group.session.distribution(lacking) : null;
  const content = newContent(ctx, body, { group: groupId, expireTimer });
  const encoded = encodeContent(content);
  const sealed = group.session.encrypt(encoded);
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
  queueEntry(ctx, {
    messageId: content.messageId,
    attempt: 0,
    accounts: group.members,
    // Kept for retry requests: a member that cannot read the group message gets this content one-to-one.
    toContacts: encoded,
    toOwnDevices: encoded,
    groupMessage: sealed.message,
    freshSession: null,
    keepForRetry: true,
    conversation: record ? conversation : null,
    ttlSeconds: expireTimer > 0 ? expireTimer : null,
  });
  if (record) {
    addMessage(ctx.store, {
      conversation,
      outgoing: true,
      sender: ctx.self,
      content,
      storedAt: ctx.clock(),
      status: MessageStatus.queued,
      expiresAt: expireTimer > 0 ? ctx.clock() + expireTimer * 1000 : null,
    });
  }
  const distributedTo: DeviceAddress[] = devices.map((c) => ({ accountKey: c.accountKey, deviceId: c.deviceId }));
  saveGroup(ctx.store, { ...group, generation: group.session.sendingPosition.generation, distributedTo });
  return content;
}

function unique(keys: readonly Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const k of keys) if (!has(out, k)) out.push(k);
  return out;
}
