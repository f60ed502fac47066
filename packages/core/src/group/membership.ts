/**
 * Membership changes and rotation as pure functions. spec/08-groups.md §6.
 *
 * Who is in the group is decided by the application; these functions apply
 * its decision to one device's state and say which distribution must go to
 * whom:
 *  - adding devices: nothing rotates; the newcomers get my current chain at
 *    its current iteration, so they can read what I send from now on and
 *    nothing I sent before;
 *  - removing devices: the epoch advances, the removed devices' chains are
 *    deleted, chains of the previous epoch enter their grace window, older
 *    ones are deleted, and my chain rotates; the new chain goes to every
 *    remaining device (and to newcomers of the same change), never to the
 *    removed ones;
 *  - rotating: a new chain (same epoch) for every other member.
 * Each returns a new state; the input is never modified.
 */
import type { CryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { inspectSymbol, redacted } from '../keys/redact.ts';
import { EPOCH_GRACE_EPOCHS, MAX_GROUP_COUNTER, MAX_GROUP_MEMBER_DEVICES } from './limits.ts';
import { type GroupMember, checkMember, copyMember, memberKey } from './member.ts';
import { graceEndFrom } from './receive.ts';
import { encodeMyDistribution, newSendingChain } from './send.ts';
import type { GroupState, SenderChains, SkippedKey } from './state.ts';

/**
 * A distribution to send: the same bytes, through each recipient's
 * one-to-one session. The bytes hold a chain key, so the object prints
 * without them (toString, JSON, util.inspect).
 */
export class GroupDistribution {
  /** The plaintext for `SessionRecord.encrypt` (or `sealDistribution`). Never send it in the clear. */
  readonly bytes: Uint8Array;
  readonly recipients: readonly GroupMember[];

  constructor(bytes: Uint8Array, recipients: readonly GroupMember[]) {
    this.bytes = bytes;
    this.recipients = recipients;
  }

  toString(): string {
    return redacted('GroupDistribution', { recipients: this.recipients.length });
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

export interface MembershipChange {
  readonly add?: readonly GroupMember[];
  readonly remove?: readonly GroupMember[];
}

/** Every member device other than me. */
export function othersOf(state: GroupState): GroupMember[] {
  const out: GroupMember[] = [];
  for (const [key, m] of state.members) if (key !== state.selfKey) out.push(copyMember(m));
  return out;
}

/**
 * Applies one membership decision. Removals are applied first (epoch + 1,
 * rotation), then additions; one distribution covers both. Misuse (adding a
 * member twice, removing a non-member or myself) is a TypeError/RangeError;
 * more than MAX_GROUP_MEMBER_DEVICES is OVERSIZED; either changes nothing.
 */
export function changeMembers(
  p: CryptoProvider,
  state: GroupState,
  change: MembershipChange,
): { state: GroupState; distribution: GroupDistribution } {
  const add = (change.add ?? []).map((m, i) => checkMember(m, `add[${i}]`));
  const remove = (change.remove ?? []).map((m, i) => checkMember(m, `remove[${i}]`));
  const addKeys = new Set<string>();
  for (const m of add) {
    const key = memberKey(m);
    if (state.members.has(key) || addKeys.has(key)) throw new RangeError('"add" names a device that is already a member (or twice)');
    addKeys.add(key);
  }
  const removeKeys = new Set<string>();
  for (const m of remove) {
    const key = memberKey(m);
    if (key === state.selfKey) throw new RangeError('"remove" names this device: to leave a group, delete its GroupSession');
    if (!state.members.has(key) || removeKeys.has(key)) throw new RangeError('"remove" names a device that is not a member (or twice)');
    removeKeys.add(key);
  }
  const size = state.members.size - removeKeys.size + addKeys.size;
  // Typed, not misuse: the count follows other accounts' device lists, which a caller does not control.
  if (size > MAX_GROUP_MEMBER_DEVICES) {
    fail('OVERSIZED', `a group holds at most ${MAX_GROUP_MEMBER_DEVICES} member devices`, { limit: MAX_GROUP_MEMBER_DEVICES });
  }

  const members = new Map<string, GroupMember>();
  for (const [key, m] of state.members) if (!removeKeys.has(key)) members.set(key, m);
  for (const m of add) members.set(memberKey(m), m);

  if (removeKeys.size === 0) {
    const next: GroupState = { ...state, members };
    return { state: next, distribution: new GroupDistribution(encodeMyDistribution(next), add.map(copyMember)) };
  }

  if (state.epoch >= MAX_GROUP_COUNTER) fail('INVALID_STATE', 'no epochs left in this group');
  const epoch = state.epoch + 1;
  const oldest = epoch - EPOCH_GRACE_EPOCHS;
  const receiving = new Map<string, SenderChains>();
  for (const [key, entry] of state.receiving) {
    if (removeKeys.has(key)) continue;
    let floor = entry.floor;
    for (const c of entry.chains) if (c.epoch < oldest) floor = Math.max(floor, c.generation + 1);
    const chains = entry.chains
      .filter((c) => c.generation >= floor)
      .map((c) => (c.epoch < epoch && c.graceEnd === null ? { ...c, graceEnd: graceEndFrom(c.iteration) } : c));
    receiving.set(key, { member: entry.member, floor, chains });
  }
  const skipped = new Map<string, SkippedKey>();
  for (const [id, k] of state.skipped) {
    const entry = receiving.get(memberKey(k.member));
    if (entry?.chains.some((c) => c.generation === k.generation)) skipped.set(id, k);
  }
  const next: GroupState = {
    ...state,
    epoch,
    members,
    receiving,
    skipped,
    sending: newSendingChain(p, state.sending.generation + 1, epoch),
  };
  return { state: next, distribution: new GroupDistribution(encodeMyDistribution(next), othersOf(next)) };
}

/** A new chain for me in the same epoch, for every other member. */
export function rotate(p: CryptoProvider, state: GroupState): { state: GroupState; distribution: GroupDistribution } {
  const next: GroupState = { ...state, sending: newSendingChain(p, state.sending.generation + 1, state.epoch) };
  return { state: next, distribution: new GroupDistribution(encodeMyDistribution(next), othersOf(next)) };
}
