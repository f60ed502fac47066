/**
 * Creating, changing and leaving groups: the commands behind createGroup,
 * updateGroup and leaveGroup, and the app's view of a group.
 * spec/10-client.md §4.3, spec/08-groups.md §13. The rules (who may change
 * what, the state chain) are engine/groups.ts's; these commands fetch the
 * device lists a change needs, then make it in one transaction.
 */
import { bytesEqual, toHex } from '@parley/core';
import { type ConversationRef, conversationId, parseConversationId } from '../state/conversation-id.ts';
import { headOf } from '../state/group-state.ts';
import { type GroupRecord, listGroupIds, loadGroup } from '../state/groups.ts';
import { accountId, parseAccountId } from '../state/ids.ts';
import type { Context } from './context.ts';
import { devicesFor } from './directory.ts';
import { createGroup, requireGroup, updateGroup } from './groups.ts';
import type { Command } from './run.ts';

export interface GroupInfo {
  readonly conversation: string;
  readonly name: string;
  readonly members: readonly string[];
  /** Members that may change the group (spec/08-groups.md §13). */
  readonly admins: readonly string[];
  /** The state's revision: one more at every change. */
  readonly revision: number;
  /** The state hash (hex) that the next change names as its parent. */
  readonly stateHash: string;
}

export interface GroupUpdate {
  readonly name?: string;
  readonly add?: readonly string[];
  readonly remove?: readonly string[];
  readonly addAdmins?: readonly string[];
  readonly removeAdmins?: readonly string[];
}

/** Creates a group with these member accounts (and us); resolves with its conversation id. */
export function createGroupCommand(name: string, members: readonly string[]): Command<string> {
  const keys = members.map((m, i) => parseAccountId(m, `members[${i}]`));
  return {
    async prepare(ctx, pending) {
      for (const k of keys) await devicesFor(ctx, k, pending);
    },
    commit(ctx, pending) {
      return conversationId({ kind: 'group', groupId: createGroup(ctx, name, keys, pending) });
    },
  };
}

/** Changes members, admins or the name; only an admin may (otherwise NOT_GROUP_ADMIN, and nothing changes). */
export function updateGroupCommand(ctx: Context, conversation: string, change: GroupUpdate): Command<void> {
  const ref = groupRef(conversation);
  const add = (change.add ?? []).map((m) => parseAccountId(m));
  const remove = (change.remove ?? []).map((m) => parseAccountId(m));
  const addAdmins = (change.addAdmins ?? []).map((m) => parseAccountId(m));
  const removeAdmins = (change.removeAdmins ?? []).map((m) => parseAccountId(m));
  if (remove.some((r) => bytesEqual(r, ctx.self.accountKey))) throw new TypeError('use leaveGroup to leave');
  return {
    async prepare(ctx, pending) {
      for (const k of add) await devicesFor(ctx, k, pending);
    },
    commit(ctx, pending) {
      updateGroup(ctx, ref.groupId, { name: change.name, add, remove, addAdmins, removeAdmins }, pending);
    },
  };
}

/** Leaves a group (any member may): the others are told, and the group is deleted here. */
export function leaveGroupCommand(conversation: string): Command<void> {
  const ref = groupRef(conversation);
  return {
    commit(ctx, pending) {
      updateGroup(ctx, ref.groupId, { remove: [ctx.self.accountKey] }, pending);
    },
  };
}

export function listGroups(ctx: Context): GroupInfo[] {
  return listGroupIds(ctx.store).map((groupId) => groupInfo(conversationId({ kind: 'group', groupId }), requireGroup(ctx, groupId)));
}

/** One group, or null when the conversation is not a group we hold. */
export function findGroup(ctx: Context, conversation: string): GroupInfo | null {
  const ref = parseConversationId(conversation);
  if (ref.kind !== 'group') return null;
  const g = loadGroup(ctx.store, ref.groupId, ctx.provider);
  return g ? groupInfo(conversation, g) : null;
}

function groupRef(conversation: string): Extract<ConversationRef, { kind: 'group' }> {
  const ref = parseConversationId(conversation);
  if (ref.kind !== 'group') throw new TypeError('"conversation" expected a group');
  return ref;
}

function groupInfo(conversation: string, g: GroupRecord): GroupInfo {
  const head = headOf(g.states);
  return {
    conversation,
    name: head.state.name,
    members: head.state.members.map(accountId),
    admins: head.state.admins.map(accountId),
    revision: head.state.revision,
    stateHash: toHex(head.hash),
  };
}
