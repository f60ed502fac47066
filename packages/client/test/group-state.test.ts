/**
 * The group membership rules as pure functions (spec/08-groups.md §13) and
 * the group record's versions (spec/10-client.md §7.2).
 */
import { Account, GroupSession, bytesEqual, compareBytes, defaultProvider, encodeCbor, toHex } from '@parley/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_GROUP_REVISION } from '../src/content/content.ts';
import { toBase64Url } from '../src/state/ids.ts';
import {
  type GroupStateCore,
  type KnownState,
  MAX_KNOWN_GROUP_STATES,
  ROOT_PARENT,
  UNKNOWN_AUTHOR,
  addState,
  checkChange,
  headOf,
  stateHash,
} from '../src/state/group-state.ts';
import { loadGroup, saveGroup } from '../src/state/groups.ts';
import { encodeRecord } from '../src/state/record.ts';
import { MemoryStore } from '../src/store/memory.ts';

const p = defaultProvider();
const groupId = new Uint8Array(32).fill(7);
const acct = (n: number) => new Uint8Array(32).fill(n);
const [A, B, C, D] = [acct(1), acct(2), acct(3), acct(4)] as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
const root: GroupStateCore = { revision: 1, name: 'g', members: [A, B, C], admins: [A], parent: ROOT_PARENT, author: A };
const rootHash = stateHash(p, groupId, root);
const anchor: KnownState = { state: root, hash: rootHash, author: A, valid: true };
const child = (parent: GroupStateCore, parentHash: Uint8Array, change: Partial<GroupStateCore>): GroupStateCore => ({
  ...parent,
  revision: parent.revision + 1,
  parent: parentHash,
  author: A,
  ...change,
});

describe('who may change a group (checkChange)', () => {
  it('lets an admin make any change that keeps an admin, and a member only leave', () => {
    expect(checkChange(root, child(root, rootHash, { members: [A, B, C, D], admins: [A, D] }), A)).toBeNull();
    expect(checkChange(root, child(root, rootHash, { members: [A, C] }), B)).toBeNull(); // B leaves
    expect(checkChange(root, child(root, rootHash, { members: [A, C], name: 'x' }), B)?.code).toBe('NOT_GROUP_ADMIN');
    expect(checkChange(root, child(root, rootHash, { members: [A, B] }), B)?.code).toBe('NOT_GROUP_ADMIN'); // removes C
    expect(checkChange(root, child(root, rootHash, { admins: [A, B] }), B)?.code).toBe('NOT_GROUP_ADMIN'); // self-promotion
    expect(checkChange(root, child(root, rootHash, { name: 'x' }), D)?.code).toBe('NOT_GROUP_ADMIN'); // not a member
    expect(checkChange(root, child(root, rootHash, { admins: [] }), A)?.code).toBe('NOT_GROUP_ADMIN');
    expect(checkChange(root, child(root, rootHash, { admins: [D] }), A)?.code).toBe('NOT_GROUP_ADMIN'); // admin not a member
  });

  it('wants exactly one revision more, and nothing after the last revision', () => {
    expect(checkChange(root, child(root, rootHash, { revision: 3 }), A)?.code).toBe('GROUP_OUT_OF_ORDER');
    expect(checkChange(root, child(root, rootHash, { revision: 1 }), A)?.code).toBe('GROUP_OUT_OF_ORDER');
    const last = { ...root, revision: MAX_GROUP_REVISION };
    expect(checkChange(last, child(last, rootHash, {}), A)?.code).toBe('GROUP_LIMIT');
  });
});

