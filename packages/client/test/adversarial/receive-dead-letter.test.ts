/**
 * Issue 11 finding 1, the local half: an envelope may stay unacknowledged
 * only while this device's own store fails on it, and only MAX_LOCAL_ATTEMPTS
 * times; then it is parked as a dead letter (kept across restarts, in the
 * SQLite store as in memory), acknowledged, and what follows arrives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_LOCAL_ATTEMPTS } from '../../src/engine/dead-letters.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import type { ClientStore } from '../../src/store/types.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { FlakyStore } from '../support/flaky-store.ts';
import { closedAfterEach, newClient, record, until } from '../support/harness.ts';
import { acknowledged, historyTexts as texts, reopen } from './scene.ts';

/** Makes the fake relay offer its head envelope again (as a reconnect does), until `done`. */
async function redeliverUntil(relay: FakeRelay, done: () => boolean, max: number): Promise<void> {
  for (let i = 0; i < max && !done(); i++) {
    relay.setDown(true);
    relay.setDown(false);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.each([
  ['memory', () => ({ open: () => new MemoryStore() as ClientStore, reopen: null as null | (() => ClientStore) })],
  [
    'sqlite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'parley-dead-letter-'));
      dirs.push(dir);
      const path = join(dir, 'client.db');
      return { open: () => new SqliteStore(path) as ClientStore, reopen: () => new SqliteStore(path) as ClientStore };
    },
  ],
])('dead letters (%s store)', (_name, backend) => {
  const track = closedAfterEach();

  it('a message the store keeps failing on is parked after MAX_LOCAL_ATTEMPTS tries; the inbox moves on; the app retries it later', async () => {
    const relay = new FakeRelay();
    const { open, reopen: reopenStore } = backend();
    const inner = open();
    const store = new FlakyStore(inner);
    const victim = track(await newClient(relay, store));
    const friend = track(await newClient(relay));
    const parked = record(victim, 'dead-letter');

    await friend.sendText(victim.accountId, 'one');
    await until(() => texts(victim, friend.accountId).includes('one'), 8000, 'the first message');

    // The disk is full for history writes: the next message cannot be stored.
    store.failWrite = (table) => table === 'messages';
    await friend.sendText(victim.accountId, 'stuck');
    await until(() => store.failures > 0, 8000, 'a local failure');
    await redeliverUntil(relay, () => parked.length > 0, MAX_LOCAL_ATTEMPTS * 3);
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ sender: { account: friend.accountId }, code: 'SQLITE_FULL', attempts: MAX_LOCAL_ATTEMPTS });
    expect(store.failures).toBe(MAX_LOCAL_ATTEMPTS);
    await acknowledged(relay, victim, 'the parked envelope acknowledged');

    // Retrying while the store still fails keeps the letter (and is not counted again).
    const stillFailing = victim.deadLetters();
    expect(await victim.retryDeadLetter(stillFailing[0]?.id as string)).toBe(false);
    expect(victim.deadLetters()).toEqual(stillFailing);

    store.failWrite = () => false;
    await friend.sendText(victim.accountId, 'after');
    await until(() => texts(victim, friend.accountId).includes('after'), 8000, 'the message after the parked one');
    expect(texts(victim, friend.accountId)).toEqual(['one', 'after']);
    const letters = victim.deadLetters();
    expect(letters).toHaveLength(1);
    expect(JSON.stringify(letters)).not.toContain('stuck');

    // The dead letter outlives a restart (when the store does), and the app can retry it.
    let again = victim;
    if (reopenStore) {
      await victim.close();
      inner.close();
      again = await reopen(track, reopenStore(), relay);
      expect(again.deadLetters().map((l) => l.id)).toEqual(letters.map((l) => l.id));
    }
    expect(await again.retryDeadLetter(letters[0]?.id as string)).toBe(true);
    expect(texts(again, friend.accountId)).toEqual(['one', 'after', 'stuck']);
    expect(again.deadLetters()).toEqual([]);
  });

  it('a store that fails a few times and recovers loses nothing and parks nothing', async () => {
    const relay = new FakeRelay();
    const store = new FlakyStore(backend().open());
    const victim = track(await newClient(relay, store));
    const friend = track(await newClient(relay));
    const parked = record(victim, 'dead-letter');
    let left = 3;
    store.failWrite = (table) => table === 'messages' && left-- > 0;
    await friend.sendText(victim.accountId, 'eventually');
    await redeliverUntil(relay, () => texts(victim, friend.accountId).includes('eventually'), 20);
    expect(texts(victim, friend.accountId)).toEqual(['eventually']);
    expect(parked).toEqual([]);
    await acknowledged(relay, victim, 'acknowledged');
  });
});
