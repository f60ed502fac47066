/**
 * Issue 11 finding 2: a group member must not be able to freeze or take over
 * a group's membership. spec/08-groups.md §13 (who may change a group, the
 * hash link, revisions that move by one), spec/10-client.md §4.3.
 *
 * Every test runs real clients on the fake relay; the attacker is a real
 * member whose crafted group-updates go through its real sessions
 * (groups-peer.ts).
 */
import { GroupSession, ParleyError, defaultProvider, fromHex, groupLimits, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { accountId, parseAccountId, toBase64Url } from '../../src/state/ids.ts';
import { parseConversationId } from '../../src/state/conversation-id.ts';
import { stateHash } from '../../src/state/group-state.ts';
import { loadGroup } from '../../src/state/groups.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, newClient, next, record, until } from '../support/harness.ts';
import { GroupAttacker, headOf } from './groups-peer.ts';
import { addressOf, historyTexts as texts } from './scene.ts';

/** The state hash of a crafted state (spec/08-groups.md §13.1), to chain crafted changes. */
function hashOf(
  group: string,
  s: { revision: number; name: string; members: string[]; admins: string[]; parent: string; author: string },
): string {
  const { groupId } = parseConversationId(group) as { groupId: Uint8Array };
  const state = {
    ...s,
    members: s.members.map((m) => parseAccountId(m)),
    admins: s.admins.map((m) => parseAccountId(m)),
    parent: fromHex(s.parent),
    author: parseAccountId(s.author),
  };
  return toHex(stateHash(defaultProvider(), groupId, state));
}

/** The type byte of a core message (2 = ratchet, 3 = group). */
const typeOf = (b: Uint8Array) => b[2];

describe('group membership authority (issue 11 finding 2)', () => {
  const track = closedAfterEach();

  /** Alice creates a group with Bob and Mallory; Mallory is the attacker. */
  async function setup() {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    const malloryStore = new MemoryStore();
    const mallory = track(await newClient(relay, malloryStore));
    const attacker = new GroupAttacker(mallory, malloryStore, relay.connector);
    const group = await alice.createGroup('climbing', [bob.accountId, mallory.accountId]);
    await until(() => bob.group(group) !== null && mallory.group(group) !== null, 10_000, 'everyone joined');
    // Sessions both ways, as in any group that has talked.
    await alice.sendText(group, 'hello');
    await until(() => texts(bob, group).includes('hello') && texts(mallory, group).includes('hello'));
    return { relay, alice, bob, mallory, malloryStore, attacker, group };
  }

  it('refuses a membership change from a member that is not an admin (NOT_GROUP_ADMIN), and the group keeps working', async () => {
    const { alice, bob, mallory, attacker, group } = await setup();
    const aliceWarnings = record(alice, 'warning');
    const bobWarnings = record(bob, 'warning');
    const head = headOf(alice.group(group) as never);
    // Mallory removes Bob and makes herself the only admin, naming the real head as parent, one revision up.
    await attacker.sendGroupUpdate(
      group,
      [alice.accountId, bob.accountId],
      { revision: head.revision + 1, members: [alice.accountId, mallory.accountId], admins: [mallory.accountId], parent: head.parent },
      head.newFormat,
    );
    await until(
      () => aliceWarnings.some((w) => w.code === 'NOT_GROUP_ADMIN') || alice.group(group)?.members.length === 2,
      10_000,
      'alice handled the crafted update',
    );
    await until(() => bobWarnings.some((w) => w.code === 'NOT_GROUP_ADMIN') || bob.group(group) === null, 10_000, 'bob handled it');
    expect(alice.group(group)?.members).toContain(bob.accountId);
    expect(bob.group(group)).not.toBeNull();
    expect(alice.group(group)?.admins).toEqual([alice.accountId]);

    // Through the ordinary API the SDK refuses it before anything is sent.
    await expect(mallory.updateGroup(group, { remove: [bob.accountId] })).rejects.toMatchObject({ code: 'NOT_GROUP_ADMIN' });
    await expect(mallory.updateGroup(group, { name: 'mine' })).rejects.toMatchObject({ code: 'NOT_GROUP_ADMIN' });

    // The group keeps working, and an admin can still remove the attacker.
    await alice.updateGroup(group, { remove: [mallory.accountId] });
    await until(() => bob.group(group)?.members.length === 2);
    await alice.sendText(group, 'after');
    await until(() => texts(bob, group).includes('after'));
  });

  it('refuses revision 0xffffffff, a skipped revision and a stale parent with typed errors; the admin can still remove the sender', async () => {
    const { alice, bob, mallory, attacker, group } = await setup();
    // Mallory is even an admin here: what is refused is the ordering, not the author.
    const promoted = next(mallory, 'group-change');
    await alice.updateGroup(group, { addAdmins: [mallory.accountId] });
    await promoted;
    const aliceWarnings = record(alice, 'warning');
    const head = headOf(alice.group(group) as never);
    const all = [alice.accountId, bob.accountId, mallory.accountId];
    const admins = [alice.accountId, mallory.accountId];
    const victims = [alice.accountId, bob.accountId];
    const craft = (revision: number, parent: string) =>
      attacker.sendGroupUpdate(group, victims, { revision, members: all, admins, parent, name: `r${revision}` }, head.newFormat);

    await craft(0xffffffff, head.parent);
    await until(() => aliceWarnings.length >= 1 || alice.group(group)?.name === `r${0xffffffff}`, 10_000, 'first update handled');
    await craft(head.revision + 2, head.parent); // skips a revision
    await craft(head.revision + 1, 'ab'.repeat(32)); // names a state that never existed
    await until(() => aliceWarnings.length >= 3 || alice.group(group)?.name !== 'climbing', 10_000, 'all three handled');
    expect(alice.group(group)?.name).toBe('climbing');
    expect(alice.group(group)?.revision).toBe(head.revision);
    expect(aliceWarnings.map((w) => w.code)).toEqual(['OVERSIZED', 'GROUP_OUT_OF_ORDER', 'GROUP_OUT_OF_ORDER']);

    // Not frozen: the admin removes Mallory (one revision up), and the group talks on without her.
    const bobSaw = next(bob, 'group-change', (e) => e.removed.includes(mallory.accountId));
    await alice.updateGroup(group, { remove: [mallory.accountId] });
    await bobSaw;
    expect(alice.group(group)?.revision).toBe(head.revision + 1);
    await bob.sendText(group, 'still here');
    await until(() => texts(alice, group).includes('still here'));
  });

  it('a removed admin cannot undo its removal by changing the state before it (a branch of its own, however long)', async () => {
    const { relay, alice, bob, mallory, attacker, group } = await setup();
    const promoted = next(mallory, 'group-change');
    await alice.updateGroup(group, { addAdmins: [mallory.accountId] });
    await promoted;
    const before = headOf(alice.group(group) as never); // Mallory is an admin here
    const removed = next(bob, 'group-change', (e) => e.removed.includes(mallory.accountId));
    await alice.updateGroup(group, { remove: [mallory.accountId] });
    await removed;
    // Mallory changes the state she was still an admin of, then piles changes on her branch.
    const all = [alice.accountId, bob.accountId, mallory.accountId];
    const aliceWarnings = record(alice, 'warning');
    const aliceChanges = record(alice, 'group-change');
    let parent = before.parent;
    for (let i = 1; i <= 3; i++) {
      const state = { revision: before.revision + i, members: all, admins: [alice.accountId, mallory.accountId], parent, name: `fork${i}` };
      await attacker.sendGroupUpdate(group, [alice.accountId, bob.accountId], state, before.newFormat);
      parent = hashOf(group, { ...state, author: mallory.accountId });
    }
    // Everything Mallory sent has been handled (the relay drops an envelope once it is acknowledged).
    await until(() => relay.queued(addressOf(alice)).length === 0 && relay.queued(addressOf(bob)).length === 0);
    await alice.sendText(group, 'after the fork');
    await until(() => texts(bob, group).includes('after the fork'), 10_000, 'bob reads on');
    expect(alice.group(group)?.members).not.toContain(mallory.accountId);
    expect(bob.group(group)?.members).not.toContain(mallory.accountId);
    expect(aliceChanges.filter((e) => e.members.includes(mallory.accountId))).toEqual([]);
    expect(aliceWarnings.every((w) => w.code !== 'INTERNAL')).toBe(true);
  });

  it('a removed member gets no new chain: even keeping its old state, it cannot read what follows', async () => {
    const { relay, alice, bob, mallory, malloryStore, attacker, group } = await setup();
    const head = headOf(alice.group(group) as never);
    const aliceWarnings = record(alice, 'warning');
    const aliceChanges = record(alice, 'group-change');
    // Mallory first tries to freeze the group at the last revision.
    await attacker.sendGroupUpdate(
      group,
      [alice.accountId, bob.accountId],
      { revision: 0xffffffff, members: [alice.accountId, bob.accountId, mallory.accountId], parent: head.parent },
      head.newFormat,
    );
    await until(() => aliceWarnings.length + aliceChanges.length > 0, 10_000, 'alice handled the crafted update');
    const ref = parseConversationId(group) as { groupId: Uint8Array };
    const key = toBase64Url(ref.groupId);
    const kept = malloryStore.get('groups', key) as Uint8Array;

    const removed = next(mallory, 'group-change', (e) => e.removed.includes(mallory.accountId));
    await alice.updateGroup(group, { remove: [mallory.accountId] });
    await removed;
    // A malicious client ignores its removal: it puts its group state back.
    await mallory.close();
    malloryStore.transaction(() => malloryStore.put('groups', key, kept));

    // Bob is offline, so Alice's next group message waits at the relay, where Mallory (or a relay helping her) can take it.
    await bob.close();
    const bobAddress = addressOf(bob);
    await alice.sendText(group, 'not for Mallory');
    const groupMessages = relay.queued(bobAddress).filter((e) => typeOf(e.envelope) === 3);
    expect(groupMessages.length).toBeGreaterThan(0);
    // Nothing Alice sent after the removal went to Mallory's device.
    const malloryAddress = addressOf(mallory);
    const toMallory = relay.queued(malloryAddress).filter((e) => accountId(e.sender.accountKey) === alice.accountId);
    expect(toMallory).toEqual([]);
    const stale = loadGroup(malloryStore, ref.groupId, defaultProvider());
    for (const m of groupMessages) {
      expect(() => stale?.session.decrypt(m.envelope)).toThrow(expect.objectContaining({ code: 'UNKNOWN_CHAIN' }));
    }
  });

  it('refuses an invitation whose joining epoch would leave the joiner unable to apply removals', async () => {
    const relay = new FakeRelay();
    const bob = track(await newClient(relay));
    const erin = track(await newClient(relay));
    const malloryStore = new MemoryStore();
    const mallory = track(await newClient(relay, malloryStore));
    const attacker = new GroupAttacker(mallory, malloryStore, relay.connector);
    // Mallory's own group, of which she is the legitimate admin.
    const group = await mallory.createGroup('trap', [bob.accountId]);
    await until(() => bob.group(group) !== null);
    // Mallory and Erin have talked before (Erin holds Mallory's signed device list).
    await mallory.sendText(erin.accountId, 'hi Erin');
    await until(() => erin.history(mallory.accountId).length > 0, 10_000, 'erin heard from mallory');
    const head = headOf(mallory.group(group) as never);
    const erinWarnings = record(erin, 'warning');
    const members = [mallory.accountId, bob.accountId, erin.accountId];
    await attacker.sendGroupUpdate(
      group,
      [erin.accountId],
      { revision: head.revision + 1, members, admins: [mallory.accountId], parent: head.parent, name: 'trap', epoch: 0xfffffffe },
      head.newFormat,
    );
    await until(() => erinWarnings.length > 0 || erin.group(group) !== null, 10_000, 'erin handled the invitation');
    expect(erin.group(group)).toBeNull();
    expect(erinWarnings.map((w) => w.code)).toContain('OVERSIZED');

    // Core refuses such an epoch too (typed, never a RangeError), whoever calls it.
    const identity = loadIdentity(malloryStore, defaultProvider());
    const device = identity?.device as NonNullable<typeof identity>['device'];
    let thrown: unknown;
    try {
      GroupSession.create(device, [], { epoch: 0xfffffffe });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ParleyError);
    expect(thrown).toMatchObject({ code: 'INVALID_STATE' });
    expect(GroupSession.create(device, [], { epoch: groupLimits.MAX_GROUP_JOIN_EPOCH }).epoch).toBe(groupLimits.MAX_GROUP_JOIN_EPOCH);
  });
});
