/**
 * The client SDK on asynchronous curves (`curves` in the client config:
 * WebCrypto's X25519/Ed25519 in browsers; Node's own WebCrypto here). The
 * receive path prepares each envelope's curve operations before its
 * synchronous transaction (engine/receive.ts, core's prepareAsyncCurves,
 * spec 01 §4.2.1). Byte identity with noble is core's test
 * (async-curves.test.ts); here: the client really uses the curves for
 * first contact, ping-pong and group messages, and falls back to its
 * synchronous provider when the curves fail.
 */
import { type AsyncCurves, webCryptoCurves } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { FakeRelay } from './support/fake-relay.ts';
import { closedAfterEach, next, TEST_OPTIONS, until } from './support/harness.ts';

/** The curves, counting the operations they answer. */
function counted(curves: AsyncCurves): { curves: AsyncCurves; calls: () => number } {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      n++;
      return f(...a);
    };
  return {
    curves: {
      x25519: wrap(curves.x25519),
      x25519PublicKey: wrap(curves.x25519PublicKey),
      ed25519PublicKey: wrap(curves.ed25519PublicKey),
      ed25519Sign: wrap(curves.ed25519Sign),
      ed25519Verify: wrap(curves.ed25519Verify),
    },
    calls: () => n,
  };
}

describe('the client on asynchronous (WebCrypto) curves', async () => {
  const track = closedAfterEach();
  const web = (await webCryptoCurves()) as AsyncCurves;
  const make = async (relay: FakeRelay, curves: AsyncCurves | null) => {
    const client = await ParleyClient.createAccount({ store: new MemoryStore(), relay: relay.connector, options: TEST_OPTIONS, curves });
    await client.start();
    return track(client);
  };
  const texts = (c: ParleyClient, conversation: string) =>
    c.history(conversation).map((h) => (h.content.body.type === 'text' ? h.content.body.text : ''));

  it('decrypts a ping-pong and group messages with their curve operations on the curves (first contact on the provider)', async () => {
    expect(web).not.toBeNull();
    const relay = new FakeRelay();
    const a = counted(web);
    const b = counted(web);
    const alice = await make(relay, a.curves);
    const bob = await make(relay, b.curves);
    const first = next(bob, 'message');
    await alice.sendText(bob.accountId, 'hello');
    expect((await first).body).toEqual({ type: 'text', text: 'hello' });
    // A PreKeyMessage stays on the synchronous provider: ten replayed handshakes cost more than WebCrypto saves.
    expect(b.calls()).toBe(0);
    for (let i = 0; i < 3; i++) {
      const toAlice = next(alice, 'message', (m) => m.body.type === 'text' && m.body.text === `b${i}`);
      await bob.sendText(alice.accountId, `b${i}`);
      await toAlice;
      const toBob = next(bob, 'message', (m) => m.body.type === 'text' && m.body.text === `a${i}`);
      await alice.sendText(bob.accountId, `a${i}`);
      await toBob;
    }
    // History is ordered by the senders' clocks, which two clients on one machine can tie; the set is what matters here.
    expect(texts(bob, alice.accountId).filter(Boolean).sort()).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'hello']);
    // Each ratchet message after that is prepared on the curves (a DH step: 3 operations).
    expect(a.calls()).toBeGreaterThanOrEqual(9);
    expect(b.calls()).toBeGreaterThanOrEqual(6);

    const carol = await make(relay, null);
    const group = await alice.createGroup('three', [bob.accountId, carol.accountId]);
    await until(() => bob.group(group) !== null && carol.group(group) !== null);
    const before = b.calls();
    await alice.sendText(group, 'to the group');
    await until(() => texts(bob, group).includes('to the group') && texts(carol, group).includes('to the group'));
    // A group message's signature is checked on the curves.
    expect(b.calls()).toBeGreaterThan(before);
  });

  it('falls back to the synchronous provider when the curves fail', async () => {
    const relay = new FakeRelay();
    const broken: AsyncCurves = {
      x25519: () => Promise.reject(new Error('curve unavailable')),
      x25519PublicKey: () => Promise.reject(new Error('curve unavailable')),
      ed25519PublicKey: () => Promise.reject(new Error('curve unavailable')),
      ed25519Sign: () => Promise.reject(new Error('curve unavailable')),
      ed25519Verify: () => Promise.reject(new Error('curve unavailable')),
    };
    const alice = await make(relay, null);
    const bob = await make(relay, broken);
    const got = next(bob, 'message');
    await alice.sendText(bob.accountId, 'still arrives');
    expect((await got).body).toEqual({ type: 'text', text: 'still arrives' });
    const back = next(alice, 'message');
    await bob.sendText(alice.accountId, 'and back');
    expect((await back).body).toEqual({ type: 'text', text: 'and back' });
  });
});
