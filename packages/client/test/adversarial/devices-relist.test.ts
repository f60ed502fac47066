// Issue 11 finding 3: a malicious relay brings back a removed device for a
// first contact. Alice removes her laptop; the relay (or whoever holds its
// database, the stolen laptop's keys in hand) lists the laptop's old
// certificate again, serves a bundle made from the laptop's keys, and takes
// the laptop's envelope out of the send. Before the fix, Carol, who had
// never heard from Alice, trusted every certificate that verified, and the
// removed laptop read her first message. Now the relay serves Alice's
// signed device list, and Carol trusts only what its newest revision names.
// spec/10-client.md §5.1, §5.4, §12.
import { SessionRecord, defaultProvider, encodeBundle, encodeCertificate } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeContent } from '../../src/content/content.ts';
import { parseAccountId, toBase64Url } from '../../src/state/ids.ts';
import { loadDevices } from '../../src/state/devices.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { record } from '../support/harness.ts';
import { divertEnvelopes, jsonAnswer, relistDevice, serveBundle, withholdDeviceList } from '../support/malicious-relay.ts';
import { type World, world } from './support.ts';

const provider = defaultProvider();
let w: World;
beforeEach(async () => {
  w = await world();
});
afterEach(() => w.close());

/** What the holder of a device's keys can read of an envelope sent to it. */
function readAs(identity: NonNullable<ReturnType<typeof loadIdentity>>, sender: Uint8Array, envelope: Uint8Array): string | null {
  try {
    const result = new SessionRecord(provider).decrypt(envelope, {
      device: identity.device,
      prekeys: identity.prekeys,
      expectedAccountKey: sender,
    });
    const body = decodeContent(result.plaintext).body;
    return body.type === 'text' ? body.text : `[${body.type}]`;
  } catch {
    return null;
  }
}

describe('a malicious relay re-lists a removed device', () => {
  it("the removed laptop never receives a new contact's first message", async () => {
    const alice = await w.create();
    const laptopStore = new MemoryStore();
    const laptop = await w.link(alice, laptopStore);
    const stolen = loadIdentity(laptopStore, provider);
    if (!stolen) throw new Error('the laptop has no identity');
    await laptop.close();
    await alice.removeDevice(laptop.deviceId);

    const aliceKey = parseAccountId(alice.accountId);
    const certificate = encodeCertificate(stolen.device.certificate);
    const hash = provider.backend.sha256(certificate);
    relistDevice(w.evil, aliceKey, laptop.deviceId, certificate, hash);
    serveBundle(w.evil, aliceKey, laptop.deviceId, encodeBundle(stolen.prekeys.bundle()), hash);
    const captured: Uint8Array[] = [];
    divertEnvelopes(w.evil, aliceKey, laptop.deviceId, captured);

    const carol = await w.create();
    const refused = record(carol, 'untrusted-device');
    await carol.addContact(alice.accountId, 'alice');
    const outcome = await carol.sendText(alice.accountId, 'for Alice only').then(
      () => 'sent',
      (e: { code?: string }) => e.code,
    );

    const carolKey = parseAccountId(carol.accountId);
    const read = captured.map((e) => readAs(stolen, carolKey, e)).filter((t) => t !== null);
    expect(read).toEqual([]);
    expect(captured).toEqual([]);
    // The ghost holds the send (the relay insists on covering every device it lists): denial, not disclosure.
    expect(outcome).toBe('UNTRUSTED_DEVICE');
    expect(refused).toContainEqual({ account: alice.accountId, deviceId: laptop.deviceId, reason: 'not-in-device-list' });
  });

  it('a relay that serves an older signed list cannot roll back a client that has seen a newer one', async () => {
    const alice = await w.create();
    const laptopStore = new MemoryStore();
    const laptop = await w.link(alice, laptopStore);
    const stolen = loadIdentity(laptopStore, provider);
    if (!stolen) throw new Error('the laptop has no identity');
    const aliceKey = parseAccountId(alice.accountId);
    // The revision that still names the laptop, as the laptop itself holds it.
    const oldList = loadDevices(laptopStore, aliceKey, provider).list;
    if (!oldList) throw new Error('the laptop holds no list');

    const carol = await w.create();
    await carol.addContact(alice.accountId, 'alice');
    expect((await carol.devices(alice.accountId)).map((d) => d.deviceId)).toEqual([1, laptop.deviceId]);
    await laptop.close();
    await alice.removeDevice(laptop.deviceId);
    expect((await carol.devices(alice.accountId)).map((d) => d.deviceId)).toEqual([1]);

    const certificate = encodeCertificate(stolen.device.certificate);
    const hash = provider.backend.sha256(certificate);
    w.evil.onRequest((req) =>
      req.method === 'GET' && req.path === `/v1/accounts/${alice.accountId}/device-list`
        ? jsonAnswer(200, { account: alice.accountId, revision: oldList.revision, deviceList: toBase64Url(oldList.encoded), updatedAt: 0 })
        : undefined,
    );
    relistDevice(w.evil, aliceKey, laptop.deviceId, certificate, hash);
    serveBundle(w.evil, aliceKey, laptop.deviceId, encodeBundle(stolen.prekeys.bundle()), hash);
    const captured: Uint8Array[] = [];
    divertEnvelopes(w.evil, aliceKey, laptop.deviceId, captured);

    expect((await carol.devices(alice.accountId)).map((d) => d.deviceId)).toEqual([1]);
    const outcome = await carol.sendText(alice.accountId, 'not for the laptop').then(
      () => 'sent',
      (e: { code?: string }) => e.code,
    );
    expect(outcome).toBe('UNTRUSTED_DEVICE');
    expect(captured).toEqual([]);
  });

  it('a relay that withholds the signed list gets no message through: nothing is trusted without one', async () => {
    const alice = await w.create();
    withholdDeviceList(w.evil, parseAccountId(alice.accountId));
    const carol = await w.create();
    const refused = record(carol, 'untrusted-device');
    await carol.addContact(alice.accountId, 'alice');
    const outcome = await carol.sendText(alice.accountId, 'hello?').then(
      () => 'sent',
      (e: { code?: string }) => e.code,
    );
    expect(outcome).toBe('UNTRUSTED_DEVICE');
    expect(refused).toContainEqual({ account: alice.accountId, deviceId: 1, reason: 'no-device-list' });
  });
});
