// Device directory: registration (certificate + proof of possession),
// listing with certificates, removal and revocation. spec/09-relay.md §4.1.
import { Account, decodeCertificate, encodeCertificate } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type TestDevice,
  type TestRelay,
  accountOf,
  fromBase64Url,
  inject,
  json,
  makeDevice,
  register,
  removalUrl,
  testRelay,
  toBase64Url,
} from './support.ts';

let relay: TestRelay;
beforeEach(async () => {
  relay = await testRelay({ limits: { maxDevicesPerAccount: 3 } });
});
afterEach(() => relay.close());

describe('device registration', () => {
  it('registers a device and lists it with a certificate clients can verify', async () => {
    const alice = makeDevice();
    const r = json(await register(relay.app, alice));
    expect(r).toMatchObject({
      status: 'created',
      account: alice.id,
      deviceId: 1,
      preKeys: { oneTimePreKeys: 5, kemPreKeys: 2, ignored: 0 },
    });

    const list = await inject(relay.app, alice.signer, { method: 'GET', url: `/v1/accounts/${alice.id}/devices` });
    expect(list.statusCode).toBe(200);
    const devices = json<{ devices: { deviceId: number; certificate: string }[] }>(list).devices;
    expect(devices.map((d) => d.deviceId)).toEqual([1]);
    const first = devices[0] as { certificate: string };
    expect(encodeCertificate(decodeCertificate(fromBase64Url(first.certificate)))).toEqual(encodeCertificate(alice.device.certificate));
  });

  it('re-registering the same certificate is harmless', async () => {
    const alice = makeDevice();
    await register(relay.app, alice);
    const again = json(await register(relay.app, alice));
    expect(again).toMatchObject({ status: 'unchanged', preKeys: { oneTimePreKeys: 5, ignored: 5 + 2 + 0 } });
  });

  it('refuses a certificate for another account (nobody registers under someone else)', async () => {
    const victim = Account.generate();
    const mallory = makeDevice();
    // Mallory certifies her own keys with her account but claims the victim's account in the header.
    const forged = { ...mallory.signer, accountKey: victim.publicKey };
    const body = { certificate: toBase64Url(encodeCertificate(mallory.device.certificate)) };
    const r = await inject(relay.app, forged, { method: 'PUT', url: '/v1/devices', json: { ...body, ...(await keysJson(mallory)) } });
    expect(r.statusCode).toBe(400);
    expect(json(r).code).toBe('BAD_CERTIFICATE');
  });

  it('refuses a certificate not signed by its account', async () => {
    const alice = makeDevice();
    const cert = { ...alice.device.certificate, signature: new Uint8Array(64).fill(7) };
    const r = await inject(relay.app, alice.signer, {
      method: 'PUT',
      url: '/v1/devices',
      json: { certificate: toBase64Url(encodeCertificate(cert)), ...(await keysJson(alice)) },
    });
    expect(json(r).code).toBe('BAD_CERTIFICATE');
  });

  it('requires proof of possession of the device key', async () => {
    const alice = makeDevice();
    const other = makeDevice(alice.account, 1);
    // Signed by another key than the certificate's signing key.
    const r = await inject(relay.app, other.signer, {
      method: 'PUT',
      url: '/v1/devices',
      json: { certificate: toBase64Url(encodeCertificate(alice.device.certificate)), ...(await keysJson(alice)) },
    });
    expect(r.statusCode).toBe(401);
    expect(json(r).code).toBe('AUTH_BAD_SIGNATURE');
  });

  it('enforces the device limit per account', async () => {
    const account = Account.generate();
    for (const id of [1, 2, 3]) await register(relay.app, makeDevice(account, id));
    const fourth = makeDevice(account, 4);
    const r = await inject(relay.app, fourth.signer, { method: 'PUT', url: '/v1/devices', json: await registrationJson(fourth) });
    expect(r.statusCode).toBe(409);
    expect(json(r)).toMatchObject({ code: 'TOO_MANY_DEVICES', details: { limit: 3 } });
  });

  it('a new certificate for a device id replaces the device and revokes the old one', async () => {
    const account = Account.generate();
    const first = makeDevice(account, 1);
    const peer = makeDevice();
    await register(relay.app, first);
    await register(relay.app, peer);
    await inject(relay.app, peer.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: { messages: [{ account: first.id, deviceId: 1, id: 'm1', envelope: 'AAAA' }] },
    });

    const reinstalled = makeDevice(account, 1);
    expect(json(await register(relay.app, reinstalled)).status).toBe('replaced');
    // The old mailbox went with the old keys.
    const inbox = await inject(relay.app, reinstalled.signer, { method: 'GET', url: '/v1/messages' });
    expect(json<{ messages: unknown[] }>(inbox).messages).toEqual([]);
    // The old device key no longer authenticates, and its certificate cannot come back.
    // (device 1 exists again, with another key: the old key's signature does not verify)
    expect(json(await inject(relay.app, first.signer, { method: 'GET', url: '/v1/keys' })).code).toBe('AUTH_BAD_SIGNATURE');
    const back = await inject(relay.app, first.signer, { method: 'PUT', url: '/v1/devices', json: await registrationJson(first) });
    expect(back.statusCode).toBe(403);
    expect(json(back).code).toBe('CERTIFICATE_REVOKED');
  });
});

