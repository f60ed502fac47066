// Issue 12 finding 6: a captured, account-signed removal replayed after the
// device was re-linked must not remove the new device: not after a relay
// restart, and not through another relay process sharing the database. Two
// defences, each tested: the replay records are kept in storage (so the
// captured request is refused as AUTH_REPLAYED), and the removal names the
// certificate it removes, which storage compares inside the removal's
// transaction (so the same removal signed afresh is a no-op).
// spec/09-relay.md §3.3, §4.1, §11.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCertificate } from '@parley/core';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStorage } from '../../src/storage/postgres.ts';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import type { RelayStorage } from '../../src/storage/types.ts';
import { HOST, type TestDevice, accountOf, inject, json, makeDevice, register, signRequest, testRelay, toBase64Url } from '../support.ts';

const PG_URL = process.env.PARLEY_TEST_POSTGRES_URL;

const certificateHash = (d: TestDevice) => toBase64Url(createHash('sha256').update(encodeCertificate(d.device.certificate)).digest());

function removalUrl(d: TestDevice): string {
  return `/v1/accounts/${d.id}/devices/${d.device.deviceId}?certificateHash=${certificateHash(d)}`;
}

/** A signed request as an eavesdropper (or a TLS-terminating proxy) records it: headers and all. */
function capture(owner: TestDevice, url: string) {
  const { authorization } = signRequest(accountOf(owner), { method: 'DELETE', url });
  return { method: 'DELETE' as const, url, headers: { host: HOST, authorization } };
}

async function listed(relay: { app: Parameters<typeof inject>[0] }, by: TestDevice) {
  const r = await inject(relay.app, by.signer, { method: 'GET', url: `/v1/accounts/${by.id}/devices` });
  return json<{ devices: { deviceId: number; certificateHash: string }[] }>(r).devices;
}

/** Removes the tablet with a captured request, re-links device 6 with new keys, then replays the capture on `later`. */
async function attack(first: Awaited<ReturnType<typeof testRelay>>, later: () => Promise<Awaited<ReturnType<typeof testRelay>>>) {
  const phone = makeDevice();
  const tablet = makeDevice(phone.account, 6);
  await register(first.app, phone);
  await register(first.app, tablet);
  const captured = capture(phone, removalUrl(tablet));
  expect((await first.app.inject(captured)).statusCode).toBe(204);

  const relinked = makeDevice(phone.account, 6);
  expect(json(await register(first.app, relinked)).status).toBe('created');
  const second = await later();
  // The replay records are in storage, so the captured bytes are refused
  // (401 AUTH_REPLAYED) on the restarted or other process. The same removal
  // signed afresh (a delayed retry) must be a no-op too: it names the old certificate.
  const replay = await second.app.inject(captured);
  const resent = await inject(second.app, accountOf(phone), { method: 'DELETE', url: captured.url });
  const devices = await listed(second, phone);
  return { replay, resent, devices, relinked, second };
}

describe('a replayed removal is a no-op', () => {
  it('after a relay restart (SQLite on disk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-replay-'));
    const path = join(dir, 'relay.sqlite');
    try {
      const first = await testRelay({}, { storage: new SqliteStorage({ path }) });
      let second: Awaited<ReturnType<typeof testRelay>> | undefined;
      const { replay, resent, devices, relinked } = await attack(first, async () => {
        await first.close();
        second = await testRelay({}, { storage: new SqliteStorage({ path }) });
        return second;
      });
      expect(json(replay).code).toBe('AUTH_REPLAYED');
      expect([204, 404]).toContain(resent.statusCode);
      expect(devices.map((d) => d.deviceId)).toEqual([1, 6]);
      expect(devices[1]?.certificateHash).toBe(certificateHash(relinked));
      // The operator sees the replay for what it was.
      const metrics = await second?.app.relay.metrics.registry.getSingleMetricAsString('parley_relay_device_directory_total');
      expect(metrics).toContain('op="remove",outcome="gone"');
      await second?.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a removal that names no certificate is refused', async () => {
    const relay = await testRelay();
    try {
      const phone = makeDevice();
      const tablet = makeDevice(phone.account, 2);
      await register(relay.app, phone);
      await register(relay.app, tablet);
      const r = await inject(relay.app, accountOf(phone), { method: 'DELETE', url: `/v1/accounts/${phone.id}/devices/2` });
      expect(r.statusCode).toBe(400);
      expect((await listed(relay, phone)).map((d) => d.deviceId)).toEqual([1, 2]);
    } finally {
      await relay.close();
    }
  });

  const admin = PG_URL ? new pg.Pool({ connectionString: PG_URL, max: 1 }) : undefined;
  afterAll(() => admin?.end());

  it.skipIf(!PG_URL)('through another relay process on the same PostgreSQL database (no restart needed)', async () => {
    const schema = `parley_t_${randomBytes(6).toString('hex')}`;
    const open = (): Promise<RelayStorage> => PostgresStorage.open({ connectionString: PG_URL as string, schema });
    const first = await testRelay({}, { storage: await open() });
    let second: Awaited<ReturnType<typeof testRelay>> | undefined;
    try {
      const { replay, resent, devices } = await attack(first, async () => {
        second = await testRelay({}, { storage: await open() });
        return second;
      });
      expect(json(replay).code).toBe('AUTH_REPLAYED');
      expect([204, 404]).toContain(resent.statusCode);
      expect(devices.map((d) => d.deviceId)).toEqual([1, 6]);
    } finally {
      await second?.close();
      await first.close();
      await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });
});
