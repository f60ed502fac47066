// The relay link behind the write-behind Proxy (store/durable-relay.ts, used
// with IndexedDB): reaching `sealed` must neither throw (a getter run with the
// proxy as `this` cannot read the adapter's private fields: the web chat's
// sends all failed that way) nor publish before the store has flushed.
import { Account } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { connectRelay } from '../src/relay-link/adapter.ts';
import { durableRelay } from '../src/store/durable-relay.ts';
import { MemoryStore } from '../src/store/memory.ts';

describe('sealed link behind the durable-relay proxy', () => {
  it('is reachable, and a sealed send waits for the store to flush', async () => {
    const account = Account.generate();
    const device = account.createDevice(1);
    const order: string[] = [];
    const fetchStub = (async () => {
      order.push('fetch');
      return new Response(JSON.stringify({ accepted: 1 }), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const link = connectRelay('http://127.0.0.1:9', { fetch: fetchStub })({ device, account });
    const store = Object.assign(new MemoryStore(), {
      flushed: async () => {
        order.push('flushed');
      },
    });
    const wrapped = durableRelay(link, store);
    const sealed = wrapped.sealed;
    expect(sealed).toBeDefined();
    const outcome = await sealed?.sendSealed([
      {
        recipient: { accountKey: new Uint8Array(32).fill(1), deviceId: 1 },
        clientId: 'c1',
        envelope: new Uint8Array([1, 2, 3]),
        token: new Uint8Array(32).fill(2),
      },
    ]);
    expect(outcome).toEqual({ status: 'stored' });
    expect(order).toEqual(['flushed', 'fetch']);
  });
});