describe('device removal', () => {
  let phone: TestDevice;
  let laptop: TestDevice;
  let stranger: TestDevice;
  beforeEach(async () => {
    phone = makeDevice();
    laptop = makeDevice(phone.account, 2);
    stranger = makeDevice();
    for (const d of [phone, laptop, stranger]) await register(relay.app, d);
  });

  it('a device removes itself', async () => {
    const r = await inject(relay.app, laptop.signer, { method: 'DELETE', url: removalUrl(laptop) });
    expect(r.statusCode).toBe(204);
    const list = json<{ devices: { deviceId: number }[] }>(
      await inject(relay.app, phone.signer, { method: 'GET', url: `/v1/accounts/${phone.id}/devices` }),
    );
    expect(list.devices.map((d) => d.deviceId)).toEqual([1]);
  });

  it('the account key removes any of its devices', async () => {
    const r = await inject(relay.app, accountOf(phone), { method: 'DELETE', url: removalUrl(laptop) });
    expect(r.statusCode).toBe(204);
  });

  it('another device, or another account, gets the same 404 as an unknown device', async () => {
    const byOtherDevice = await inject(relay.app, phone.signer, { method: 'DELETE', url: removalUrl(laptop) });
    const byStranger = await inject(relay.app, stranger.signer, { method: 'DELETE', url: removalUrl(laptop) });
    const unknown = await inject(relay.app, accountOf(phone), {
      method: 'DELETE',
      url: `/v1/accounts/${phone.id}/devices/9?certificateHash=${'A'.repeat(43)}`,
    });
    for (const r of [byOtherDevice, byStranger, unknown]) {
      expect(r.statusCode).toBe(404);
      expect(json(r)).toEqual(json(unknown));
    }
  });

  it('the account key may not call device routes', async () => {
    const r = await inject(relay.app, accountOf(phone), { method: 'GET', url: '/v1/messages' });
    expect(r.statusCode).toBe(403);
    expect(json(r).code).toBe('FORBIDDEN');
  });

  it('a removed device cannot register its certificate again', async () => {
    await inject(relay.app, laptop.signer, { method: 'DELETE', url: removalUrl(laptop) });
    const r = await inject(relay.app, laptop.signer, { method: 'PUT', url: '/v1/devices', json: await registrationJson(laptop) });
    expect(json(r).code).toBe('CERTIFICATE_REVOKED');
  });

  it('listing an unknown account is 404', async () => {
    const r = await inject(relay.app, phone.signer, { method: 'GET', url: `/v1/accounts/${makeDevice().id}/devices` });
    expect(r.statusCode).toBe(404);
  });
});

async function keysJson(d: TestDevice) {
  const { certificate: _c, ...rest } = await registrationJson(d);
  return rest;
}

async function registrationJson(d: TestDevice) {
  const { encodeKemPreKey, encodeOneTimePreKey, encodeSignedPreKey } = await import('@parley/core');
  return {
    certificate: toBase64Url(encodeCertificate(d.device.certificate)),
    signedPreKey: toBase64Url(encodeSignedPreKey(d.prekeys.currentSignedPreKey())),
    lastResortKemPreKey: toBase64Url(encodeKemPreKey(d.prekeys.lastResortKemPreKey())),
    oneTimePreKeys: d.prekeys.oneTimePreKeys().map((k) => toBase64Url(encodeOneTimePreKey(k))),
  };
}
