/**
 * Self-healing (spec/10-client.md §6): a conversation whose session state
 * broke on one side recovers through a retry request and a re-send in a
 * fresh session, without losing or duplicating the message that failed.
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { deviceKey, parseAccountId } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TABLES } from '../src/store/types.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, next, record, TEST_OPTIONS, until } from './support/harness.ts';

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).map((h) => (h.content.body.type === 'text' ? `${h.outgoing ? '>' : '<'}${h.content.body.text}` : '?'));

/** A copy of a store: what a backup holds. */
function snapshot(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore();
  for (const table of TABLES) for (const e of store.list(table)) copy.put(table, e.key, e.value, e.expiresAt);
  return copy;
}

describe('self-healing sessions', () => {
  const track = closedAfterEach();

  async function pair() {
    const relay = new FakeRelay();
    const aliceStore = new MemoryStore();
    const bobStore = new MemoryStore();
    const alice = await newClient(relay, aliceStore);
    const bob = await newClient(relay, bobStore);
    track(alice, bob);
    await alice.sendText(bob.accountId, 'a1');
    await until(() => texts(bob, alice.accountId).length === 1);
    await bob.sendText(alice.accountId, 'b1');
    await until(() => texts(alice, bob.accountId).length === 2);
    await alice.sendText(bob.accountId, 'a2');
    await until(() => texts(bob, alice.accountId).length === 3);
    return { relay, alice, bob, aliceStore, bobStore };
  }

  for (const [name, damage] of [
    ['lost', (store: MemoryStore, key: string) => store.delete('sessions', key)],
    ['corrupted', (store: MemoryStore, key: string) => store.put('sessions', key, Uint8Array.of(0x83, 0x01, 0x02, 0x03))],
  ] as const) {
    it(`heals a ${name} session record on the receiving side without losing the message`, async () => {
      const { alice, bob, bobStore } = await pair();
      damage(bobStore, deviceKey({ accountKey: parseAccountId(alice.accountId), deviceId: 1 }));
      const undecryptable = next(bob, 'undecryptable');
      const resent = next(alice, 'resent');
      const sent = await alice.sendText(bob.accountId, 'after the damage');
      expect(await undecryptable).toMatchObject({ retryRequested: true });
      expect(await resent).toMatchObject({ messageId: sent.messageId, to: bob.accountId });
      await until(() => texts(bob, alice.accountId).includes('<after the damage'), 10_000, 'the re-sent message');
      // And the conversation works both ways afterwards.
      await bob.sendText(alice.accountId, 'healed?');
      await until(() => texts(alice, bob.accountId).includes('<healed?'));
      await alice.sendText(bob.accountId, 'healed.');
      await until(() => texts(bob, alice.accountId).includes('<healed.'));
      expect(texts(bob, alice.accountId)).toEqual(['<a1', '>b1', '<a2', '<after the damage', '>healed?', '<healed.']);
    });
  }

  it('heals after the receiver restores an old backup', async () => {
    const { relay, alice, bob, bobStore } = await pair();
    const backup = snapshot(bobStore);
    await bob.sendText(alice.accountId, 'b2');
    await until(() => texts(alice, bob.accountId).includes('<b2'));
    await alice.sendText(bob.accountId, 'a3');
    await until(() => texts(bob, alice.accountId).includes('<a3'));

    await bob.close();
    const restored = await ParleyClient.open({ store: backup, relay: relay.connector, options: TEST_OPTIONS });
    track(restored);
    await restored.start();
    await alice.sendText(bob.accountId, 'after the restore');
    await until(() => texts(restored, alice.accountId).includes('<after the restore'), 10_000, 'message after restore');
    await restored.sendText(alice.accountId, 'back');
    await until(() => texts(alice, bob.accountId).includes('<back'));
    expect(texts(restored, alice.accountId).filter((t) => t === '<after the restore')).toHaveLength(1);
  });

  it('heals after the sender restores an old backup (it reuses message keys the receiver already used)', async () => {
    const { relay, alice, bob, aliceStore } = await pair();
    const backup = snapshot(aliceStore);
    await alice.sendText(bob.accountId, 'a3');
    await until(() => texts(bob, alice.accountId).includes('<a3'));

    await alice.close();
    const restored = await ParleyClient.open({ store: backup, relay: relay.connector, options: TEST_OPTIONS });
    track(restored);
    await restored.start();
    const failures = record(bob, 'undecryptable');
    await restored.sendText(bob.accountId, 'after the restore');
    await until(() => texts(bob, alice.accountId).includes('<after the restore'), 10_000, 'message after sender restore');
    expect(failures.map((f) => f.code)).toContain('DUPLICATE_MESSAGE');
    expect(texts(bob, alice.accountId).filter((t) => t === '<after the restore')).toHaveLength(1);
  });
});
