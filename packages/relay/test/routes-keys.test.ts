// Prekeys: upload (idempotent, append), counts, bundles (one-time keys
// handed out once, last-resort fallback), and the exhaustion defences.
// spec/09-relay.md §4.2.
import { decodeBundle, encodeKemPreKey, encodeOneTimePreKey, encodeSignedPreKey, verifyBundle } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestDevice, type TestRelay, fromBase64Url, inject, json, makeDevice, register, testRelay, toBase64Url } from './support.ts';

let relay: TestRelay;
let bob: TestDevice;
let alice: TestDevice;
beforeEach(async () => {
  relay = await testRelay({ limits: { maxOneTimePreKeys: 8, maxKemPreKeys: 3 } });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 3, kemPreKeys: 1 });
  alice = makeDevice();
  await register(relay.app, bob);
  await register(relay.app, alice);
});
afterEach(() => relay.close());

type Bundles = { bundles: { deviceId: number; bundle: string; certificateHash: string }[] };
const fetchBundle = async (who: TestDevice, target: TestDevice, device: number | '*' = 1) =>
  inject(relay.app, who.signer, { method: 'GET', url: `/v1/keys/${target.id}/${device}` });

describe('bundles', () => {
  it('hands out each one-time prekey once, lowest first, then falls back to the last-resort KEM key', async () => {
    const seen: (number | null)[] = [];
    const kem: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await fetchBundle(alice, bob);
      expect(r.statusCode).toBe(200);
      const b = decodeBundle(fromBase64Url((json<Bundles>(r).bundles[0] as { bundle: string }).bundle));
      verifyBundle(b, { expectedAccountKey: bob.account.publicKey });
      seen.push(b.oneTimePreKey?.id ?? null);
      kem.push(b.kemPreKey.lastResort);
    }
    const ids = bob.prekeys.oneTimePreKeys().map((k) => k.id);
    expect(seen).toEqual([...ids, null]);
    expect(kem).toEqual([false, true, true, true]);
    const counts = json(await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/keys' }));
    expect(counts).toMatchObject({ oneTimePreKeys: 0, kemPreKeys: 0 });
  });

  it("'*' returns every device of the account but the requester", async () => {
    const bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(relay.app, bob2);
    const all = json<Bundles>(await fetchBundle(alice, bob, '*')).bundles.map((b) => b.deviceId);
    expect(all).toEqual([1, 2]);
    const own = json<Bundles>(await fetchBundle(bob2, bob, '*')).bundles.map((b) => b.deviceId);
    expect(own).toEqual([1]);
  });

  it('unknown accounts and devices are 404', async () => {
    expect((await fetchBundle(alice, bob, 7)).statusCode).toBe(404);
    expect((await fetchBundle(alice, makeDevice(), '*')).statusCode).toBe(404);
  });

  it('a retried upload never puts a handed-out key back', async () => {
    const upload = { oneTimePreKeys: bob.prekeys.oneTimePreKeys().map((k) => toBase64Url(encodeOneTimePreKey(k))) };
    await fetchBundle(alice, bob); // takes the lowest id
    const r = json(await inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: upload }));
    expect(r).toMatchObject({ oneTimePreKeys: 2, ignored: 3 });
    const next = decodeBundle(fromBase64Url((json<Bundles>(await fetchBundle(alice, bob)).bundles[0] as { bundle: string }).bundle));
    expect(next.oneTimePreKey?.id).toBe(bob.prekeys.oneTimePreKeys()[1]?.id);
  });

  it('past the per-device daily budget, bundles come without one-time keys', async () => {
    await relay.close();
    relay = await testRelay({ rateLimits: { oneTimePreKeysPerDayPerDevice: 1 } });
    await register(relay.app, bob);
    await register(relay.app, alice);
    const first = decodeBundle(fromBase64Url((json<Bundles>(await fetchBundle(alice, bob)).bundles[0] as { bundle: string }).bundle));
    const second = decodeBundle(fromBase64Url((json<Bundles>(await fetchBundle(alice, bob)).bundles[0] as { bundle: string }).bundle));
    expect(first.oneTimePreKey).not.toBeNull();
    expect(second.oneTimePreKey).toBeNull();
    expect(second.kemPreKey.lastResort).toBe(true);
    expect(json(await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/keys' })).oneTimePreKeys).toBe(2);
  });

  it('bundle fetches are rate-limited per requesting account', async () => {
    await relay.close();
    relay = await testRelay({ rateLimits: { bundleFetchesPerMinutePerAccount: 2 } });
    await register(relay.app, bob);
    await register(relay.app, alice);
    expect((await fetchBundle(alice, bob)).statusCode).toBe(200);
    expect((await fetchBundle(alice, bob)).statusCode).toBe(200);
    const third = await fetchBundle(alice, bob);
    expect(third.statusCode).toBe(429);
    expect(json(third).code).toBe('RATE_LIMITED');
    expect(third.headers['retry-after']).toBeDefined();
  });
});

