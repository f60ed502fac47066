// A device removed, or replaced by a new certificate, with a full mailbox (issue 15): the route's
// write deletes at most DEVICE_PURGE_CHUNK_ROWS rows, the relay purges the rest in bounded writes
// right after, and the id is refused (409 DEVICE_PURGING, Retry-After) until its old mailbox is
// empty, so no row queued for the old device reaches a new one. spec/09-relay.md §4.1.2.
import { Account, encodeCertificate, encodeKemPreKey, encodeSignedPreKey } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_PURGE_CHUNK_ROWS } from '../src/storage/rules/devices.ts';
import { purgeRemoved } from '../src/sweeper.ts';
import {
  type TestDevice,
  type TestRelay,
  inject,
  json,
  makeDevice,
  preKeysOf,
  register,
  removalUrl,
  testRelay,
  toBase64Url,
} from './support.ts';

const ROWS = 2 * DEVICE_PURGE_CHUNK_ROWS + 11;

let relay: TestRelay;
/** The purge writes wait for this (so the test sees the id while it is purged), then run. */
let release: () => void;
let purgeWrites: number[];
beforeEach(async () => {
  relay = await testRelay({});
  // Let the start's purge run (nothing to purge yet), then hold the next ones.
  await purgeRemoved(relay.app);
  const storage = relay.app.relay.storage;
  const purge = storage.purgeRemovedMailboxes.bind(storage);
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  purgeWrites = [];
  storage.purgeRemovedMailboxes = async () => {
    await gate;
    const r = await purge();
    purgeWrites.push(r.purged);
    return r;
  };
});
afterEach(async () => {
  release();
  await relay.close();
});

/** ROWS envelopes queued for `d` (from a peer, straight into storage: the route's share limits are not the point). */
async function fill(d: TestDevice): Promise<void> {
  const peer = makeDevice();
  await register(relay.app, peer);
  const to = { accountKey: d.account.publicKey, deviceId: d.device.deviceId };
  for (let i = 0; i < ROWS; i += 100) {
    const result = await relay.app.relay.storage.storeMessages({
      sender: { accountKey: peer.account.publicKey, deviceId: 1 },
      envelopes: Array.from({ length: Math.min(100, ROWS - i) }, (_, j) => ({
        recipient: to,
        clientId: `m${i + j}`,
        envelope: new Uint8Array(64).fill(1),
      })),
      now: relay.app.relay.now(),
      expiresAt: relay.app.relay.now() + 3_600_000,
      maxQueuedMessages: 10 * ROWS,
      maxQueuedBytes: 1 << 24,
    });
    expect(result.status).toBe('stored');
  }
}

const queued = async () => (await relay.app.relay.storage.stats()).queuedMessages;

/** Registers `d`: the raw answer (support.ts `register` throws on anything but 200). */
async function tryRegister(d: TestDevice) {
  const keys = preKeysOf(d.prekeys);
  const certificate = toBase64Url(encodeCertificate(d.device.certificate));
  return inject(relay.app, d.signer, {
    method: 'PUT',
    url: '/v1/devices',
    json: {
      certificate,
      signedPreKey: toBase64Url(encodeSignedPreKey(keys.signedPreKey)),
      lastResortKemPreKey: toBase64Url(encodeKemPreKey(keys.lastResortKemPreKey)),
    },
    headers: { 'parley-certificate': certificate },
  });
}

async function expectPurging(d: TestDevice): Promise<void> {
  const r = await tryRegister(d);
  expect(r.statusCode).toBe(409);
  expect(r.headers['retry-after']).toBe('5');
  expect(json(r)).toMatchObject({ code: 'DEVICE_PURGING', details: { retryAfterSeconds: 5 } });
}

describe('removing or replacing a device with a full mailbox', () => {
  it('a removal answers at once; the id waits for the purge, which runs in bounded writes', async () => {
    const phone = makeDevice();
    await register(relay.app, phone);
    await fill(phone);
    const before = await queued();
    const removed = await inject(relay.app, phone.signer, { method: 'DELETE', url: removalUrl(phone) });
    expect(removed.statusCode).toBe(204);
    expect(before - (await queued())).toBeLessThanOrEqual(DEVICE_PURGE_CHUNK_ROWS);
    const reinstalled = makeDevice(phone.account, 1);
    await expectPurging(reinstalled);
    release();
    expect(await purgeRemoved(relay.app)).toBeGreaterThan(0);
    for (const n of purgeWrites) expect(n).toBeLessThanOrEqual(DEVICE_PURGE_CHUNK_ROWS);
    expect(await queued()).toBe(0);
    expect(json(await register(relay.app, reinstalled)).status).toBe('created');
    const inbox = await inject(relay.app, reinstalled.signer, { method: 'GET', url: '/v1/messages' });
    expect(json<{ messages: unknown[] }>(inbox).messages).toEqual([]);
  });

  it('a replacement removes the old device at once and is refused with Retry-After until the purge is done', async () => {
    const account = Account.generate();
    const first = makeDevice(account, 1);
    await register(relay.app, first);
    await fill(first);
    const reinstalled = makeDevice(account, 1);
    await expectPurging(reinstalled);
    // The old device is gone: its key no longer authenticates.
    const old = await inject(relay.app, first.signer, { method: 'GET', url: '/v1/messages' });
    expect(old.statusCode).toBe(401);
    // Asked again before the purge: still refused, nothing registered.
    await expectPurging(reinstalled);
    release();
    await purgeRemoved(relay.app);
    for (const n of purgeWrites) expect(n).toBeLessThanOrEqual(DEVICE_PURGE_CHUNK_ROWS);
    expect(json(await register(relay.app, reinstalled)).status).toBe('created');
    const inbox = await inject(relay.app, reinstalled.signer, { method: 'GET', url: '/v1/messages' });
    expect(json<{ messages: unknown[] }>(inbox).messages).toEqual([]);
  });
});
