/**
 * The last-resort ML-KEM prekey's rotation schedule and grace period
 * (spec/10-client.md §4.4; issue 11 finding 6), on a clock the test moves.
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, TEST_OPTIONS, until } from './support/harness.ts';

const DAY = 24 * 3600 * 1000;

describe('last-resort KEM prekey rotation', () => {
  const track = closedAfterEach();

  async function make(relay: FakeRelay, clock: { now: number }, store = new MemoryStore({ clock: () => clock.now })) {
    const client = await ParleyClient.createAccount({
      store,
      relay: relay.connector,
      clock: () => clock.now,
      options: { ...TEST_OPTIONS, lastResortKemRotationMs: 7 * DAY, lastResortKemGraceMs: 30 * DAY },
    });
    track(client);
    await client.start();
    return { client, store };
  }

  it('rotates on schedule, uploads the new key, and keeps the old one through the grace period only', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const { client: alice } = await make(relay, clock);
    const { client: bob } = await make(relay, clock);
    const { client: carol } = await make(relay, clock);
    const keys = relay.keys.get(`${alice.accountId}.1`);
    if (!keys) throw new Error('no keys');
    const old = keys.lastResort;

    // Not yet due: nothing changes.
    clock.now += 6 * DAY;
    await alice.maintain();
    expect(keys.lastResort.id).toBe(old.id);

    clock.now += 2 * DAY;
    await alice.maintain();
    expect(keys.lastResort.id).toBeGreaterThan(old.id);
    expect(keys.lastResort.lastResort).toBe(true);
    const current = keys.lastResort;

    // An initiator that got the old key (no one-time KEM key left) within the grace period still gets through.
    const pool = keys.kem.splice(0);
    keys.lastResort = old;
    await bob.sendText(alice.accountId, 'made with the old last-resort key');
    keys.lastResort = current;
    keys.kem.push(...pool);
    await until(() => alice.history(bob.accountId).length === 1, 10_000, 'message under the old key');

    // Past the grace period the old key is gone: such a message fails and heals through a retry request.
    clock.now += 31 * DAY;
    await alice.maintain();
    const failures: string[] = [];
    alice.on('undecryptable', (u) => failures.push(u.code));
    const latest = keys.lastResort;
    expect(latest.id).toBeGreaterThan(current.id);
    keys.kem.splice(0);
    keys.lastResort = old;
    await carol.sendText(alice.accountId, 'made with a key past its grace period');
    keys.lastResort = latest;
    await until(() => alice.history(carol.accountId).length === 1, 10_000, 'healed message');
    expect(failures).toEqual(['UNKNOWN_PREKEY']);
  });

  it('a store from before the schedule adopts its key and rotates it one period later', async () => {
    const relay = new FakeRelay();
    const clock = { now: Date.now() };
    const { client, store } = await make(relay, clock);
    store.delete('identity', 'upkeep-kem');
    const keys = relay.keys.get(`${client.accountId}.1`);
    const first = keys?.lastResort.id;
    clock.now += 100 * DAY;
    await client.maintain();
    expect(keys?.lastResort.id).toBe(first);
    clock.now += 7 * DAY;
    await client.maintain();
    expect(keys?.lastResort.id).toBeGreaterThan(first as number);
  });
});
