/**
 * Every write of the SDK waits its turn in the serial queue
 * (engine/run.ts): a write made while another job is between two of its
 * steps lands after that job, never in the middle of it.
 *
 * The case that showed it: `setExpireTimer` used to write the timer at
 * once, outside the queue. A peer's timer change already queued behind a
 * running job was then applied after ours and overwrote it here, while our
 * timer message still told the peer our value: the two sides ended with
 * different timers, each believing the conversation agreed.
 */
import type { Account, DeviceIdentity } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient, type RelayConnector } from '../src/client.ts';
import type { MailboxHandlers, RelayLink } from '../src/relay-link/link.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { TEST_OPTIONS, closedAfterEach, newClient, next, until } from './support/harness.ts';

/** A connector whose `listDevices` can be held (keeping one job of the client's queue mid-way), counting pushed envelopes. */
function heldConnector(relay: FakeRelay) {
  const state = { hold: null as Promise<void> | null, holding: false, arrived: 0 };
  const connector: RelayConnector = (self: { device: DeviceIdentity; account: Account | null }) => {
    const link = relay.connector(self);
    return new Proxy(link, {
      get(target, prop) {
        if (prop === 'listDevices')
          return async (accountKey: Uint8Array) => {
            if (state.hold) {
              state.holding = true;
              await state.hold;
            }
            return target.listDevices(accountKey);
          };
        if (prop === 'openMailbox')
          return (h: MailboxHandlers) =>
            target.openMailbox({
              ...h,
              onEnvelope: (e) => {
                state.arrived++;
                return h.onEnvelope(e);
              },
            });
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as RelayLink;
  };
  return { connector, state };
}

describe('writes wait their turn in the serial queue', () => {
  const track = closedAfterEach();

  it("setExpireTimer lands after a peer's timer change already queued: both sides end with our timer", async () => {
    const relay = new FakeRelay();
    const held = heldConnector(relay);
    const alice = track(await ParleyClient.createAccount({ store: new MemoryStore(), relay: held.connector, options: TEST_OPTIONS }));
    await alice.start();
    const bob = track(await newClient(relay));

    const delivered = next(alice, 'receipt', (r) => r.status === 'delivered');
    const hello = next(bob, 'message');
    await alice.sendText(bob.accountId, 'hello');
    await hello;
    await delivered; // nothing of Bob's left in flight to Alice

    // One of Alice's jobs stops mid-way (its device-list fetch is held).
    let release!: () => void;
    held.state.hold = new Promise<void>((r) => {
      release = r;
    });
    const listing = alice.devices(bob.accountId);
    await until(() => held.state.holding, 5000, "Alice's job to reach the held fetch");

    // Bob sets 30 s: his timer message reaches Alice and queues behind the held job.
    const before = held.state.arrived;
    await bob.setExpireTimer(alice.accountId, 30);
    await until(() => held.state.arrived > before, 5000, "Bob's timer message to reach Alice");

    // Alice sets 60 s meanwhile; then the held job goes on.
    const setting = alice.setExpireTimer(bob.accountId, 60);
    release();
    held.state.hold = null;
    await listing;
    await setting;
    await until(() => bob.expireTimer(alice.accountId) === 60, 5000, "Alice's timer to reach Bob");

    // Bob's change came first, Alice's after it: both sides hold 60.
    expect(alice.expireTimer(bob.accountId)).toBe(60);
    expect(bob.expireTimer(alice.accountId)).toBe(60);
  });
});
