import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, next, TEST_OPTIONS, until } from './support/harness.ts';

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).map((h) => (h.content.body.type === 'text' ? `${h.outgoing ? '>' : '<'}${h.content.body.text}` : '?'));

describe('groups', () => {
  const track = closedAfterEach();
  const make = async (relay: FakeRelay) => track(await newClient(relay));

  it('creates a group, fans one message out to every member device, and follows adds and removes', async () => {
    const relay = new FakeRelay();
    const [alice, bob, carol, dave] = [await make(relay), await make(relay), await make(relay), await make(relay)];
    const bobJoined = next(bob, 'group-change');
    const group = await alice.createGroup('climbing', [bob.accountId, carol.accountId]);
    expect([...(await bobJoined).members].sort()).toEqual([alice.accountId, bob.accountId, carol.accountId].sort());
    await until(() => carol.group(group) !== null);

    await alice.sendText(group, 'saturday?');
    await until(() => texts(bob, group).includes('<saturday?') && texts(carol, group).includes('<saturday?'));
    await bob.sendText(group, 'yes');
    await until(() => texts(alice, group).includes('<yes') && texts(carol, group).includes('<yes'));

    // Alice (the creator, the first admin) makes Carol an admin; Carol adds Dave; he reads what is said from then on.
    await alice.updateGroup(group, { addAdmins: [carol.accountId] });
    await until(() => carol.group(group)?.admins.includes(carol.accountId) === true);
    const daveJoined = next(dave, 'group-change');
    await carol.updateGroup(group, { add: [dave.accountId] });
    await daveJoined;
    await until(() => alice.group(group)?.members.length === 4 && bob.group(group)?.members.length === 4);
    await alice.sendText(group, 'welcome Dave');
    await until(() => texts(dave, group).includes('<welcome Dave'));
    expect(texts(dave, group)).toEqual(['<welcome Dave']);

    // Alice removes Bob: he hears of it, and nothing after reaches him.
    const bobRemoved = next(bob, 'group-change', (e) => e.removed.includes(bob.accountId));
    await alice.updateGroup(group, { remove: [bob.accountId] });
    await bobRemoved;
    expect(bob.group(group)).toBeNull();
    await until(() => carol.group(group)?.members.length === 3 && dave.group(group)?.members.length === 3);
    await carol.sendText(group, 'after Bob left');
    await until(() => texts(alice, group).includes('<after Bob left') && texts(dave, group).includes('<after Bob left'));
    await alice.flush();
    expect(texts(bob, group)).not.toContain('<after Bob left');
    expect(texts(alice, group)).toEqual(['>saturday?', '<yes', '>welcome Dave', '<after Bob left']);
  });

  it('lets a device linked later read the group (the distribution carries the group state)', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    const bob = await make(relay);
    const group = await alice.createGroup('pair', [bob.accountId]);
    await until(() => bob.group(group) !== null);
    await bob.sendText(group, 'first');
    await until(() => texts(alice, group).includes('<first'));

    const store = new MemoryStore();
    const response = await bob.approveLink(ParleyClient.requestLink({ store }));
    const bob2 = await ParleyClient.completeLink({ store, relay: relay.connector, options: TEST_OPTIONS }, response);
    track(bob2);
    await bob2.start();
    await bob.flush();
    await alice.sendText(group, 'second');
    await until(() => texts(bob2, group).includes('<second'), 10_000, 'the new device reads the group');
    expect(bob2.group(group)?.name).toBe('pair');
    await bob2.sendText(group, 'from the new device');
    await until(() => texts(alice, group).includes('<from the new device'));
    await until(() => texts(bob, group).includes('>from the new device'), 10_000, 'own device sees it as sent');
  });

  it('lets any member leave, and the last admin leaving hands the group on (spec/08-groups.md §13.2)', async () => {
    const relay = new FakeRelay();
    const [alice, bob, carol] = [await make(relay), await make(relay), await make(relay)];
    const group = await alice.createGroup('trio', [bob.accountId, carol.accountId]);
    await until(() => bob.group(group) !== null && carol.group(group) !== null);
    expect(bob.group(group)?.admins).toEqual([alice.accountId]);

    // Bob is not an admin: he may not rename the group, but he may leave.
    await expect(bob.updateGroup(group, { name: 'mine' })).rejects.toMatchObject({ code: 'NOT_GROUP_ADMIN' });
    await bob.leaveGroup(group);
    expect(bob.group(group)).toBeNull();
    await until(() => alice.group(group)?.members.length === 2 && carol.group(group)?.members.length === 2);

    // Alice, the only admin, leaves: Carol, the first remaining member, becomes admin and can change the group.
    await alice.leaveGroup(group);
    await until(() => carol.group(group)?.members.length === 1);
    expect(carol.group(group)?.admins).toEqual([carol.accountId]);
    await carol.updateGroup(group, { name: 'solo', add: [bob.accountId] });
    await until(() => bob.group(group)?.name === 'solo');
    expect(alice.group(group)).toBeNull();
  });
});
