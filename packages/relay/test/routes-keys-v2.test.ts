// The v2 bundle route and the stored second signature (spec/09-relay.md
// §4.2.1, spec/design/formats-v2.md §3.1): a v2 device uploads its signed
// prekey twice signed; /v1 serves the v1 bundle unchanged, /v2 the
// PreKeyBundleV2 (or the v1 bundle of a v1-only device); both routes share
// the one-time keys. On SQLite and, when PARLEY_TEST_POSTGRES_URL is set, PostgreSQL.
import {
  type AnyPreKeyBundle,
  decodeAnyBundle,
  decodeBundle,
  encodeSignedPreKey,
  encodeSignedPreKeyV2,
  isBundleV2,
  verifyBundle,
} from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestDevice, type TestRelay, fromBase64Url, inject, json, makeDevice, register, testRelay, toBase64Url } from './support.ts';
import { storageBackends } from './support/backends.ts';

type Bundles = { bundles: { deviceId: number; bundle: string }[] };

const BACKENDS = storageBackends('parley_t');

describe.each(BACKENDS)('v2 bundles ($name)', (backend) => {
  let relay: TestRelay;
  let drop: () => Promise<void>;
  let bob: TestDevice;
  let alice: TestDevice;
  const v2Form = (d: TestDevice) => ({ signedPreKeyV2: toBase64Url(encodeSignedPreKeyV2(d.prekeys.currentSignedPreKeyV2())) });

  beforeEach(async () => {
    const database = backend.database();
    drop = database.drop;
    relay = await testRelay({}, { storage: await database.open() });
    bob = makeDevice(undefined, 1, { oneTimePreKeys: 3, kemPreKeys: 2 });
    alice = makeDevice();
    await register(relay.app, bob, {}, v2Form(bob));
    await register(relay.app, alice);
  });
  afterEach(async () => {
    await relay.close();
    await drop();
  });

  const fetch = async (route: 'v1' | 'v2', target: TestDevice, device: number | '*' = 1): Promise<AnyPreKeyBundle[]> => {
    const r = await inject(relay.app, alice.signer, { method: 'GET', url: `/${route}/keys/${target.id}/${device}` });
    expect(r.statusCode).toBe(200);
    return json<Bundles>(r).bundles.map((b) => decodeAnyBundle(fromBase64Url(b.bundle)));
  };

  it('/v2 serves the PreKeyBundleV2 of a v2 device, /v1 its unchanged v1 bundle; one-time keys are shared', async () => {
    const [v2] = await fetch('v2', bob);
    const [v1] = await fetch('v1', bob);
    if (!v2 || !v1) throw new Error('no bundle');
    expect(v2.version).toBe(2);
    expect(v1.version).toBe(1);
    verifyBundle(v2, { expectedAccountKey: bob.account.publicKey });
    verifyBundle(v1, { expectedAccountKey: bob.account.publicKey });
    // An old client's decoder reads the v1 route as before.
    const r = await inject(relay.app, alice.signer, { method: 'GET', url: `/v1/keys/${bob.id}/1` });
    expect(decodeBundle(fromBase64Url((json<Bundles>(r).bundles[0] as { bundle: string }).bundle)).version).toBe(1);
    // Same signed prekey on both routes; each fetch took its own one-time keys.
    expect(v2.signedPreKey.id).toBe(v1.signedPreKey.id);
    expect(toBase64Url(v2.signedPreKey.publicKey)).toBe(toBase64Url(v1.signedPreKey.publicKey));
    const ids = bob.prekeys.oneTimePreKeys().map((k) => k.id);
    expect([v2.oneTimePreKey?.id, v1.oneTimePreKey?.id]).toEqual(ids.slice(0, 2));
    expect(v2.kemPreKey.id).not.toBe(v1.kemPreKey.id);
  });

  it('/v2 serves a v1-only device its v1 bundle, for all devices of an account too', async () => {
    const bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(relay.app, bob2); // an old release: no v2 form
    const all = await fetch('v2', bob, '*');
    expect(all.map((b) => [b.certificate.deviceId, b.version])).toEqual([
      [1, 2],
      [2, 1],
    ]);
    const carol = makeDevice(); // an old release on another account
    await register(relay.app, carol);
    expect((await fetch('v2', carol)).map((b) => b.version)).toEqual([1]);
  });

  it('a signed prekey uploaded without its v2 form takes the device back to v1 bundles, and with it to v2', async () => {
    const counts = async () => json(await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/keys' }));
    expect(await counts()).toMatchObject({ signedPreKeyV2: true });
    const next = bob.prekeys.rotateSignedPreKey();
    const put = (body: Record<string, unknown>) => inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: body });
    expect((await put({ signedPreKey: toBase64Url(encodeSignedPreKey(next)) })).statusCode).toBe(200);
    // The counts tell the device that its current key lacks the v2 form.
    expect(await counts()).toMatchObject({ signedPreKeyId: next.id, signedPreKeyV2: false });
    const [old] = await fetch('v2', bob);
    expect(old?.version).toBe(1);
    expect(old?.signedPreKey.id).toBe(next.id);
    // Re-uploading the same key with its v2 form (an upgraded client) restores v2.
    expect((await put({ signedPreKey: toBase64Url(encodeSignedPreKey(next)), ...v2Form(bob) })).statusCode).toBe(200);
    expect(await counts()).toMatchObject({ signedPreKeyV2: true });
    const [upgraded] = await fetch('v2', bob);
    expect(upgraded?.version).toBe(2);
    expect(upgraded?.signedPreKey.id).toBe(next.id);
  });

  it('refuses a v2 form that is not the same key, does not verify, or comes without the v1 form', async () => {
    const put = (body: Record<string, unknown>) => inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: body });
    const current = bob.prekeys.currentSignedPreKey();
    const v2 = bob.prekeys.currentSignedPreKeyV2();
    const other = makeDevice().prekeys.currentSignedPreKeyV2();
    const cases: [Record<string, unknown>, string][] = [
      [{ signedPreKeyV2: toBase64Url(encodeSignedPreKeyV2(v2)) }, 'MALFORMED'],
      [
        {
          signedPreKey: toBase64Url(encodeSignedPreKey(current)),
          signedPreKeyV2: toBase64Url(encodeSignedPreKeyV2({ ...other, id: current.id })),
        },
        'MALFORMED',
      ],
      [
        {
          signedPreKey: toBase64Url(encodeSignedPreKey(current)),
          signedPreKeyV2: toBase64Url(encodeSignedPreKeyV2({ ...v2, versions: [1, 2, 3] })),
        },
        'BAD_SIGNATURE',
      ],
      [{ signedPreKey: toBase64Url(encodeSignedPreKey(current)), signedPreKeyV2: toBase64Url(Uint8Array.of(0x80)) }, 'MALFORMED'],
    ];
    for (const [body, code] of cases) {
      const r = await put(body);
      expect(r.statusCode).toBe(400);
      expect(json(r).code).toBe(code);
    }
    // Nothing of the refused uploads was stored: the v2 bundle still carries the original versions.
    const [b] = await fetch('v2', bob);
    if (!b || !isBundleV2(b)) throw new Error('expected a v2 bundle');
    expect(b.signedPreKey.versions).toEqual([1, 2]);
  });

  it("a device claims its own bundle by id (the client's restore check), while '*' leaves it out", async () => {
    for (const route of ['v1', 'v2']) {
      const own = await inject(relay.app, bob.signer, { method: 'GET', url: `/${route}/keys/${bob.id}/1` });
      expect(own.statusCode, route).toBe(200);
      const all = await inject(relay.app, bob.signer, { method: 'GET', url: `/${route}/keys/${bob.id}/*` });
      expect(all.statusCode, route).toBe(404);
    }
  });

  it('counts bundles served by route and version', async () => {
    const carol = makeDevice();
    await register(relay.app, carol);
    await fetch('v2', bob);
    await fetch('v2', carol);
    await fetch('v1', bob);
    const metrics = await relay.app.relay.metrics.registry.getSingleMetricAsString('parley_relay_bundles_served_total');
    expect(metrics).toContain('route="v2",version="2"} 1');
    expect(metrics).toContain('route="v2",version="1"} 1');
    expect(metrics).toContain('route="v1",version="1"} 1');
  });
});
