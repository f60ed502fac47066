/**
 * Contacts (names and verification marks) travel to the account's linked
 * devices inside the encrypted channel (spec/10-client.md §7.1): a new
 * device starts with the primary's contacts; adding and verifying later
 * reach it; a contacts list from another account is ignored; a malformed
 * one is refused by the decoder.
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { decodeContent, encodeContent, MAX_SYNCED_CONTACTS } from '../src/content/content.ts';
import type { DeviceCertificate } from '@parley/core';
import { applyContent } from '../src/engine/apply.ts';
import { type Context, Pending } from '../src/engine/context.ts';
import { parseAccountId } from '../src/state/ids.ts';
import { listContacts } from '../src/state/contacts.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, TEST_OPTIONS, until } from './support/harness.ts';

describe('contacts sync to linked devices', () => {
  // A linked device asks for the contacts once registered; the others answer (engine/contacts-sync.ts).
  const track = closedAfterEach();

  it('a linked device knows the primary contacts, later additions and verification marks', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    const carol = track(await newClient(relay));
    await alice.start();
    await alice.addContact(bob.accountId, 'bob');
    alice.verifySafetyNumber(bob.accountId);

    const store = new MemoryStore();
    const response = await alice.approveLink(ParleyClient.requestLink({ store }));
    // Alice's client sends everything it queued before the new device exists on the relay.
    await alice.flush();
    const alice2 = track(await ParleyClient.completeLink({ store, relay: relay.connector, options: TEST_OPTIONS }, response));
    await alice2.start();
    await until(() => alice2.contacts().length === 1, 10_000, 'the linked device to learn bob');
    expect(alice2.contacts()).toEqual([{ account: bob.accountId, name: 'bob', verified: true }]);
    expect(alice2.resolveName('bob')).toBe(bob.accountId);

    await alice.addContact(carol.accountId, 'carol');
    await until(() => alice2.resolveName('carol') === carol.accountId, 10_000, 'carol to arrive');
    alice.verifySafetyNumber(carol.accountId);
    await until(() => alice2.contacts().some((c) => c.name === 'carol' && c.verified), 10_000, 'the carol mark to arrive');

    // And the other way: a name given on the linked device reaches the primary.
    await alice2.addContact(carol.accountId, 'caro');
    await until(() => alice.resolveName('caro') === carol.accountId, 10_000, 'the rename to reach the primary');
    expect(alice.contacts().find((c) => c.account === carol.accountId)?.verified).toBe(true);
  });

  it('a contacts list from another account, or through a group, changes nothing', () => {
    const self = parseAccountId(`A${'B'.repeat(41)}A`);
    const mallory = parseAccountId(`M${'B'.repeat(41)}A`);
    const store = new MemoryStore();
    const ctx = { store, self: { accountKey: self, deviceId: 1 }, clock: () => 1000, options: TEST_OPTIONS } as unknown as Context;
    const contacts = [{ accountKey: mallory, name: 'bank', verified: true }];
    const content = (n: number) => ({
      messageId: new Uint8Array(16).fill(n),
      sentAt: 1,
      expireTimer: 0,
      group: null,
      deviceList: null,
      body: { type: 'contacts' as const, contacts },
    });
    const pending = new Pending();
    const from = (accountKey: Uint8Array) => ({ accountKey, deviceId: 2 }) as unknown as DeviceCertificate;
    store.transaction(() => applyContent(ctx, { sender: from(mallory), content: content(1), via: 'direct' }, pending));
    store.transaction(() => applyContent(ctx, { sender: from(self), content: content(2), via: 'group' }, pending));
    expect(listContacts(store)).toEqual([]);
    // The same list from our own device, one to one, is taken.
    store.transaction(() => applyContent(ctx, { sender: from(self), content: content(3), via: 'direct' }, pending));
    expect(listContacts(store).map((c) => [c.name, c.verified])).toEqual([['bank', true]]);
  });

  it('the decoder bounds the list and refuses empty names and a group', () => {
    const base = { messageId: new Uint8Array(16), sentAt: 1, expireTimer: 0, group: null, deviceList: null };
    const one = { accountKey: parseAccountId('A'.repeat(43)), name: 'bob', verified: false };
    const ok = encodeContent({ ...base, body: { type: 'contacts', contacts: [one] } });
    expect(decodeContent(ok).body).toEqual({ type: 'contacts', contacts: [one] });
    expect(() => encodeContent({ ...base, body: { type: 'contacts', contacts: [{ ...one, name: '' }] } })).toThrow(/empty/);
    // An empty list is a request (a new device asking its account's other devices).
    expect(decodeContent(encodeContent({ ...base, body: { type: 'contacts', contacts: [] } })).body).toEqual({
      type: 'contacts',
      contacts: [],
    });
    const many = Array.from({ length: MAX_SYNCED_CONTACTS + 1 }, () => one);
    expect(() => encodeContent({ ...base, body: { type: 'contacts', contacts: many } })).toThrow();
    expect(() => encodeContent({ ...base, group: new Uint8Array(16), body: { type: 'contacts', contacts: [one] } })).toThrow(/group/);
  });
});
