/**
 * Who may change a group, and which of several changes every device keeps.
 * spec/08-groups.md §13. Pure functions over plain data: no store, no
 * session, no clock.
 *
 * A group's membership is a chain of states. Each state names the state it
 * changes by that state's hash (`parent`) and has a revision exactly one
 * higher, so a change cannot skip ahead, run the revision out, or apply to
 * a state other than the one its author saw. A change is accepted only if
 * its author may make it in the parent state: an admin may make any change;
 * any other member may only leave. Two changes of one parent (made at the
 * same time by two admins) are both kept; every device picks the same head
 * (headOf: a change that removes the author of a competing one wins, then
 * the senior admin's, then the lowest state hash; a longer branch does not
 * win by length). A change
 * whose parent is not held yet is kept aside, bounded, until the parent
 * arrives.
 *
 * This module knows nothing of sessions, chains or the relay.
 */
import { type CryptoProvider, bytesEqual, compareBytes, encodeCbor } from '@parley/core';
import { GROUP_STATE_HASH_BYTES, MAX_GROUP_REVISION } from '../content/content.ts';

/** The hashed part of a group state (the wire form adds the sender's epoch). */
export interface GroupStateCore {
  readonly revision: number;
  readonly name: string;
  readonly members: readonly Uint8Array[];
  readonly admins: readonly Uint8Array[];
  readonly parent: Uint8Array;
  /** The account that made the change (32 zero bytes: unknown, for a state migrated from version 1). */
  readonly author: Uint8Array;
}

/** A state this device holds, with the account that delivered (authored) it. */
export interface KnownState {
  readonly state: GroupStateCore;
  readonly hash: Uint8Array;
  /** `state.author`, or null for a state migrated from a version-1 record (no author known). */
  readonly author: Uint8Array | null;
  /** True when its chain of parents reaches the state this device started from, every step allowed. */
  readonly valid: boolean;
}

/**
 * States kept per group: the head, its recent ancestors (the parents of
 * concurrent changes that may still arrive) and changes waiting for their
 * parent. Eight covers several admins changing the group at once; each state
 * is at most about 66 KB (1,000 members and admins), so a record stays
 * under about half a megabyte in the worst case.
 */
export const MAX_KNOWN_GROUP_STATES = 8;

/** The parent of a group's first state. */
export const ROOT_PARENT = new Uint8Array(GROUP_STATE_HASH_BYTES);

/** The author of a state migrated from a version-1 record, which recorded none. */
export const UNKNOWN_AUTHOR = new Uint8Array(32);

/** A held state for `state`: its hash and its author (null when unknown). */
export function knownState(provider: CryptoProvider, groupId: Uint8Array, state: GroupStateCore, valid: boolean): KnownState {
  const author = bytesEqual(state.author, UNKNOWN_AUTHOR) ? null : state.author;
  return { state, hash: stateHash(provider, groupId, state), author, valid };
}

const STATE_HASH_TAG = 'parley/group-state';

/**
 * The state hash: SHA-256(CBOR(["parley/group-state", 1, groupId, revision,
 * name, members, admins, parent, author])), deterministic CBOR (spec 01).
 * The group id is inside, so a state can never stand for one of another
 * group; the author is inside, so two admins' identical changes are two
 * states, each ranked by its own author (headOf).
 */
export function stateHash(provider: CryptoProvider, groupId: Uint8Array, s: GroupStateCore): Uint8Array {
  return provider.backend.sha256(
    encodeCbor([STATE_HASH_TAG, 1, groupId, s.revision, s.name, [...s.members], [...s.admins], s.parent, s.author]),
  );
}

const has = (list: readonly Uint8Array[], key: Uint8Array) => list.some((k) => bytesEqual(k, key));
const sameList = (a: readonly Uint8Array[], b: readonly Uint8Array[]) =>
  a.length === b.length && a.every((k, i) => bytesEqual(k, b[i] as Uint8Array));

/** Why a change is refused (the client error codes of spec/10-client.md §9). */
export type Refusal =
  /** The author may not make this change in the parent state. */
  | { readonly code: 'NOT_GROUP_ADMIN'; readonly message: string }
  /** Not exactly one revision after its parent, or its parent is not held. */
  | { readonly code: 'GROUP_OUT_OF_ORDER'; readonly message: string }
  /** The parent is at the last revision. */
  | { readonly code: 'GROUP_LIMIT'; readonly message: string };

