import { Account, encodeCertificate } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { parseAccountId } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, newClient, next, TEST_OPTIONS, until } from './support/harness.ts';

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).map((h) => (h.content.body.type === 'text' ? `${h.outgoing ? '>' : '<'}${h.content.body.text}` : '?'));

describe('devices: linking, fan-out to all devices, removal, ghosts', () => {
  const track = closedAfterEach();

  async function linkDevice(relay: FakeRelay, primary: ParleyClient): Promise<ParleyClient> {
    const store = new MemoryStore();
    const request = ParleyClient.requestLink({ store });
    const response = await primary.approveLink(request);
    const device = track(await ParleyClient.completeLink({ store, relay: relay.connector, options: TEST_OPTIONS }, response));
    await device.start();
    return device;
  }

  it('links a second device that then gets every message of the account, and syncs what each device sends', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    // A first exchange: each side now holds the other's signed device list.
    await alice.sendText(bob.accountId, 'one');
    await until(() => texts(bob, alice.accountId).length === 1);
    await bob.sendText(alice.accountId, 'two');
    await until(() => texts(alice, bob.accountId).length === 2);

    const alice2 = await linkDevice(relay, alice);
    expect(alice2.accountId).toBe(alice.accountId);
    expect(alice2.deviceId).toBe(2);
    expect(alice2.isPrimary).toBe(false);
    await alice.flush();

    // Bob's message reaches both of Alice's devices.
    await bob.sendText(alice.accountId, 'three');
    await until(() => texts(alice2, bob.accountId).includes('<three'), 10_000, 'alice2 gets three');
    await until(() => texts(alice, bob.accountId).includes('<three'), 10_000, 'alice gets three');

    // What Alice's second device sends shows on Bob's side and on her first device.
    await alice2.sendText(bob.accountId, 'four, from the laptop');
    await until(() => texts(bob, alice.accountId).includes('<four, from the laptop'));
    await until(() => texts(alice, bob.accountId).includes('>four, from the laptop'), 10_000, 'sync transcript on alice 1');
    expect((await alice.devices()).map((d) => d.deviceId)).toEqual([1, 2]);
    expect((await bob.devices(alice.accountId)).map((d) => d.deviceId)).toEqual([1, 2]);
  });

  it('removes a device: it gets nothing more, and the relay cannot put it back', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    await alice.sendText(bob.accountId, 'hello');
    await until(() => texts(bob, alice.accountId).length === 1);
    await bob.sendText(alice.accountId, 'hi');
    const alice2 = await linkDevice(relay, alice);
    await alice.flush();
    await until(() => texts(alice2, bob.accountId).length === 0 || true);

    // Remember the certificate the relay had for device 2, as a malicious relay would.
    const removedCertificate = relay.list(parseAccountId(alice.accountId)).find((d) => d.deviceId === 2)?.certificate as Uint8Array;
    await alice.removeDevice(2);
    await alice.flush();
    await bob.sendText(alice.accountId, 'after removal');
    await until(() => texts(alice, bob.accountId).includes('<after removal'));
    expect(texts(alice2, bob.accountId)).not.toContain('<after removal');

    // The relay re-inserts the removed device: Bob's client refuses it and sends nothing to anyone.
    relay.injectDevice(parseAccountId(alice.accountId), 2, removedCertificate);
    const refused = next(bob, 'untrusted-device');
    await expect(bob.sendText(alice.accountId, 'not for the ghost')).rejects.toMatchObject({ code: 'UNTRUSTED_DEVICE' });
    expect(await refused).toMatchObject({ account: alice.accountId, deviceId: 2, reason: 'not-in-device-list' });
    expect(relay.queued({ accountKey: parseAccountId(alice.accountId), deviceId: 2 })).toEqual([]);
    expect(texts(alice, bob.accountId)).not.toContain('<not for the ghost');

    // Once the row is gone again, the waiting message goes out: nothing lost.
    relay.deleteDeviceRow(parseAccountId(alice.accountId), 2);
    await until(() => texts(alice, bob.accountId).includes('<not for the ghost'), 20_000, 'queued message after the ghost left');
  });

  it('refuses a ghost whose certificate the account never signed, even without a signed list', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    const mallory = Account.generate();
    const forged = mallory.createDevice(7).certificate;
    // A certificate that claims Alice's account but carries Mallory's signature.
    relay.injectDevice(parseAccountId(alice.accountId), 7, encodeCertificate({ ...forged, accountKey: parseAccountId(alice.accountId) }));
    const refused = next(bob, 'untrusted-device');
    await expect(bob.sendText(alice.accountId, 'hello')).rejects.toMatchObject({ code: 'UNTRUSTED_DEVICE' });
    expect(await refused).toMatchObject({ deviceId: 7, reason: 'bad-certificate' });
    expect(relay.queued({ accountKey: parseAccountId(alice.accountId), deviceId: 7 })).toEqual([]);
  });

  it('refuses a message from a device the account removed (relayed by a relay that should have dropped it)', async () => {
    const relay = new FakeRelay();
    const alice = track(await newClient(relay));
    const bob = track(await newClient(relay));
    await alice.sendText(bob.accountId, 'hello');
    await until(() => texts(bob, alice.accountId).length === 1);
    const alice2 = await linkDevice(relay, alice);
    await alice.flush();
    await alice2.sendText(bob.accountId, 'from the laptop');
    await until(() => texts(bob, alice.accountId).includes('<from the laptop'));

    await alice.removeDevice(2);
    await alice.flush();
    // The fake relay, unlike the real one, still accepts the removed device's requests: a lying relay.
    const refused = next(bob, 'untrusted-device');
    await alice2.sendText(bob.accountId, 'from the removed laptop').catch(() => undefined);
    expect(await refused).toMatchObject({ account: alice.accountId, deviceId: 2, reason: 'not-in-device-list' });
    expect(texts(bob, alice.accountId)).not.toContain('<from the removed laptop');
  });
});
