/**
 * One device, one connection: when a second client for the same device
 * connects, the relay closes the first with 4002. The first client must not
 * go quiet: it reports `connection: ended (replaced)`, and `start()` takes
 * the connection back (then the other one hears it).
 */
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import type { ClientEvents } from '../src/events.ts';
import { connectRelayNode } from '../src/node.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { loopbackRelay } from './support/loopback-relay.ts';

const relay = loopbackRelay('replaced', { scope: 'all' });

function nextConnection(client: ParleyClient, state: ClientEvents['connection']['state']): Promise<ClientEvents['connection']> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection ${state} within 10 s`)), 10_000);
    const off = client.on('connection', (c) => {
      if (c.state !== state) return;
      clearTimeout(timer);
      off();
      resolve(c);
    });
  });
}

describe('a replaced connection', () => {
  it('is reported as ended (replaced), and start() takes the device back', async () => {
    const store = new MemoryStore();
    const first = await ParleyClient.createAccount({ store, relay: connectRelayNode(relay.url) });
    const opened = nextConnection(first, 'open');
    await first.start();
    await opened;

    const second = await ParleyClient.open({ store, relay: connectRelayNode(relay.url) });
    const ended = nextConnection(first, 'ended');
    const secondOpen = nextConnection(second, 'open');
    await second.start();
    await secondOpen;
    expect(await ended).toEqual({ state: 'ended', reason: 'replaced' });

    // The first client takes the connection back; now the second hears it.
    const secondEnded = nextConnection(second, 'ended');
    const reopened = nextConnection(first, 'open');
    await first.start();
    await reopened;
    expect((await secondEnded).reason).toBe('replaced');
    await first.close();
    await second.close();
  });
});
