/**
 * Finding 8 (last item) of issue 11: a relay that lies about how many
 * prekeys it holds must not make upkeep generate keys without end
 * (spec/10-client.md §4.4, MAX_UNCLAIMED_PREKEYS_FACTOR).
 */
import { DeviceIdentity, PreKeyStore } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient, type RelayConnector } from '../../src/client.ts';
import { MAX_UNCLAIMED_PREKEYS_FACTOR } from '../../src/engine/upkeep.ts';
import type { PreKeyCounts, RelayLink } from '../../src/relay-link/link.ts';
import { parseAccountId } from '../../src/state/ids.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, record, TEST_OPTIONS } from '../support/harness.ts';

/** The fake relay's link, with the prekey counts replaced by what `lie` says. */
function lyingCounts(relay: FakeRelay, lie: (honest: PreKeyCounts) => PreKeyCounts): RelayConnector {
  return (self) => {
    const link = relay.connector(self);
    return new Proxy(link, {
      get(target, prop) {
        if (prop === 'preKeyCounts') return async () => lie(await (target as RelayLink).preKeyCounts());
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  };
}

function held(store: MemoryStore) {
  const device = DeviceIdentity.deserialize(store.get('identity', 'device') as Uint8Array);
  const prekeys = PreKeyStore.deserialize(store.get('identity', 'prekeys') as Uint8Array, device);
  return { oneTime: prekeys.oneTimePreKeys().length, kem: prekeys.kemPreKeys().length };
}

describe('store: prekey upkeep against a relay that lies about its counts', () => {
  const track = closedAfterEach();
  // Large enough that the old behaviour (a full pool per round) reaches core's 10,000-key cap within the rounds below.
  const options = { ...TEST_OPTIONS, oneTimePreKeys: 1000, kemPreKeys: 2 };

  it('a relay that always reports zero gets one extra pool and a warning each round, and upkeep keeps working', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    const connector = lyingCounts(relay, (h) => ({ ...h, oneTimePreKeys: 0, kemPreKeys: 0 }));
    const client = track(await ParleyClient.createAccount({ store, relay: connector, options }));
    const warnings = record(client, 'warning');
    for (let round = 0; round < 12; round++) await client.maintain();
    const h = held(store);
    expect(h.oneTime).toBeLessThanOrEqual(options.oneTimePreKeys * MAX_UNCLAIMED_PREKEYS_FACTOR);
    expect(h.kem).toBeLessThanOrEqual(options.kemPreKeys * MAX_UNCLAIMED_PREKEYS_FACTOR);
    expect(warnings.filter((w) => w.code === 'RELAY_PREKEY_COUNT_IMPLAUSIBLE').length).toBeGreaterThanOrEqual(11);
    expect(warnings.filter((w) => w.code !== 'RELAY_PREKEY_COUNT_IMPLAUSIBLE')).toEqual([]);
  });

  it('a relay that reports more keys than were ever uploaded is reported, and nothing is generated', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    const connector = lyingCounts(relay, (h) => ({ ...h, oneTimePreKeys: 50_000 }));
    const client = track(await ParleyClient.createAccount({ store, relay: connector, options: TEST_OPTIONS }));
    const warnings = record(client, 'warning');
    const before = held(store);
    await client.maintain();
    expect(held(store)).toEqual(before);
    expect(warnings.map((w) => w.code)).toEqual(['RELAY_PREKEY_COUNT_IMPLAUSIBLE']);
    // No key material or private detail in the warning: counts only.
    expect(warnings[0]?.message).toMatch(/^the relay reports 50000 one-time/);
  });

  it('an honest relay that handed a whole pool out gets it refilled, with no warning', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    const client = track(await ParleyClient.createAccount({ store, relay: relay.connector, options: TEST_OPTIONS }));
    const warnings = record(client, 'warning');
    const self = { accountKey: parseAccountId(client.accountId), deviceId: 1 };
    for (let i = 0; i < (TEST_OPTIONS.oneTimePreKeys as number); i++) relay.bundles(self, self.accountKey, 1);
    expect(relay.counts(self).oneTimePreKeys).toBe(0);
    await client.maintain();
    expect(relay.counts(self).oneTimePreKeys).toBe(TEST_OPTIONS.oneTimePreKeys);
    expect(warnings).toEqual([]);
  });
});
