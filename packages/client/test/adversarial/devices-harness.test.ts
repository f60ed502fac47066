// The malicious-relay harness itself (test/support/malicious-relay.ts): the
// lies other adversarial tests build on do what they say, against the real
// relay, and the honest path through the proxy is unchanged.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ParleyClient } from '../../src/client.ts';
import { until } from '../support/harness.ts';
import { type EnvelopeFrame, answerJson, deviceTag } from '../support/malicious-relay.ts';
import { type World, world } from './support.ts';

let w: World;
beforeEach(async () => {
  w = await world();
});
afterEach(() => w.close());

const received = (c: ParleyClient, from: ParleyClient) =>
  c.history(from.accountId).flatMap((h) => (h.content.body.type === 'text' && !h.outgoing ? [h.content.body.text] : []));

async function pair() {
  const alice = await w.create();
  const bob = await w.create();
  await alice.addContact(bob.accountId, 'bob');
  await bob.addContact(alice.accountId, 'alice');
  await alice.sendText(bob.accountId, 'hello');
  await until(() => received(bob, alice).includes('hello'), 10_000, 'hello');
  return { alice, bob, bobTag: deviceTag(bob.accountId, bob.deviceId) };
}

describe('malicious relay harness', () => {
  it('duplicates and reorders envelopes; the client applies each message once', async () => {
    const { alice, bob, bobTag } = await pair();
    const held: EnvelopeFrame[] = [];
    w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId) return undefined;
      held.push(frame);
      // Hold two, then deliver all three newest first, each twice.
      return held.length < 3
        ? []
        : held
            .splice(0)
            .reverse()
            .flatMap((f) => [f, f]);
    });
    for (const text of ['m1', 'm2', 'm3']) await alice.sendText(bob.accountId, text);
    await until(() => ['m1', 'm2', 'm3'].every((t) => received(bob, alice).includes(t)), 10_000, 'm1..m3');
    expect(
      received(bob, alice)
        .filter((t) => t.startsWith('m'))
        .sort(),
    ).toEqual(['m1', 'm2', 'm3']);
  });

  it('drops an envelope: it is not delivered, and the next one still is', async () => {
    const { alice, bob, bobTag } = await pair();
    let dropped = 0;
    w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId || dropped > 0) return undefined;
      dropped++;
      return [];
    });
    await alice.sendText(bob.accountId, 'lost');
    await alice.sendText(bob.accountId, 'kept');
    await until(() => received(bob, alice).includes('kept'), 10_000, 'kept');
    expect(dropped).toBe(1);
    expect(received(bob, alice)).not.toContain('lost');
  });

  it('captures signed requests; a replay reaches the real relay byte for byte (and its replay cache refuses it)', async () => {
    const { bob } = await pair();
    const listing = w.evil.requests.find((r) => r.method === 'GET' && r.path === `/v1/accounts/${bob.accountId}/devices`);
    if (!listing) throw new Error('no device listing went through the proxy');
    const again = await w.evil.replay(listing);
    expect(again.status).toBe(401);
    expect(answerJson(again).code).toBe('AUTH_REPLAYED');
  });
});
