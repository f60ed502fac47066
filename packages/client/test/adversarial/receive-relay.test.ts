/**
 * Issue 11 finding 1 as reported, against the real relay: the relay keeps at
 * most 256 unacknowledged envelopes in flight per connection, so 260 hostile
 * group states (epoch 2^32 - 1) that the client never acknowledged stopped
 * everything behind them. Also shows the malicious-peer harness on the real
 * relay (it only needs a RelayConnector).
 */
import { defaultProvider } from '@parley/core';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ParleyClient } from '../../src/client.ts';
import { connectRelayNode } from '../../src/node.ts';
import { RelayClient, deviceSigner } from '../../src/relay-client/index.ts';
import { loadIdentity } from '../../src/state/identity.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { TEST_OPTIONS, closedAfterEach, next, record } from '../support/harness.ts';
import { loopbackRelay } from '../support/loopback-relay.ts';
import { ContentType, MaliciousPeer, rawContent, rawGroupState } from '../support/malicious-peer.ts';

/** Just over the relay's 256 unacknowledged envelopes in flight per connection (09 §5.2). */
const HOSTILE = 260;

const server = loopbackRelay('receive-relay', { scope: 'all' });

describe('receive loop on the real relay', () => {
  const track = closedAfterEach();

  it('260 hostile group states (more than the 256 the relay keeps in flight), then a legitimate message: delivered, and the mailbox ends empty', async () => {
    const connector = connectRelayNode(server.url);
    const store = new MemoryStore();
    const victim = track(await ParleyClient.createAccount({ store, relay: connector, options: TEST_OPTIONS }));
    await victim.start();
    const friend = track(await ParleyClient.createAccount({ store: new MemoryStore(), relay: connector, options: TEST_OPTIONS }));
    await friend.start();
    const attacker = await MaliciousPeer.create(connector);
    track(attacker.client);
    const warnings = record(victim, 'warning');

    const victimKey = loadIdentity(store, defaultProvider())?.device.accountKey as Uint8Array;
    // One honest-looking first contact (its signed device list), so the victim judges what follows as a known peer's.
    await attacker.introduce(victim.accountId);
    for (let i = 0; i < HOSTILE; i++) {
      await attacker.sendContent(
        victim.accountId,
        rawContent({
          type: ContentType.groupUpdate,
          group: defaultProvider().random(32),
          body: rawGroupState({ revision: 1, members: [attacker.address.accountKey, victimKey], epoch: 0xffffffff }),
        }),
      );
    }
    const arrived = next(victim, 'message', (m) => m.body.type === 'text' && m.body.text === 'behind the hostile ones', 30_000);
    await friend.sendText(victim.accountId, 'behind the hostile ones');
    await arrived;
    expect(warnings.filter((w) => w.code === 'OVERSIZED')).toHaveLength(HOSTILE);

    // Nothing is left on the relay for the victim's device.
    const device = loadIdentity(store, defaultProvider())?.device;
    if (!device) throw new Error('no identity');
    const relay = new RelayClient({ baseUrl: server.url, signer: deviceSigner(device), WebSocket: WebSocket as never });
    let left = -1;
    for (let i = 0; i < 200 && left !== 0; i++) {
      left = (await relay.fetchMessages()).messages.length;
      if (left !== 0) await new Promise((r) => setTimeout(r, 25));
    }
    expect(left).toBe(0);
  }, 60_000);
});