/**
 * Whether `author` may turn `parent` into `child` (the hash link is the
 * caller's to check). An admin of the parent may make any change that keeps
 * at least one admin; a member that is not an admin may only leave: the
 * child is the parent without it, everything else unchanged.
 */
export function checkChange(parent: GroupStateCore, child: GroupStateCore, author: Uint8Array): Refusal | null {
  if (parent.revision >= MAX_GROUP_REVISION) return { code: 'GROUP_LIMIT', message: 'the group is at its last revision' };
  if (child.revision !== parent.revision + 1) {
    return { code: 'GROUP_OUT_OF_ORDER', message: 'a group change must be exactly one revision after the state it changes' };
  }
  if (!has(parent.members, author)) return { code: 'NOT_GROUP_ADMIN', message: 'a group change from a non-member' };
  if (child.admins.length === 0 || !child.admins.every((a) => has(child.members, a))) {
    return { code: 'NOT_GROUP_ADMIN', message: 'a group change must keep at least one admin, every admin a member' };
  }
  if (has(parent.admins, author)) return null;
  const left = parent.members.filter((m) => !bytesEqual(m, author));
  if (child.name === parent.name && sameList(child.members, left) && sameList(child.admins, parent.admins)) return null;
  return { code: 'NOT_GROUP_ADMIN', message: 'only an admin may change a group (a member may only leave)' };
}

/**
 * The head: walk down from the oldest valid state, at each fork taking one
 * child, to a state with no valid child. At a fork, a child whose author is
 * removed somewhere under a competing child loses to it (unless the
 * removal is mutual): a removed admin cannot undo its removal by changing
 * an older state, however many changes it piles on that branch. Between the
 * children left, the author who became admin first in the parent (its
 * place in the parent's admin list) wins, then the lowest state hash: an
 * author cannot pick its rank, so a removed admin cannot win a counter-
 * removal made after the fact by grinding its hash. Length never wins by
 * itself. The result depends only on the set of states, not on arrival
 * order.
 */
export function headOf(states: readonly KnownState[]): KnownState {
  const valid = states.filter((k) => k.valid);
  const childrenOf = (k: KnownState) => valid.filter((c) => bytesEqual(c.state.parent, k.hash));
  const roots = valid.filter((k) => !valid.some((p) => bytesEqual(p.hash, k.state.parent)));
  const lowest = Math.min(...roots.map((k) => k.state.revision));
  let head = pick(
    null,
    roots.filter((k) => k.state.revision === lowest),
    childrenOf,
  );
  if (!head) throw new Error('group record holds no valid state'); // the loader refuses such records
  for (let i = 0; i < valid.length; i++) {
    const next = pick(head.state, childrenOf(head), childrenOf);
    if (!next) break;
    head = next;
  }
  return head;
}

/** One of the sibling changes of `parent` (see headOf), or undefined for none. */
function pick(
  parent: GroupStateCore | null,
  siblings: readonly KnownState[],
  childrenOf: (k: KnownState) => KnownState[],
): KnownState | undefined {
  if (siblings.length <= 1) return siblings[0];
  const subtree = (k: KnownState): KnownState[] => {
    const out = [k];
    for (let i = 0; i < out.length && i < MAX_KNOWN_GROUP_STATES; i++) out.push(...childrenOf(out[i] as KnownState));
    return out;
  };
  const removes = (k: KnownState, account: Uint8Array | null) => account !== null && subtree(k).some((t) => !has(t.state.members, account));
  const excluded = (c: KnownState) => siblings.some((d) => d !== c && removes(d, c.author) && !removes(c, d.author));
  const left = siblings.filter((c) => !excluded(c));
  const admins = parent?.admins ?? [];
  const rank = (k: KnownState) => {
    const i = k.author ? admins.findIndex((a) => bytesEqual(a, k.author as Uint8Array)) : -1;
    return i < 0 ? admins.length : i;
  };
  let best: KnownState | undefined;
  for (const k of left.length > 0 ? left : siblings) {
    if (!best || rank(k) < rank(best) || (rank(k) === rank(best) && compareBytes(k.hash, best.hash) < 0)) best = k;
  }
  return best;
}

