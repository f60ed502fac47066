/**
 * Two admins change a group at the same time: every device must end on the
 * same state (spec/08-groups.md §13.4: the highest revision, then the lowest
 * state hash), and the group must keep working for exactly that state's
 * members. Issue 11 finding 2 ("concurrent changes resolve the same way on
 * every device").
 *
 * The order is forced with offline clients: Carol's change reaches Bob
 * before Alice's, while Alice made hers without having seen Carol's. When
 * Carol's change wins the tie, Alice's device makes its removal again on
 * top of it, so the removal is never lost.
 */
import { describe, expect, it } from 'vitest';
import type { ParleyClient } from '../../src/client.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, newClient, next, until } from '../support/harness.ts';
import { historyTexts as texts, reopen, reopenOffline } from './scene.ts';

/** What a device believes the group is (every field the API shows). */
function view(c: ParleyClient, group: string): string | null {
  const g = c.group(group);
  if (!g) return null;
  return JSON.stringify({ ...g, members: [...g.members].sort(), admins: [...(g.admins ?? [])].sort() });
}

/** Every device that holds the group holds the same state, and exactly that state's members hold it. */
function converged(devices: ParleyClient[], group: string): boolean {
  const held = devices.map((c) => view(c, group)).filter((v): v is string => v !== null);
  if (held.length === 0 || new Set(held).size !== 1) return false;
  const members = JSON.parse(held[0] as string).members as string[];
  return devices.every((c) => (view(c, group) !== null) === members.includes(c.accountId));
}

describe('concurrent group changes (issue 11 finding 2)', () => {
  const track = closedAfterEach();

  it('two admins change the group at once: every device converges on one state, and the group works for its members', async () => {
    const relay = new FakeRelay();
    const aliceStore = new MemoryStore();
    const bobStore = new MemoryStore();
    const alice = track(await newClient(relay, aliceStore));
    const bob = track(await newClient(relay, bobStore));
    const carol = track(await newClient(relay));
    const group = await alice.createGroup('climbing', [bob.accountId, carol.accountId]);
    await until(() => bob.group(group) !== null && carol.group(group) !== null);
    const bobPromoted = next(bob, 'group-change');
    const carolPromoted = next(carol, 'group-change');
    await alice.updateGroup(group, { addAdmins: [carol.accountId] });
    await Promise.all([bobPromoted, carolPromoted]);
    await carol.sendText(group, 'ready');
    await until(() => texts(alice, group).includes('ready') && texts(bob, group).includes('ready'));
    await alice.close();
    await bob.close();

    // Carol renames the group while Alice, offline, has not seen it ...
    await carol.updateGroup(group, { name: 'climbing club' });
    await carol.flush();
    // ... and Alice removes Carol from the state she holds.
    const alice2 = await reopenOffline(track, aliceStore, relay);
    await alice2.updateGroup(group, { remove: [carol.accountId] });
    await alice2.flush();
    await alice2.start();
    // Bob receives Carol's change first, then Alice's.
    const bob2 = await reopen(track, bobStore, relay);

    await until(() => converged([alice2, bob2, carol], group), 5_000, 'every device on the same state');
    const agreed = alice2.group(group);
    expect(agreed).not.toBeNull();
    // Whichever change won the tie, Alice's removal of Carol stands: if Carol's rename won, Alice's
    // device made its change again on top of it (§13.4), so a removal is never lost to a concurrent change.
    expect(agreed?.members).not.toContain(carol.accountId);
    expect(carol.group(group)).toBeNull();
    expect(['climbing', 'climbing club']).toContain(agreed?.name);

    // The group works for exactly the agreed members.
    await alice2.sendText(group, 'settled');
    await until(() => texts(bob2, group).includes('settled'));
    await alice2.flush();
    expect(texts(carol, group)).not.toContain('settled');
  });

  it('an invitation made at the same time as another change is never lost, and the invitee ends on the same state', async () => {
    const relay = new FakeRelay();
    const aliceStore = new MemoryStore();
    const bobStore = new MemoryStore();
    const alice = track(await newClient(relay, aliceStore));
    const bob = track(await newClient(relay, bobStore));
    const carol = track(await newClient(relay));
    const dave = track(await newClient(relay));
    const group = await alice.createGroup('climbing', [bob.accountId, carol.accountId]);
    await until(() => bob.group(group) !== null && carol.group(group) !== null);
    const carolPromoted = next(carol, 'group-change');
    await alice.updateGroup(group, { addAdmins: [carol.accountId] });
    await carolPromoted;
    await alice.close();
    await bob.close();

    // Carol renames while Alice, who has not seen it, invites Dave.
    await carol.updateGroup(group, { name: 'climbing club' });
    await carol.flush();
    const alice2 = await reopenOffline(track, aliceStore, relay);
    await alice2.updateGroup(group, { add: [dave.accountId] });
    await alice2.flush();
    await alice2.start();
    const bob2 = await reopen(track, bobStore, relay);

    await until(() => converged([alice2, bob2, carol, dave], group), 5_000, 'every device on the same state');
    expect(alice2.group(group)?.members).toContain(dave.accountId);
    await carol.sendText(group, 'welcome');
    await until(() => texts(dave, group).includes('welcome') && texts(alice2, group).includes('welcome'));
  });
});
