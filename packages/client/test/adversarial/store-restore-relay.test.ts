/**
 * The restore check of spec/10-client.md §7.5 against the real relay on
 * loopback: its prekey counts and a device's own bundle are the witness.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningRelay, startServer, withDefaults } from '@parley/relay';
import { afterAll, describe, expect, it } from 'vitest';
import { ParleyClient } from '../../src/client.ts';
import { connectRelayNode } from '../../src/node.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { closedAfterEach, record, TEST_OPTIONS, until } from '../support/harness.ts';
import { copyOf } from './scene.ts';

const DAY = 24 * 3600 * 1000;
const dir = mkdtempSync(join(tmpdir(), 'parley-restore-'));
let relay: RunningRelay | null = null;
afterAll(async () => {
  await relay?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('store: a restored store on the real relay', () => {
  const track = closedAfterEach();

  it('is proven from the relay-held signed prekey; the next message is a fresh session the peer decrypts', async () => {
    relay = await startServer(withDefaults({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'relay'), logLevel: 'silent' }));
    const connector = connectRelayNode(relay.url);
    const clock = { now: Date.now() };
    const options = { ...TEST_OPTIONS, deliveryReceipts: false };
    const aliceStore = new MemoryStore({ clock: () => clock.now });
    const alice = track(await ParleyClient.createAccount({ store: aliceStore, relay: connector, clock: () => clock.now, options }));
    const bob = track(
      await ParleyClient.createAccount({
        store: new MemoryStore({ clock: () => clock.now }),
        relay: connector,
        clock: () => clock.now,
        options,
      }),
    );
    await alice.start();
    await bob.start();
    const undecryptable = record(bob, 'undecryptable');

    await alice.sendText(bob.accountId, 'one');
    await until(() => bob.history(alice.accountId).length === 1);
    const backup = copyOf(aliceStore, () => clock.now);
    await alice.sendText(bob.accountId, 'two');
    await until(() => bob.history(alice.accountId).length === 2);
    clock.now += 8 * DAY;
    await alice.maintain();
    await alice.close();

    const restored = track(await ParleyClient.open({ store: backup, relay: connector, clock: () => clock.now, options }));
    const warnings = record(restored, 'warning');
    await restored.start();
    expect(warnings.map((w) => w.code)).toContain('STORE_RESTORED');
    await restored.sendText(bob.accountId, 'three');
    await until(() => bob.history(alice.accountId).length === 3, 15_000, 'the message after the restore');
    expect(undecryptable).toEqual([]);
    // A second round finds nothing more: the relay now holds this store's newer keys.
    warnings.splice(0);
    await restored.maintain();
    expect(warnings.filter((w) => w.code === 'STORE_RESTORED' || w.code === 'RELAY_MISBEHAVED')).toEqual([]);
  });
});
