// Issue 12 finding 5: one account must not be able to empty a device's
// one-time prekey pools. A bundle fetch takes one X25519 and one ML-KEM
// one-time key together, so one budget protects both pools; it is spent per
// target device, per requesting account and per pair (spec/09-relay.md §4.2,
// §8.4), kept in storage: a restart forgives nobody, and two relay processes
// on one PostgreSQL database spend from the same buckets. Past a budget the
// bundle still comes, with the last-resort KEM key and no one-time key.
import { decodeBundle } from '@parley/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayConfigOverrides } from '../../src/config.ts';
import { type TestDevice, listeningRelay, makeDevice, register } from '../support.ts';
import {
  type Answer,
  type Listening,
  POSTGRES_REQUIRED,
  POSTGRES_URL,
  bounded,
  durableRelay,
  signed,
  twoRelaysOnPostgres,
} from './quota-support.ts';

const open = { requestsPerMinutePerIp: 100_000, bundleFetchesPerMinutePerAccount: 10_000 };

let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers) await c();
  closers = [];
});

interface Got {
  readonly oneTime: boolean;
  readonly kemOneTime: boolean;
}

async function fetchBundle(relay: Listening, from: TestDevice, target: TestDevice): Promise<Got> {
  const r: Answer = await signed(relay, from, { method: 'GET', url: `/v1/keys/${target.id}/${target.device.deviceId}` });
  expect(r.status).toBe(200);
  const [entry] = r.body.bundles as { bundle: string }[];
  const bundle = decodeBundle(Uint8Array.from(Buffer.from((entry as { bundle: string }).bundle, 'base64url')));
  return { oneTime: bundle.oneTimePreKey !== null, kemOneTime: !bundle.kemPreKey.lastResort };
}

const taken = (got: readonly Got[]) => ({ oneTime: got.filter((g) => g.oneTime).length, kem: got.filter((g) => g.kemOneTime).length });

describe('finding 5: one account fetching bundles as fast as it may', () => {
  it('takes at most its pair budget; a friend still gets one-time X25519 and ML-KEM keys', async () => {
    const relay = await listeningRelay({ rateLimits: open });
    closers.push(() => relay.close());
    const victim = makeDevice(undefined, 1, { oneTimePreKeys: 30, kemPreKeys: 20 });
    const attacker = makeDevice();
    const friend = makeDevice();
    for (const d of [victim, attacker, friend]) await register(relay.app, d);

    const attack = await bounded(60, 4, () => fetchBundle(relay, attacker, victim));
    const friendly = await fetchBundle(relay, friend, victim);
    const left = await signed(relay, victim, { method: 'GET', url: '/v1/keys' });
    console.info('finding 5:', JSON.stringify({ attackerTook: taken(attack), friend: friendly, left: left.body }));

    expect(taken(attack)).toEqual({ oneTime: 4, kem: 4 });
    expect(friendly).toEqual({ oneTime: true, kemOneTime: true });
    expect(left.body).toMatchObject({ oneTimePreKeys: 25, kemPreKeys: 15 });
  }, 30_000);
});

// Old name of the per-target budget (per hour, in memory), so the same
// bounded attack runs against the relay before this fix.
const perTarget = (n: number) =>
  ({ ...open, oneTimePreKeysPerDayPerDevice: n, oneTimePreKeysPerHourPerDevice: n }) as RelayConfigOverrides['rateLimits'];

describe('finding 5: many accounts, and a restart', () => {
  it('the per-target budget holds across a restart', async () => {
    const durable = await durableRelay({ rateLimits: perTarget(6) });
    closers.push(() => durable.close());
    const victim = makeDevice(undefined, 1, { oneTimePreKeys: 30, kemPreKeys: 20 });
    const attackers = Array.from({ length: 6 }, () => makeDevice());
    await register(durable.relay.app, victim);
    for (const a of attackers) await register(durable.relay.app, a);

    const before = await bounded(12, 3, (i) => fetchBundle(durable.relay, attackers[i % 3] as TestDevice, victim));
    const relay = await durable.restart();
    const after = await bounded(12, 3, (i) => fetchBundle(relay, attackers[3 + (i % 3)] as TestDevice, victim));
    console.info('finding 5, restart:', JSON.stringify({ before: taken(before), after: taken(after) }));
    expect(taken(before)).toEqual({ oneTime: 6, kem: 6 });
    expect(taken(after)).toEqual({ oneTime: 0, kem: 0 });
  }, 30_000);
});

if (!POSTGRES_URL && POSTGRES_REQUIRED) {
  it('PostgreSQL server for the multi-process budget tests', () => {
    throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set');
  });
}

describe.skipIf(!POSTGRES_URL)('finding 5 with two relay processes on one PostgreSQL database', () => {
  it('both processes spend one per-target budget', async () => {
    const { a, b, close } = await twoRelaysOnPostgres({ rateLimits: perTarget(6) });
    closers.push(close);
    const victim = makeDevice(undefined, 1, { oneTimePreKeys: 30, kemPreKeys: 20 });
    const attackers = Array.from({ length: 6 }, () => makeDevice());
    await register(a.app, victim);
    for (const x of attackers) await register(a.app, x);
    const got = await bounded(24, 4, (i) => fetchBundle(i % 2 ? a : b, attackers[i % 6] as TestDevice, victim));
    console.info('finding 5, two processes:', JSON.stringify(taken(got)));
    expect(taken(got)).toEqual({ oneTime: 6, kem: 6 });
  }, 30_000);
});
