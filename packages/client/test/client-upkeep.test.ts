/**
 * Prekey upkeep and disappearing messages, on a clock the test moves
 * (spec/10-client.md §4.4 and §4.6).
 */
import { DeviceIdentity, PreKeyStore } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { parseAccountId } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, TEST_OPTIONS, until } from './support/harness.ts';

const DAY = 24 * 3600 * 1000;

describe('upkeep and expiry', () => {
  const track = closedAfterEach();

  async function make(relay: FakeRelay, clock: { now: number }) {
    const store = new MemoryStore({ clock: () => clock.now });
    const client = await ParleyClient.createAccount({
      store,
      relay: relay.connector,
      clock: () => clock.now,
      options: {
        ...TEST_OPTIONS,
        oneTimePreKeys: 6,
        kemPreKeys: 2,
        refillBelow: 0.5,
        signedPreKeyRotationMs: 7 * DAY,
        signedPreKeyGraceMs: 30 * DAY,
      },
    });
    track(client);
    await client.start();
    return { client, store };
  }

  it('refills the relay pools when they run low, with keys it holds the private halves of', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const { client, store } = await make(relay, clock);
    const self = { accountKey: parseAccountId(client.accountId), deviceId: 1 };
    expect(relay.counts(self)).toMatchObject({ oneTimePreKeys: 6, kemPreKeys: 2 });
    for (let i = 0; i < 4; i++) relay.bundles(self, self.accountKey, 1);
    expect(relay.counts(self)).toMatchObject({ oneTimePreKeys: 2, kemPreKeys: 0 });
    await client.maintain();
    expect(relay.counts(self)).toMatchObject({ oneTimePreKeys: 6, kemPreKeys: 2 });
    const device = DeviceIdentity.deserialize(store.get('identity', 'device') as Uint8Array);
    const local = PreKeyStore.deserialize(store.get('identity', 'prekeys') as Uint8Array, device);
    const held = new Set(local.oneTimePreKeys().map((k) => k.id));
    for (const k of relay.keys.get(`${client.accountId}.1`)?.oneTime ?? []) expect(held.has(k.id)).toBe(true);
    // Nothing to do when the pools are full.
    await client.maintain();
    expect(relay.counts(self).oneTimePreKeys).toBe(6);
  });

  it('rotates the signed prekey on schedule and keeps the old one through the grace period only', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const { client: alice } = await make(relay, clock);
    const { client: bob } = await make(relay, clock);
    const { client: carol } = await make(relay, clock);
    const keys = relay.keys.get(`${alice.accountId}.1`);
    if (!keys) throw new Error('no keys');
    const old = keys.signed;

    clock.now += 8 * DAY;
    await alice.maintain();
    expect(keys.signed.id).toBeGreaterThan(old.id);
    const current = keys.signed;

    // A bundle handed out before the rotation (an initial message in flight) still opens within the grace period.
    keys.signed = old;
    await bob.sendText(alice.accountId, 'made with the old signed prekey');
    keys.signed = current;
    await until(() => alice.history(bob.accountId).length === 1, 10_000, 'message under the old key');

    // Past the grace period the old key is deleted: such a message fails (and heals through a retry request).
    clock.now += 31 * DAY;
    await alice.maintain();
    const failures: string[] = [];
    alice.on('undecryptable', (u) => failures.push(u.code));
    const latest = keys.signed;
    expect(latest.id).toBeGreaterThan(current.id);
    keys.signed = old;
    await carol.sendText(alice.accountId, 'made with a key past its grace period');
    keys.signed = latest;
    await until(() => alice.history(carol.accountId).length === 1, 10_000, 'healed message');
    expect(failures).toEqual(['UNKNOWN_PREKEY']);
  });

  it('makes messages disappear at the timer on both sides, however the store is read', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const { client: alice } = await make(relay, clock);
    const { client: bob, store: bobStore } = await make(relay, clock);
    const changed = new Promise((resolve) => bob.on('timer-change', resolve));
    await alice.setExpireTimer(bob.accountId, 60);
    expect(await changed).toMatchObject({ conversation: alice.accountId, expireTimer: 60 });
    await alice.sendText(bob.accountId, 'gone in a minute');
    await until(() => bob.history(alice.accountId).length === 1);
    expect(bob.expireTimer(alice.accountId)).toBe(60);
    expect(bob.history(alice.accountId)[0]?.expiresAt).toBe(clock.now + 60_000);

    clock.now += 61_000;
    expect(bob.history(alice.accountId)).toEqual([]);
    expect(alice.history(bob.accountId)).toEqual([]);
    await bob.maintain();
    expect(bobStore.list('messages')).toEqual([]);
  });
});
