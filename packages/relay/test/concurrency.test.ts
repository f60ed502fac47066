// Concurrency over real HTTP: many simultaneous bundle fetches never share a
// one-time prekey; simultaneous retries of one send store it once; and the
// writes of concurrent requests share group commits. spec/09-relay.md §4.2, §7.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { type TestDevice, listeningRelay, makeDevice, register } from './support.ts';

const batches: number[] = [];
let relay: Awaited<ReturnType<typeof listeningRelay>>;
let bob: TestDevice;
const requesters: TestDevice[] = [];

beforeAll(async () => {
  relay = await listeningRelay(
    { limits: { maxOneTimePreKeys: 100 }, rateLimits: { oneTimePreKeysPerDayPerDevice: 1000, oneTimePreKeysPerDayPerPair: 1000 } },
    { storage: new SqliteStorage({ path: ':memory:', observeBatch: (n) => batches.push(n) }) },
  );
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 40, kemPreKeys: 10 });
  await register(relay.app, bob);
  for (let i = 0; i < 6; i++) {
    const d = makeDevice(undefined, 1, { oneTimePreKeys: 0, kemPreKeys: 0 });
    await register(relay.app, d);
    requesters.push(d);
  }
});
afterAll(() => relay.close());

describe('concurrent bundle fetches', () => {
  it('hand out every one-time prekey at most once', async () => {
    const fetches = Array.from({ length: 60 }, (_, i) =>
      relay.client((requesters[i % requesters.length] as TestDevice).signer).fetchBundles(bob.account.publicKey, 1),
    );
    const bundles = (await Promise.all(fetches)).map((r) => r[0]?.bundle);
    const oneTime = bundles.map((b) => b?.oneTimePreKey?.id).filter((id): id is number => id !== undefined);
    const kem = bundles.filter((b) => b && !b.kemPreKey.lastResort).map((b) => b?.kemPreKey.id);
    expect(oneTime).toHaveLength(40);
    expect(new Set(oneTime).size).toBe(40);
    expect(new Set(oneTime)).toEqual(new Set(bob.prekeys.oneTimePreKeys().map((k) => k.id)));
    expect(kem).toHaveLength(10);
    expect(new Set(kem).size).toBe(10);
    // Concurrent requests shared commits.
    expect(Math.max(...batches)).toBeGreaterThan(1);
  });
});

describe('concurrent retries of one send', () => {
  it('store the envelope once', async () => {
    const alice = requesters[0] as TestDevice;
    const envelope = { accountKey: bob.account.publicKey, deviceId: 1, id: 'race', envelope: new Uint8Array([1, 2, 3]) };
    const answers = await Promise.all(Array.from({ length: 20 }, () => relay.client(alice.signer).send([envelope])));
    expect(answers).toEqual(Array(20).fill({ accepted: 1 }));
    const inbox = await relay.client(bob.signer).fetchMessages();
    expect(inbox.messages.map((m) => m.id)).toEqual(['race']);
  });
});
