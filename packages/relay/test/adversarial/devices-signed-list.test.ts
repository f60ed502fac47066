// Issue 11 finding 3, relay half: the relay stores and serves the latest
// account-signed device list, checks the account's signature, and refuses a
// rollback (a lower revision, or another list for the revision it holds).
// Nobody has to trust the relay for this (clients check lists themselves);
// it keeps an honest relay from being used to serve a captured old list.
// spec/09-relay.md §4.1.
import { Account, signDeviceList } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestDevice, type TestRelay, accountOf, inject, json, makeDevice, register, testRelay, toBase64Url } from '../support.ts';

let relay: TestRelay;
let phone: TestDevice;
let laptop: TestDevice;
beforeEach(async () => {
  relay = await testRelay();
  phone = makeDevice();
  laptop = makeDevice(phone.account, 2);
  await register(relay.app, phone);
  await register(relay.app, laptop);
});
afterEach(() => relay.close());

const url = (d: TestDevice) => `/v1/accounts/${d.id}/device-list`;
const listOf = (account: Account, revision: number, devices: TestDevice[]) =>
  signDeviceList(
    account,
    revision,
    devices.map((d) => d.device.certificate),
  ).encoded;
const publish = (signer: Parameters<typeof inject>[1], d: TestDevice, encoded: Uint8Array) =>
  inject(relay.app, signer, { method: 'PUT', url: url(d), json: { deviceList: toBase64Url(encoded) } });
const fetchList = (by: TestDevice, of: TestDevice) => inject(relay.app, by.signer, { method: 'GET', url: url(of) });

describe('the signed device list on the relay', () => {
  it('stores the list the account signed and serves it to any registered device', async () => {
    const stranger = makeDevice();
    await register(relay.app, stranger);
    expect((await fetchList(stranger, phone)).statusCode).toBe(404);
    const list = listOf(phone.account, 1, [phone, laptop]);
    const put = await publish(accountOf(phone), phone, list);
    expect(put.statusCode).toBe(200);
    expect(json(put)).toEqual({ status: 'stored', revision: 1 });
    const got = json<{ revision: number; deviceList: string }>(await fetchList(stranger, phone));
    expect(got).toMatchObject({ account: phone.id, revision: 1, deviceList: toBase64Url(list) });
  });

  it('only the account key may publish; a device key is FORBIDDEN', async () => {
    const r = await publish(phone.signer, phone, listOf(phone.account, 1, [phone]));
    expect(r.statusCode).toBe(403);
    expect(json(r).code).toBe('FORBIDDEN');
  });

  it('refuses a list signed by another account key, and a list naming another account', async () => {
    const mallory = Account.generate();
    // Signed by Mallory, naming Mallory: not the account in the URL.
    const foreign = await publish(accountOf(phone), phone, signDeviceList(mallory, 9, []).encoded);
    expect(foreign.statusCode).toBe(400);
    expect(json(foreign).code).toBe('BAD_SIGNATURE');
    // Bytes that are not a list at all.
    const garbage = await publish(accountOf(phone), phone, Uint8Array.of(0x82, 0x40, 0x40));
    expect(garbage.statusCode).toBe(400);
    expect((await fetchList(phone, phone)).statusCode).toBe(404);
  });

  it('refuses a rollback: a lower revision, or another list for the held revision', async () => {
    const old = listOf(phone.account, 1, [phone, laptop]);
    const current = listOf(phone.account, 2, [phone]);
    expect(json(await publish(accountOf(phone), phone, old)).status).toBe('stored');
    expect(json(await publish(accountOf(phone), phone, current)).status).toBe('stored');
    // The same list again (a retry, or a replay of the signed request's body in a new request) changes nothing.
    expect(json(await publish(accountOf(phone), phone, current))).toEqual({ status: 'unchanged', revision: 2 });

    const rollback = await publish(accountOf(phone), phone, old);
    expect(rollback.statusCode).toBe(409);
    expect(json(rollback)).toMatchObject({ code: 'DEVICE_LIST_OUTDATED', details: { revision: 2, reason: 'outdated' } });
    const fork = await publish(accountOf(phone), phone, listOf(phone.account, 2, [phone, laptop]));
    expect(fork.statusCode).toBe(409);
    expect(json(fork)).toMatchObject({ code: 'DEVICE_LIST_OUTDATED', details: { revision: 2, reason: 'conflict' } });
    expect(json<{ deviceList: string }>(await fetchList(laptop, phone)).deviceList).toBe(toBase64Url(current));
  });

  it('bounds the upload before parsing it (a body above the route limit is 413)', async () => {
    const r = await inject(relay.app, accountOf(phone), { method: 'PUT', url: url(phone), json: { deviceList: 'A'.repeat(64 * 1024) } });
    expect(r.statusCode).toBe(413);
  });
});
