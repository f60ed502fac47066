/**
 * Finding 8 (restore) of issue 11: a store restored from an older copy
 * would make the sender repeat message keys (and so AEAD key and nonce
 * pairs) its lost newer copy already used. spec/10-client.md §7.5: the SDK
 * proves a restore from the relay's signed prekeys, retires every session
 * and starts fresh ones; a relay that merely claims newer keys is reported,
 * not obeyed.
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient, type RelayConnector } from '../../src/client.ts';
import { loadSession } from '../../src/state/sessions.ts';
import type { RelayLink } from '../../src/relay-link/link.ts';
import { parseAccountId } from '../../src/state/ids.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, record, TEST_OPTIONS, until } from '../support/harness.ts';
import { defaultProvider } from '@parley/core';
import { copyOf } from './scene.ts';

const DAY = 24 * 3600 * 1000;

describe('store: restoring an old copy of the store', () => {
  const track = closedAfterEach();

  async function make(relay: FakeRelay | RelayConnector, clock: { now: number }, store: MemoryStore, deliveryReceipts = true) {
    const connector = relay instanceof FakeRelay ? relay.connector : relay;
    const options = { ...TEST_OPTIONS, deliveryReceipts };
    const client = await ParleyClient.createAccount({ store, relay: connector, clock: () => clock.now, options });
    track(client);
    await client.start();
    return client;
  }

  async function restoreScenario(startFirst: boolean) {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const aliceStore = new MemoryStore({ clock: () => clock.now });
    const alice = await make(relay, clock, aliceStore);
    // Bob stays silent (no receipts), so Alice's sending chain never turns: each message takes the next key of one chain.
    const bob = await make(relay, clock, new MemoryStore({ clock: () => clock.now }), false);
    const undecryptable = record(bob, 'undecryptable');

    await alice.sendText(bob.accountId, 'one');
    await until(() => bob.history(alice.accountId).length === 1);
    const group = await alice.createGroup('pair', [bob.accountId]);
    await alice.sendText(group, 'g-one');
    await until(() => bob.history(group).length === 1);
    const backup = copyOf(aliceStore, () => clock.now);

    // The device goes on after the backup: more messages, then a scheduled rotation.
    await alice.sendText(bob.accountId, 'two');
    await alice.sendText(bob.accountId, 'three');
    await alice.sendText(group, 'g-two');
    await until(() => bob.history(alice.accountId).length === 3 && bob.history(group).length === 2);
    clock.now += 8 * DAY;
    await alice.maintain();
    await alice.close();

    // The backup comes back on the same device.
    const restored = await ParleyClient.open({ store: backup, relay: relay.connector, clock: () => clock.now, options: TEST_OPTIONS });
    track(restored);
    const warnings = record(restored, 'warning');
    // An app may send before (or without) start(): the first send runs the check itself.
    if (startFirst) await restored.start();

    await restored.sendText(bob.accountId, 'four');
    expect(warnings.map((w) => w.code)).toContain('STORE_RESTORED');
    await until(() => bob.history(alice.accountId).length === 4, 10_000, 'the message after the restore');
    // No repeated message key at Bob (the old code's restored chain re-used "two"'s: DUPLICATE_MESSAGE).
    expect(undecryptable).toEqual([]);
    // The group chain was rotated too: the next group message is not sealed with g-two's key.
    await restored.sendText(group, 'g-three');
    await until(() => bob.history(group).length === 3, 10_000, 'the group message after the restore');
    expect(undecryptable).toEqual([]);
    const texts = bob.history(alice.accountId).map((m) => (m.content.body.type === 'text' ? m.content.body.text : ''));
    expect(texts.sort()).toEqual(['four', 'one', 'three', 'two']);
  }

  it('is detected, and the next message starts a fresh session instead of repeating message keys', () => restoreScenario(true));

  it('is detected before the first send of a client that never ran upkeep', () => restoreScenario(false));

  it('a relay that only claims newer prekeys is reported and resets nothing', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const aliceStore = new MemoryStore({ clock: () => clock.now });
    let inflate = false;
    const lying: RelayConnector = (self) => {
      const link = relay.connector(self);
      return new Proxy(link, {
        get(target, prop) {
          if (prop === 'preKeyCounts')
            return async () => {
              const honest = await (target as RelayLink).preKeyCounts();
              return inflate ? { ...honest, signedPreKeyId: (honest.signedPreKeyId ?? 0) + 100 } : honest;
            };
          const value = Reflect.get(target, prop, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    };
    const alice = await make(lying, clock, aliceStore);
    const bob = await make(relay, clock, new MemoryStore({ clock: () => clock.now }));
    await alice.sendText(bob.accountId, 'one');
    await until(() => bob.history(alice.accountId).length === 1);
    await bob.sendText(alice.accountId, 'reply');
    await until(() => alice.history(bob.accountId).length === 2);
    const peer = { accountKey: parseAccountId(bob.accountId), deviceId: 1 };
    const before = loadSession(aliceStore, peer, defaultProvider()).record.sessionId;

    const warnings = record(alice, 'warning');
    inflate = true;
    await alice.maintain();
    inflate = false;
    expect(warnings.map((w) => w.code)).toEqual(['RELAY_MISBEHAVED']);
    await alice.sendText(bob.accountId, 'two');
    await until(() => bob.history(alice.accountId).length === 3);
    expect(loadSession(aliceStore, peer, defaultProvider()).record.sessionId).toEqual(before);
  });
});