describe('uploads', () => {
  it('appends one-time keys and reports counts; the pool is bounded', async () => {
    const more = bob.prekeys.generateOneTimePreKeys(5).map((k) => toBase64Url(encodeOneTimePreKey(k)));
    const r = await inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: { oneTimePreKeys: more } });
    expect(json(r)).toMatchObject({ oneTimePreKeys: 8, ignored: 0 });
    const over = bob.prekeys.generateOneTimePreKeys(1).map((k) => toBase64Url(encodeOneTimePreKey(k)));
    const refused = await inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: { oneTimePreKeys: over } });
    expect(refused.statusCode).toBe(409);
    expect(json(refused)).toMatchObject({ code: 'TOO_MANY_PREKEYS', details: { kind: 'oneTime', limit: 8 } });
    // Nothing of the refused upload was stored.
    expect(json(await inject(relay.app, bob.signer, { method: 'GET', url: '/v1/keys' })).oneTimePreKeys).toBe(8);
  });

  it('rotates the signed prekey and ignores an older one', async () => {
    const old = bob.prekeys.currentSignedPreKey();
    const rotated = bob.prekeys.rotateSignedPreKey();
    await inject(relay.app, bob.signer, {
      method: 'PUT',
      url: '/v1/keys',
      json: { signedPreKey: toBase64Url(encodeSignedPreKey(rotated)) },
    });
    const stale = await inject(relay.app, bob.signer, {
      method: 'PUT',
      url: '/v1/keys',
      json: { signedPreKey: toBase64Url(encodeSignedPreKey(old)) },
    });
    expect(json(stale)).toMatchObject({ signedPreKeyId: rotated.id, ignored: 1 });
    const b = decodeBundle(fromBase64Url((json<Bundles>(await fetchBundle(alice, bob)).bundles[0] as { bundle: string }).bundle));
    expect(b.signedPreKey.id).toBe(rotated.id);
  });

  it('refuses prekeys signed by another key', async () => {
    const foreign = makeDevice().prekeys.generateKemPreKeys(1)[0];
    const r = await inject(relay.app, bob.signer, {
      method: 'PUT',
      url: '/v1/keys',
      json: { kemPreKeys: [toBase64Url(encodeKemPreKey(foreign!))] },
    });
    expect(r.statusCode).toBe(400);
    expect(json(r).code).toBe('BAD_SIGNATURE');
  });

  it('refuses a last-resort key in the one-time pool and the reverse', async () => {
    const lastResort = toBase64Url(encodeKemPreKey(bob.prekeys.lastResortKemPreKey()));
    const oneTime = toBase64Url(encodeKemPreKey(bob.prekeys.generateKemPreKeys(1)[0]!));
    for (const body of [{ kemPreKeys: [lastResort] }, { lastResortKemPreKey: oneTime }]) {
      const r = await inject(relay.app, bob.signer, { method: 'PUT', url: '/v1/keys', json: body });
      expect(r.statusCode).toBe(400);
      expect(json(r).code).toBe('MALFORMED');
    }
  });
});
