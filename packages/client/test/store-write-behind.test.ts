/**
 * A write-behind store (IndexedDbStore) commits to memory first and to disk
 * later. The SDK must not let anything leave the device that depends on
 * state not yet durable (spec/10-client.md §7.1): no envelope before its
 * session step is on disk (a reload would encrypt again under the same
 * message key), no acknowledgement before the received message is on disk
 * (a reload would lose what the relay already deleted).
 *
 * A MemoryStore whose `flushed()` stays pending until the test opens a gate
 * stands in for a slow disk.
 */
import { describe, expect, it } from 'vitest';
import { parseAccountId } from '../src/state/ids.ts';
import type { RelayLink } from '../src/relay-link/link.ts';
import { durableRelay } from '../src/store/durable-relay.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, next, until } from './support/harness.ts';

class SlowDiskStore extends MemoryStore {
  waiting = 0;
  #open: Promise<void> = Promise.resolve();
  #release: () => void = () => {};

  /** From now on, `flushed()` waits until `release()`. */
  hold(): void {
    this.#open = new Promise((resolve) => {
      this.#release = resolve;
    });
  }

  release(): void {
    this.#release();
    this.#open = Promise.resolve();
  }

  flushed(): Promise<void> {
    this.waiting++;
    return this.#open;
  }
}

const track = closedAfterEach();
const settle = () => new Promise((r) => setTimeout(r, 50));

describe('write-behind stores', () => {
  it('sends no envelope until the store says its session step is durable', async () => {
    const relay = new FakeRelay();
    const disk = new SlowDiskStore();
    const alice = track(await newClient(relay, disk));
    const bob = track(await newClient(relay));
    let delivered = false;
    bob.on('message', () => {
      delivered = true;
    });
    disk.hold();
    const waitedBefore = disk.waiting;
    const sending = alice.sendText(bob.accountId, 'only after the disk');
    // Either the SDK waits for the store, or (the bug) the envelope goes out and reaches Bob.
    await until(() => disk.waiting > waitedBefore || delivered, 5000, 'the send to proceed');
    await settle();
    expect(delivered).toBe(false);
    const received = next(bob, 'message');
    disk.release();
    await sending;
    expect((await received).body).toEqual({ type: 'text', text: 'only after the disk' });
  });

  it('acknowledges no envelope until the store says the received message is durable', async () => {
    const relay = new FakeRelay();
    const disk = new SlowDiskStore();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay, disk));
    const bobAddress = { accountKey: parseAccountId(bob.accountId), deviceId: 1 };
    disk.hold();
    const waitedBefore = disk.waiting;
    await alice.sendText(bob.accountId, 'kept until durable');
    // Either Bob's SDK waits for the store, or (the bug) it acknowledges and the relay deletes the envelope.
    await until(() => disk.waiting > waitedBefore || relay.queued(bobAddress).length === 0, 5000, 'the receive to proceed');
    await settle();
    // Decrypted and stored in memory, but still on the relay: a reload now would get it again.
    expect(relay.queued(bobAddress)).toHaveLength(1);
    disk.release();
    await until(() => relay.queued(bobAddress).length === 0, 5000, 'the acknowledgement');
  });
});

describe('durableRelay', () => {
  it('holds every publishing call until the store is durable, and passes reads through at once', async () => {
    const disk = new SlowDiskStore();
    const calls: string[] = [];
    const link = {
      registerDevice: async () => calls.push('registerDevice'),
      uploadPreKeys: async () => calls.push('uploadPreKeys'),
      send: async () => calls.push('send'),
      removeDevice: async () => calls.push('removeDevice'),
      listDevices: async () => calls.push('listDevices'),
    } as unknown as RelayLink & { removeDevice(id: number): Promise<void> };
    const wrapped = durableRelay(link, disk);
    disk.hold();
    const pending = [wrapped.registerDevice({} as never), wrapped.uploadPreKeys({}), wrapped.send([]), wrapped.removeDevice(2)];
    await wrapped.listDevices(new Uint8Array(32));
    await settle();
    expect(calls).toEqual(['listDevices']);
    disk.release();
    await Promise.all(pending);
    expect(calls.sort()).toEqual(['listDevices', 'registerDevice', 'removeDevice', 'send', 'uploadPreKeys']);
  });

  it('leaves the link of a synchronous store as it is', () => {
    const link = {} as RelayLink;
    expect(durableRelay(link, new MemoryStore())).toBe(link);
  });
});
