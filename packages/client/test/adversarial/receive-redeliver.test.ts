/**
 * The mailbox side of the ack policy, against the real relay: an envelope
 * whose handler failed (the SDK fails only when its store does) must come
 * again, without waiting for an unrelated reconnect, and what follows it must
 * not wait behind it for ever. Before, a failed envelope stayed unacknowledged
 * on an open connection until something else dropped it.
 */
import { Account, PreKeyStore } from '@parley/core';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RelayClient, deviceSigner, preKeysOf } from '../../src/relay-client/index.ts';
import { loopbackRelay } from '../support/loopback-relay.ts';

const relay = loopbackRelay('redeliver');

async function registered() {
  const account = Account.generate();
  const device = account.createDevice(1);
  const client = new RelayClient({ baseUrl: relay.url, signer: deviceSigner(device), WebSocket: WebSocket as never });
  await client.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 1, kemPreKeys: 1 })));
  return { account, client };
}

async function until(predicate: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('mailbox: a handler failure brings the envelope back', () => {
  it('the failed envelope is delivered again after a reconnect, everything after it too, and all are acknowledged', async () => {
    const alice = await registered();
    const bob = await registered();
    for (let i = 0; i < 5; i++) {
      await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: `m${i}`, envelope: new Uint8Array([i]) }]);
    }
    let failuresLeft = 3;
    const handled: string[] = [];
    const receiver = bob.client
      .connect(
        {
          onEnvelope: (e) => {
            // The store is briefly unavailable for the second envelope.
            if (e.id === 'm1' && failuresLeft-- > 0) throw new Error('database is locked');
            handled.push(e.id);
          },
        },
        { baseDelayMs: 20, maxDelayMs: 100 },
      )
      .start();
    try {
      await until(() => handled.length === 5, 'every envelope handled');
      expect(handled).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
      expect(failuresLeft).toBe(-1);
      for (let i = 0; i < 100; i++) {
        if ((await bob.client.fetchMessages()).messages.length === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await bob.client.fetchMessages()).messages).toEqual([]);
    } finally {
      receiver.stop();
    }
  });
});
