import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, next, record, TEST_OPTIONS, until } from './support/harness.ts';

describe('one-to-one messaging on a fake relay', () => {
  const track = closedAfterEach();
  const make = async (relay: FakeRelay) => track(await newClient(relay));

  it('delivers text both ways, stores it, and raises delivered and read receipts', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    const bob = await make(relay);
    const bobGot = next(bob, 'message');
    const sent = await alice.sendText(bob.accountId, 'hello Bob');
    const m = await bobGot;
    expect(m).toMatchObject({
      conversation: alice.accountId,
      messageId: sent.messageId,
      outgoing: false,
      body: { type: 'text', text: 'hello Bob' },
    });
    expect(m.sender).toEqual({ account: alice.accountId, deviceId: 1 });
    const delivered = await next(alice, 'receipt', (r) => r.status === 'delivered');
    expect(delivered).toMatchObject({ messageId: sent.messageId, from: bob.accountId, conversation: bob.accountId });

    const aliceGot = next(alice, 'message');
    const bobDelivered = next(bob, 'receipt', (r) => r.status === 'delivered');
    await bob.sendText(alice.accountId, 'hi Alice');
    expect((await aliceGot).body).toEqual({ type: 'text', text: 'hi Alice' });
    await bobDelivered;

    const read = next(alice, 'receipt', (r) => r.status === 'read');
    await bob.markRead(alice.accountId);
    expect((await read).messageId).toBe(sent.messageId);
    expect(alice.history(bob.accountId).map((h) => [h.outgoing, h.status])).toEqual([
      [true, 'read'],
      [false, 'delivered'],
    ]);
    expect(bob.history(alice.accountId).map((h) => h.status)).toEqual(['read', 'delivered']);
  });

  it('never lets plaintext reach the relay', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    const bob = await make(relay);
    const got = next(bob, 'message');
    await alice.sendText(bob.accountId, 'the secret is PARLEY-CANARY-7731');
    await got;
    const needle = new TextEncoder().encode('PARLEY-CANARY-7731');
    const contains = (hay: Uint8Array) => hay.some((_, i) => needle.every((b, j) => hay[i + j] === b));
    expect(relay.stored.length).toBeGreaterThan(0);
    expect(relay.stored.some(contains)).toBe(false);
  });

  it('keeps a message sent while the relay is down and delivers it once it is back', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    const bob = await make(relay);
    await alice.sendText(bob.accountId, 'warm-up');
    await until(() => bob.history(alice.accountId).length === 1);
    relay.setDown(true);
    await expect(alice.sendText(bob.accountId, 'while down')).rejects.toMatchObject({ code: 'RELAY_UNAVAILABLE' });
    const got = next(bob, 'message', (m) => m.body.type === 'text' && m.body.text === 'while down');
    relay.setDown(false);
    await got;
    await alice.flush();
    const texts = bob.history(alice.accountId).map((h) => (h.content.body.type === 'text' ? h.content.body.text : ''));
    expect(texts).toEqual(['warm-up', 'while down']);
  });

  it('keeps a queued message across a restart of the client itself (durable outbox in SQLite)', async () => {
    const relay = new FakeRelay();
    const dir = mkdtempSync(join(tmpdir(), 'parley-outbox-'));
    try {
      const path = join(dir, 'alice.sqlite');
      let store = new SqliteStore(path);
      let alice = await ParleyClient.createAccount({ store, relay: relay.connector, options: TEST_OPTIONS });
      await alice.start();
      const bob = await make(relay);
      await alice.sendText(bob.accountId, 'before');
      await until(() => bob.history(alice.accountId).length === 1);
      relay.setDown(true);
      await expect(alice.sendText(bob.accountId, 'queued, then the app quit')).rejects.toMatchObject({ code: 'RELAY_UNAVAILABLE' });
      await alice.close();
      store.close();
      relay.setDown(false);

      store = new SqliteStore(path);
      alice = await ParleyClient.open({ store, relay: relay.connector, options: TEST_OPTIONS });
      track(alice);
      await alice.start();
      await until(() => bob.history(alice.accountId).length === 2, 10_000, 'the queued message after the restart');
      await until(() => alice.history(bob.accountId).every((m) => m.status === 'delivered'), 10_000, 'delivery receipts');
      expect(alice.history(bob.accountId)).toHaveLength(2);
      await alice.close();
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows typing, and warns when a contact name is pointed at another account', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    const bob = await make(relay);
    const bobAgain = await make(relay);
    const typing = next(bob, 'typing');
    await alice.setTyping(bob.accountId, true);
    expect(await typing).toEqual({ conversation: alice.accountId, from: { account: alice.accountId, deviceId: 1 }, typing: true });
    expect(bob.history(alice.accountId)).toEqual([]);

    await alice.addContact(bob.accountId, 'bob');
    const changes = record(alice, 'safety-number-change');
    await alice.addContact(bob.accountId, 'bob');
    expect(changes).toEqual([]);
    await alice.addContact(bobAgain.accountId, 'bob');
    expect(changes).toEqual([{ name: 'bob', previous: bob.accountId, account: bobAgain.accountId }]);
    expect(alice.resolveName('bob')).toBe(bobAgain.accountId);
    expect(alice.safetyNumber(bobAgain.accountId).digits).not.toBe(alice.safetyNumber(bob.accountId).digits);
  });

  it('refuses to add an account that has no device', async () => {
    const relay = new FakeRelay();
    const alice = await make(relay);
    await expect(alice.addContact('A'.repeat(42) + 'A', 'nobody')).rejects.toMatchObject({ code: 'UNKNOWN_ACCOUNT' });
  });
});