export type AddResult =
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'refused'; readonly refusal: Refusal }
  /** Kept aside until its parent arrives; `refusal` says why it is not applied now. */
  | { readonly kind: 'pending'; readonly states: readonly KnownState[]; readonly refusal: Refusal }
  | { readonly kind: 'added'; readonly states: readonly KnownState[] };

/**
 * Adds a change delivered by `author` to the states held. A change whose
 * parent is held and valid is checked now (and refused for good if not
 * allowed); one whose parent is not held waits, bounded, and is checked when
 * it arrives. Changes that were waiting for this one are checked in turn.
 * Returns the new list; the input is not modified.
 */
export function addState(states: readonly KnownState[], state: GroupStateCore, hash: Uint8Array, author: Uint8Array): AddResult {
  if (states.some((k) => bytesEqual(k.hash, hash))) return { kind: 'duplicate' };
  // Only its author delivers a change: states are authenticated by the session they arrive on.
  if (!bytesEqual(state.author, author)) {
    return { kind: 'refused', refusal: { code: 'NOT_GROUP_ADMIN', message: 'a group change sent by another account than its author' } };
  }
  const head = headOf(states);
  const parent = states.find((k) => bytesEqual(k.hash, state.parent));
  if (!parent || !parent.valid) {
    // Cannot be judged yet. Accept to wait only what could still become the head, from a member.
    const refusal: Refusal = { code: 'GROUP_OUT_OF_ORDER', message: 'a group change of a state this device does not hold' };
    if (state.revision <= head.state.revision - MAX_KNOWN_GROUP_STATES) return { kind: 'refused', refusal };
    if (state.revision > head.state.revision + MAX_KNOWN_GROUP_STATES) return { kind: 'refused', refusal };
    if (!has(head.state.members, author))
      return { kind: 'refused', refusal: { code: 'NOT_GROUP_ADMIN', message: 'a group change from a non-member' } };
    return { kind: 'pending', refusal, states: bound([...states, { state, hash, author, valid: false }]) };
  }
  const refusal = checkChange(parent.state, state, author);
  if (refusal) return { kind: 'refused', refusal };
  let out: KnownState[] = [...states, { state, hash, author, valid: true }];
  out = validateWaiting(out);
  return { kind: 'added', states: bound(out) };
}

/** Checks waiting changes whose parent became valid; drops the ones not allowed. */
function validateWaiting(states: KnownState[]): KnownState[] {
  let out = states;
  for (let changed = true; changed; ) {
    changed = false;
    for (const k of out) {
      if (k.valid) continue;
      const parent = out.find((p) => p.valid && bytesEqual(p.hash, k.state.parent));
      if (!parent) continue;
      const ok = k.author !== null && checkChange(parent.state, k.state, k.author) === null;
      out = ok ? out.map((x) => (x === k ? { ...k, valid: true } : x)) : out.filter((x) => x !== k);
      changed = true;
      break;
    }
  }
  return out;
}

/**
 * Keeps at most MAX_KNOWN_GROUP_STATES. Waiting changes go first (oldest
 * first, so a member flooding changes of unknown states cannot push out
 * the ancestors a real concurrent change needs); then every state off the
 * head's line (the branches that lost), all at once, so that no fork is
 * decided again with only some of its branches; then the head's oldest
 * ancestors. Never the head, and never a fork point while its branches
 * stay: dropping one would leave the losing branch as a root of its own.
 */
function bound(states: KnownState[]): KnownState[] {
  let out = [...states];
  while (out.length > MAX_KNOWN_GROUP_STATES) {
    const waiting = out.findIndex((k) => !k.valid);
    if (waiting >= 0) {
      out.splice(waiting, 1);
      continue;
    }
    const line: KnownState[] = [];
    for (let k: KnownState | undefined = headOf(out); k && line.length <= out.length; ) {
      line.push(k);
      const parent: Uint8Array = k.state.parent;
      k = out.find((x) => bytesEqual(x.hash, parent));
    }
    if (line.length < out.length) {
      out = out.filter((k) => line.includes(k));
      continue;
    }
    // One line from the oldest state to the head: drop the oldest.
    out.splice(out.indexOf(line[line.length - 1] as KnownState), 1);
  }
  return out;
}
