// Message versions in the SDK (spec/design/formats-v2.md §3.3, §3.5;
// spec/10-client.md §4.1.1): what a client publishes follows what it runs,
// bundles come from the relay's v2 route, a verified v2 bundle pins its
// device, and a bundle or first message below the pin is refused as a
// downgrade (typed, reported, never retried).
import { type CborValue, type DeviceCertificate, decodeCbor, defaultProvider, encodeCbor, toHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { pinnedVersion, withRaisedPin } from '../src/devices/version-pins.ts';
import { accountId, parseAccountId } from '../src/state/ids.ts';
import { loadDevices, saveDevices } from '../src/state/devices.ts';
import { deleteSession, loadSession } from '../src/state/sessions.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, next, record, TEST_OPTIONS, until } from './support/harness.ts';

const provider = defaultProvider();

describe('message versions on a fake relay', () => {
  const track = closedAfterEach();
  const make = async (relay: FakeRelay, sessionVersions: readonly number[] = [1], store = new MemoryStore()) => {
    const client = await ParleyClient.createAccount({ store, relay: relay.connector, options: { ...TEST_OPTIONS, sessionVersions } });
    await client.start();
    return { client: track(client), store };
  };
  const keysOf = (relay: FakeRelay, c: ParleyClient) => relay.keys.get(`${c.accountId}.${c.deviceId}`);
  const certificateOf = (store: MemoryStore, owner: ParleyClient, peer: ParleyClient): DeviceCertificate => {
    const c = loadDevices(store, parseAccountId(peer.accountId), provider).trusted.find((d) => d.deviceId === peer.deviceId);
    if (!c) throw new Error(`${owner.accountId} does not trust the peer device`);
    return c;
  };

  it('a client publishes the v2 form of its signed prekey only when it runs version 2', async () => {
    const relay = new FakeRelay();
    const { client: v1 } = await make(relay, [1]);
    const { client: v2 } = await make(relay, [1, 2]);
    expect(keysOf(relay, v1)?.signedV2).toBeNull();
    expect(keysOf(relay, v2)?.signedV2?.versions).toEqual([1, 2]);
    expect(keysOf(relay, v2)?.signedV2?.id).toBe(keysOf(relay, v2)?.signed.id);
  });

  it('a device that starts running version 2 publishes the v2 form of its current key at its next upkeep', async () => {
    const relay = new FakeRelay();
    const { client, store } = await make(relay, [1]);
    expect(keysOf(relay, client)?.signedV2).toBeNull();
    await client.close();
    const upgraded = track(
      await ParleyClient.open({ store, relay: relay.connector, options: { ...TEST_OPTIONS, sessionVersions: [1, 2] } }),
    );
    await upgraded.maintain();
    const keys = keysOf(relay, upgraded);
    expect(keys?.signedV2?.id).toBe(keys?.signed.id);
    expect(keys?.signedV2?.versions).toEqual([1, 2]);
  });

  it('a v1 client pins a device whose v2 bundle it verified, keeps talking v1 with it, and the pin survives a reload', async () => {
    const relay = new FakeRelay();
    const { client: alice, store } = await make(relay, [1]);
    const { client: bob } = await make(relay, [1, 2]);
    const got = next(bob, 'message');
    await alice.sendText(bob.accountId, 'hello');
    expect((await got).body).toEqual({ type: 'text', text: 'hello' });
    const reply = next(alice, 'message');
    await bob.sendText(alice.accountId, 'hi');
    await reply;
    const bobCert = certificateOf(store, alice, bob);
    expect(pinnedVersion(loadDevices(store, bobCert.accountKey, provider), bobCert, provider)).toBe(2);
    await alice.close();
    const reopened = track(await ParleyClient.open({ store, relay: relay.connector, options: { ...TEST_OPTIONS, sessionVersions: [1] } }));
    expect(reopened.accountId).toBe(alice.accountId);
    expect(pinnedVersion(loadDevices(store, bobCert.accountKey, provider), bobCert, provider)).toBe(2);
  });

  it('refuses a v1 bundle for a device pinned at 2 (a relay hiding the v2 signature): downgrade-refused, no session', async () => {
    const relay = new FakeRelay();
    const { client: alice, store } = await make(relay, [1]);
    const { client: bob } = await make(relay, [1, 2]);
    const got = next(bob, 'message');
    await alice.sendText(bob.accountId, 'first');
    await got;
    const bobAddress = { accountKey: parseAccountId(bob.accountId), deviceId: bob.deviceId };
    // The relay now serves v1 bundles only, and Alice needs a new session.
    relay.servesV2 = false;
    deleteSession(store, bobAddress);
    const refusals = record(alice, 'downgrade-refused');
    void alice.sendText(bob.accountId, 'second').catch(() => undefined);
    await until(() => refusals.length > 0, 10_000, 'a downgrade-refused event');
    expect(refusals[0]).toEqual({ account: bob.accountId, deviceId: bob.deviceId, version: 1, minVersion: 2 });
    expect(loadSession(store, bobAddress, provider).record.hasSession).toBe(false);
    // The pin did not move down.
    const bobCert = certificateOf(store, alice, bob);
    expect(pinnedVersion(loadDevices(store, bobCert.accountKey, provider), bobCert, provider)).toBe(2);
  });

  it('refuses and dead-letters a v1 first message from a device pinned at 2, without a retry request', async () => {
    const relay = new FakeRelay();
    const { client: alice, store: aliceStore } = await make(relay, [1]);
    const { client: bob, store: bobStore } = await make(relay, [1, 2]);
    const got = next(alice, 'message');
    await bob.sendText(alice.accountId, 'hello Alice');
    await got;
    // Bob has seen Alice's device sign version 2 (as after fetching a v2 bundle of hers).
    const aliceCert = certificateOf(bobStore, bob, alice);
    const known = loadDevices(bobStore, aliceCert.accountKey, provider);
    saveDevices(bobStore, withRaisedPin(known, aliceCert, 2, provider) ?? known);
    // Alice starts a new session in version 1 (she runs v1 only): to Bob that is a downgrade.
    deleteSession(aliceStore, { accountKey: parseAccountId(bob.accountId), deviceId: bob.deviceId });
    const refused = next(bob, 'downgrade-refused');
    const parked = next(bob, 'dead-letter');
    const undecryptable = next(bob, 'undecryptable');
    await alice.sendText(bob.accountId, 'v1 again');
    expect(await refused).toEqual({ account: alice.accountId, deviceId: alice.deviceId, version: 1, minVersion: 2 });
    expect((await parked).code).toBe('DOWNGRADE_REFUSED');
    expect(await undecryptable).toMatchObject({ code: 'DOWNGRADE_REFUSED', retryRequested: false });
    const texts = bob.history(alice.accountId).map((m) => (m.content.body.type === 'text' ? m.content.body.text : null));
    expect(texts).not.toContain('v1 again');
  });

  it('a pin belongs to one certificate: a re-registered device starts again, and a pin is never lowered', async () => {
    const relay = new FakeRelay();
    const { client: alice, store } = await make(relay, [1]);
    const { client: bob } = await make(relay, [1, 2]);
    const got = next(bob, 'message');
    await alice.sendText(bob.accountId, 'hello');
    await got;
    const cert = certificateOf(store, alice, bob);
    let known = loadDevices(store, cert.accountKey, provider);
    expect(withRaisedPin(known, cert, 1, provider)).toBeNull();
    expect(withRaisedPin(known, cert, 2, provider)).toBeNull();
    const raised = withRaisedPin(known, cert, 3, provider);
    expect(raised && pinnedVersion(raised, cert, provider)).toBe(3);
    // Another certificate under the same device id (a reinstall): no pin until its own bundle says so.
    const other: DeviceCertificate = { ...cert, signingKey: new Uint8Array(32).fill(7) };
    expect(pinnedVersion(known, other, provider)).toBeUndefined();
    known = withRaisedPin(known, other, 2, provider) ?? known;
    expect(pinnedVersion(known, cert, provider)).toBeUndefined();
    expect(known.pins).toHaveLength(1);
  });
});

describe('stored devices records', () => {
  it('a devices record saved before pins existed (four fields) loads with none, and saves with them', () => {
    const store = new MemoryStore();
    const accountKey = new Uint8Array(32).fill(3);
    saveDevices(store, { ...loadDevices(store, accountKey, provider), checkedAt: 5 });
    const saved = store.get('devices', accountId(accountKey)) as Uint8Array;
    // The same record without its last field, as a release before pins wrote it.
    const old = encodeCbor((decodeCbor(saved, 'r', 1 << 16) as CborValue[]).slice(0, -1));
    store.put('devices', accountId(accountKey), old);
    const loaded = loadDevices(store, accountKey, provider);
    expect(loaded.pins).toEqual([]);
    expect(loaded.checkedAt).toBe(5);
    saveDevices(store, loaded);
    expect(toHex(store.get('devices', accountId(accountKey)) as Uint8Array)).toBe(toHex(saved));
  });
});