describe('which state every device keeps (addState, headOf)', () => {
  it('refuses a change of a held state by a non-admin, keeps one of an unknown state aside, and applies it once its parent comes', () => {
    const s2 = child(root, rootHash, { name: 'two' });
    const h2 = stateHash(p, groupId, s2);
    const s3 = child(s2, h2, { name: 'three' });
    const h3 = stateHash(p, groupId, s3);
    const s2ByB = child(root, rootHash, { name: 'two', author: B });
    expect(addState([anchor], s2ByB, stateHash(p, groupId, s2ByB), B)).toMatchObject({
      kind: 'refused',
      refusal: { code: 'NOT_GROUP_ADMIN' },
    });
    // A change delivered by another account than its author is refused too.
    expect(addState([anchor], s2, h2, B)).toMatchObject({ kind: 'refused', refusal: { code: 'NOT_GROUP_ADMIN' } });
    const waiting = addState([anchor], s3, h3, A);
    expect(waiting).toMatchObject({ kind: 'pending', refusal: { code: 'GROUP_OUT_OF_ORDER' } });
    if (waiting.kind !== 'pending') return;
    expect(headOf(waiting.states).hash).toEqual(rootHash);
    const both = addState(waiting.states, s2, h2, A);
    expect(both.kind).toBe('added');
    if (both.kind === 'added') expect(headOf(both.states).state.name).toBe('three');
    expect(addState([anchor], root, rootHash, A)).toEqual({ kind: 'duplicate' });
    // A change of an unknown state from a non-member, or far ahead, is not even kept.
    const s3ByD = { ...s3, author: D };
    expect(addState([anchor], s3ByD, stateHash(p, groupId, s3ByD), D).kind).toBe('refused');
    const far = { ...s3, revision: 1 + MAX_KNOWN_GROUP_STATES + 1 };
    expect(addState([anchor], far, stateHash(p, groupId, far), A).kind).toBe('refused');
  });

  it('a removed admin cannot undo its removal by changing an older state, however long its branch or low its hashes', () => {
    // A and B are admins; A removes B (r3). B, still an admin in r2, builds a branch of its own from r2.
    const r2 = child(root, rootHash, { admins: [A, B] });
    const h2 = stateHash(p, groupId, r2);
    const removal = child(r2, h2, { members: [A, C], admins: [A] });
    let states: readonly KnownState[] = [anchor];
    for (const [s, author] of [
      [r2, A],
      [removal, A],
    ] as const) {
      const r = addState(states, s, stateHash(p, groupId, s), author);
      if (r.kind !== 'added') throw new Error(r.kind);
      states = r.states;
    }
    let tip = r2;
    let tipHash = h2;
    for (let i = 0; i < 5; i++) {
      const s = child(tip, tipHash, { name: `b${i}`, author: B });
      const h = stateHash(p, groupId, s);
      const r = addState(states, s, h, B);
      if (r.kind === 'added') states = r.states;
      tip = s;
      tipHash = h;
    }
    expect(headOf(states).state.members).toEqual([A, C]);
    // A concurrent change by A's side that does not remove B is decided by the hash, as any tie.
  });

  it('keeps the head a fork chose once old states are dropped (the losing branch never becomes a root)', () => {
    // A and B (admins, A first) change r2 at once; A's wins by rank whatever the hashes.
    const r2 = child(root, rootHash, { admins: [A, B] });
    const h2 = stateHash(p, groupId, r2);
    let states: readonly KnownState[] = [anchor];
    const add = (s: GroupStateCore) => {
      const r = addState(states, s, stateHash(p, groupId, s), s.author);
      if (r.kind !== 'added') throw new Error(r.kind);
      states = r.states;
    };
    add(r2);
    // Try names until B's change has the lower hash, so only the rank can make A's win.
    let byA = child(r2, h2, { name: 'a' });
    let byB = child(r2, h2, { name: 'b', author: B });
    for (let i = 0; compareBytes(stateHash(p, groupId, byB), stateHash(p, groupId, byA)) > 0; i++) byB = { ...byB, name: `b${i}` };
    add(byA);
    add(byB);
    expect(headOf(states).state.name).toBe('a');
    // Many more changes on A's line: older states are dropped, the head follows A's line.
    for (let i = 0; i < 2 * MAX_KNOWN_GROUP_STATES; i++) {
      const head = headOf(states);
      byA = child(head.state, head.hash, { name: `a${i}` });
      add(byA);
      expect(headOf(states).state.name).toBe(`a${i}`);
      expect(states.length).toBeLessThanOrEqual(MAX_KNOWN_GROUP_STATES);
    }
  });

  it('never holds more than MAX_KNOWN_GROUP_STATES, whatever a member floods it with, and keeps the head', () => {
    let states: readonly KnownState[] = [anchor];
    for (let i = 0; i < 50; i++) {
      const orphan = { ...root, revision: 2 + (i % 5), parent: new Uint8Array(32).fill(i + 1), name: `o${i}`, author: B };
      const r = addState(states, orphan, stateHash(p, groupId, orphan), B);
      if (r.kind === 'pending') states = r.states;
    }
    expect(states.length).toBeLessThanOrEqual(MAX_KNOWN_GROUP_STATES);
    expect(headOf(states).hash).toEqual(rootHash);
    // A real change still lands (its parent, the head, was never evicted).
    const s2 = child(root, rootHash, { name: 'real' });
    const r = addState(states, s2, stateHash(p, groupId, s2), A);
    expect(r.kind).toBe('added');
    if (r.kind === 'added') expect(headOf(r.states).state.name).toBe('real');
  });

  it('ends on the same head whatever order the changes of several admins arrive in (property)', () => {
    // A history: each step, an admin of a random earlier state changes it (admins A, B, C from revision 2 on).
    const arb = fc.record({
      steps: fc.array(fc.record({ parent: fc.nat(), author: fc.constantFrom(A, B, C), name: fc.string({ maxLength: 3 }) }), {
        minLength: 1,
        maxLength: MAX_KNOWN_GROUP_STATES - 2,
      }),
      order: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
      forged: fc.boolean(),
    });
    const promoted = child(root, rootHash, { admins: [A, B, C] });
    const promotedHash = stateHash(p, groupId, promoted);
    fc.assert(
      fc.property(arb, ({ steps, order, forged }) => {
        const made: { state: GroupStateCore; hash: Uint8Array; author: Uint8Array }[] = [
          { state: promoted, hash: promotedHash, author: A },
        ];
        for (const s of steps) {
          const parent = made[s.parent % made.length] as (typeof made)[number];
          const state = child(parent.state, parent.hash, { name: s.name, author: s.author });
          made.push({ state, hash: stateHash(p, groupId, state), author: s.author });
        }
        // A forged change by D (not a member) must never be the head, wherever it lands.
        if (forged) {
          const last = made[made.length - 1] as (typeof made)[number];
          const state = child(last.state, last.hash, { name: 'forged', members: [A, B, C, D], admins: [D], author: D });
          made.push({ state, hash: stateHash(p, groupId, state), author: D });
        }
        const deliver = (sequence: typeof made) => {
          let states: readonly KnownState[] = [anchor];
          for (const m of sequence) {
            const r = addState(states, m.state, m.hash, m.author);
            if (r.kind === 'added' || r.kind === 'pending') states = r.states;
          }
          return headOf(states);
        };
        const shuffled = [...made];
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = (order[i % order.length] as number) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j] as (typeof made)[number], shuffled[i] as (typeof made)[number]];
        }
        const inOrder = deliver(made);
        const reordered = deliver(shuffled);
        expect(toHex(reordered.hash)).toBe(toHex(inOrder.hash));
        expect(inOrder.state.name).not.toBe('forged');
        // The head is a tip: no allowed change of it was delivered.
        expect(made.some((m) => m.author !== D && bytesEqual(m.state.parent, inOrder.hash))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the group record (spec/10-client.md §7.2)', () => {
  const account = Account.generate(p);
  const device = account.createDevice(1, p);

  it('loads a version-1 record: one state, every member an admin, the zero parent; two devices migrate to the same hash', () => {
    const members = [device.accountKey, B];
    const stores = [new MemoryStore(), new MemoryStore()];
    for (const store of stores) {
      const session = GroupSession.create(device, [], { groupId, provider: p });
      store.put('groups', toBase64Url(groupId), encodeRecord('parley/client-group', ['old name', 4, members, session.serialize(), 0, []]));
    }
    const [one, two] = stores.map((s) => loadGroup(s, groupId, p));
    expect(one?.states).toHaveLength(1);
    const head = one ? headOf(one.states) : null;
    expect(head?.state).toMatchObject({
      revision: 4,
      name: 'old name',
      members,
      admins: members,
      parent: ROOT_PARENT,
      author: UNKNOWN_AUTHOR,
    });
    expect(head?.author).toBeNull();
    expect(toHex(head?.hash ?? new Uint8Array())).toBe(toHex(two ? headOf(two.states).hash : new Uint8Array()));
    // Saved again, it is a version-2 record that loads to the same state.
    if (!one) return;
    saveGroup(stores[0] as MemoryStore, one);
    const again = loadGroup(stores[0] as MemoryStore, groupId, p);
    expect(toHex(again ? headOf(again.states).hash : new Uint8Array())).toBe(toHex(head?.hash ?? new Uint8Array()));
  });

  it('stores several states (shared account table) and loads them with the same hashes, order and flags', () => {
    const store = new MemoryStore();
    const session = GroupSession.create(device, [], { groupId, provider: p });
    const self = device.accountKey;
    const s1: GroupStateCore = {
      revision: 1,
      name: 'g',
      members: [self, B, C],
      admins: [self],
      parent: ROOT_PARENT,
      author: UNKNOWN_AUTHOR,
    };
    const h1 = stateHash(p, groupId, s1);
    const s2: GroupStateCore = { ...s1, revision: 2, members: [self, C, D, B], admins: [self, D], parent: h1, author: B };
    const s2b: GroupStateCore = { ...s1, revision: 2, name: 'other', members: [C, self], parent: h1, author: B };
    const orphan: GroupStateCore = { ...s1, revision: 4, members: [A, self], admins: [A], parent: new Uint8Array(32).fill(9), author: B };
    const states: KnownState[] = [s1, s2, s2b, orphan].map((state, i) => ({
      state,
      hash: stateHash(p, groupId, state),
      author: i === 0 ? null : B,
      valid: i < 3,
    }));
    saveGroup(store, { groupId, states, members: s2.members, session, generation: 3, distributedTo: [{ accountKey: B, deviceId: 2 }] });
    const back = loadGroup(store, groupId, p);
    expect(back?.states.map((k) => [toHex(k.hash), k.author && toHex(k.author), k.valid])).toEqual(
      states.map((k) => [toHex(k.hash), k.author && toHex(k.author), k.valid]),
    );
    expect(back?.states.map((k) => k.state.members.map(toHex))).toEqual(states.map((k) => k.state.members.map(toHex)));
    expect(back?.generation).toBe(3);
    expect(back?.members.map(toHex)).toEqual(back ? headOf(back.states).state.members.map(toHex) : []);
  });

  it('refuses a record with no valid state, or of an unknown version, with a typed error', () => {
    const store = new MemoryStore();
    const session = GroupSession.create(device, [], { groupId, provider: p });
    const record = (accounts: Uint8Array[], state: unknown[]) =>
      encodeCbor(['parley/client-group', 2, session.serialize(), 0, [], accounts, [state]] as never);
    store.put('groups', toBase64Url(groupId), record([device.accountKey], [1, 'g', [0], [0], ROOT_PARENT, null, false]));
    expect(() => loadGroup(store, groupId, p)).toThrow(expect.objectContaining({ code: 'BAD_RECORD' }));
    // An index past the account table, an account twice in a list, or twice in the table.
    for (const [accounts, members] of [
      [[device.accountKey], [1]],
      [[device.accountKey], [0, 0]],
      [[device.accountKey, device.accountKey], [0]],
    ] as [Uint8Array[], number[]][]) {
      store.put('groups', toBase64Url(groupId), record(accounts, [1, 'g', members, [0], ROOT_PARENT, null, true]));
      expect(() => loadGroup(store, groupId, p)).toThrow(expect.objectContaining({ code: 'BAD_RECORD' }));
    }
    store.put('groups', toBase64Url(groupId), encodeCbor(['parley/client-group', 3]));
    expect(() => loadGroup(store, groupId, p)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }));
  });
});
