// The PostgreSQL signer cache (storage/postgres.ts SignerCache): a signed
// HTTP request on PostgreSQL takes its signer's device from what this
// process last read instead of a round trip, and the request's replay
// record confirms that device in its own statement. Two relays share one
// schema here, as two processes would: a device removed or replaced on
// one must sign nothing more on the other, on a send (the record is
// written in the send's transaction) or any other signed route (the
// record is written before the route runs); a re-linked device's new key
// must work at once.
//
// Needs PARLEY_TEST_POSTGRES_URL; skipped without it, except under CI=true.
import { randomBytes } from 'node:crypto';
import { utf8 } from '@parley/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from '../src/storage/postgres.ts';
import { type TestDevice, type TestRelay, inject, json, makeDevice, register, removalUrl, testRelay, toBase64Url } from './support.ts';
import { testPostgresUrl } from './support/backends.ts';

const PG_URL = testPostgresUrl('the signer cache tests');

describe.skipIf(!PG_URL)('PostgreSQL signer cache across relays on one database', () => {
  const schema = `parley_sc_${randomBytes(6).toString('hex')}`;
  let a: TestRelay;
  let b: TestRelay;
  let storageB: PostgresStorage;

  beforeAll(async () => {
    a = await testRelay({}, { storage: await PostgresStorage.open({ connectionString: PG_URL as string, schema, poolSize: 3 }) });
    storageB = await PostgresStorage.open({ connectionString: PG_URL as string, schema, poolSize: 3 });
    b = await testRelay({}, { storage: storageB });
  }, 30_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  const send = (relay: TestRelay, from: TestDevice, to: TestDevice, id: string) =>
    inject(relay.app, from.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: { messages: [{ account: to.id, deviceId: to.device.deviceId, id, envelope: toBase64Url(utf8(id)) }] },
    });
  const queued = async (d: TestDevice) =>
    (await storageB.fetchMessages({ accountKey: d.account.publicKey, deviceId: d.device.deviceId }, 0, 100, Date.now())).length;
  // A signed route that reads nothing of its signer's device (a removed signer is refused only by authentication).
  const whoAmI = (relay: TestRelay, d: TestDevice) => inject(relay.app, d.signer, { method: 'GET', url: `/v1/accounts/${d.id}/devices` });

  it('holds a signer after its first request: the next ones need no device read', async () => {
    const alice = makeDevice();
    const bob = makeDevice();
    for (const d of [alice, bob]) await register(a.app, d);
    const address = { accountKey: alice.account.publicKey, deviceId: 1 };
    expect(storageB.cachedDevice(address)).toBeUndefined();
    expect((await send(b, alice, bob, 'first')).statusCode).toBe(200);
    expect(storageB.cachedDevice(address)?.certificateHash).toBeDefined();
    expect((await send(b, alice, bob, 'second')).statusCode).toBe(200);
    expect(await queued(bob)).toBe(2);
  });

  it('a device removed on one relay is refused on the other, on a send and on any other route; nothing is stored', async () => {
    const laptop = makeDevice();
    const bob = makeDevice();
    for (const d of [laptop, bob]) await register(a.app, d);
    // b holds the laptop's device row.
    expect((await send(b, laptop, bob, 'before')).statusCode).toBe(200);
    expect((await whoAmI(b, laptop)).statusCode).toBe(200);

    expect((await inject(a.app, laptop.signer, { method: 'DELETE', url: removalUrl(laptop) })).statusCode).toBe(204);

    const refusedSend = await send(b, laptop, bob, 'after');
    expect(refusedSend.statusCode).toBe(401);
    expect(json(refusedSend).code).toBe('AUTH_UNKNOWN_DEVICE');
    expect(await queued(bob)).toBe(1);
    // Held again by nothing: a second try reads the row (gone) and is refused the same way.
    const again = await whoAmI(b, laptop);
    expect(again.statusCode).toBe(401);
    expect(json(again).code).toBe('AUTH_UNKNOWN_DEVICE');
  });

  it('a non-send route of a removed device is refused too (the record written before the route)', async () => {
    const laptop = makeDevice();
    await register(a.app, laptop);
    expect((await whoAmI(b, laptop)).statusCode).toBe(200);
    expect((await inject(a.app, laptop.signer, { method: 'DELETE', url: removalUrl(laptop) })).statusCode).toBe(204);
    const r = await whoAmI(b, laptop);
    expect(r.statusCode).toBe(401);
    expect(json(r).code).toBe('AUTH_UNKNOWN_DEVICE');
  });

  it('a device re-linked on one relay (new certificate, new key): the old key is refused on the other, the new key served', async () => {
    const phone = makeDevice();
    const bob = makeDevice();
    for (const d of [phone, bob]) await register(a.app, d);
    const oldLaptop = makeDevice(phone.account, 2);
    await register(a.app, oldLaptop);
    expect((await send(b, oldLaptop, bob, 'old-1')).statusCode).toBe(200);

    // The same device id, linked again with a new identity: the relay replaces the device.
    const newLaptop = makeDevice(phone.account, 2);
    expect((await register(a.app, newLaptop)).statusCode).toBeLessThan(300);

    const byOld = await send(b, oldLaptop, bob, 'old-2');
    expect(byOld.statusCode).toBe(401);
    expect(json(byOld).code).toBe('AUTH_UNKNOWN_DEVICE');
    const byNew = await send(b, newLaptop, bob, 'new-1');
    expect(byNew.statusCode).toBe(200);
    expect(await queued(bob)).toBe(2);
    // And the old key once more, now that b holds the new device: its signature does not verify.
    const byOldAgain = await send(b, oldLaptop, bob, 'old-3');
    expect(byOldAgain.statusCode).toBe(401);
    expect(json(byOldAgain).code).toBe('AUTH_BAD_SIGNATURE');
  });
});
