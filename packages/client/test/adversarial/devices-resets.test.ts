// Issue 11 finding 5: the relay could force session resets at will. A
// fabricated 410 STALE_DEVICES deleted the whole session record (current and
// archived sessions); a replayed envelope (DUPLICATE_MESSAGE) made the
// receiver start a fresh session from a bundle the relay picks; and any
// failure the relay causes could do that up to 100 times an hour per
// device. Now a stale claim is checked against the signed device list, a
// duplicate never starts a session, and fresh sessions that replace a
// working one are limited per peer. spec/10-client.md §4.1, §6.
import { defaultProvider, toHex } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ParleyClient } from '../../src/client.ts';
import { MAX_SESSION_RESETS_PER_PEER_PER_DAY } from '../../src/engine/retry.ts';
import { parseAccountId } from '../../src/ids.ts';
import { loadSession } from '../../src/state/sessions.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { next, record, until } from '../support/harness.ts';
import { type EnvelopeFrame, answerJson, deviceTag, fabricateStale, jsonAnswer } from '../support/malicious-relay.ts';
import { type World, world } from './support.ts';

const provider = defaultProvider();
let w: World;
beforeEach(async () => {
  w = await world();
});
afterEach(() => w.close());

const texts = (c: ParleyClient, conversation: string) =>
  c.history(conversation).flatMap((h) => (h.content.body.type === 'text' && !h.outgoing ? [h.content.body.text] : []));

/** Bundle fetches for an account's devices that went through the relay (each one is a fresh session). */
const bundleFetches = (w: World, of: ParleyClient) =>
  w.evil.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/v1/keys/${of.accountId}/`)).length;

function sessionId(store: MemoryStore, peer: ParleyClient): string {
  const { record } = loadSession(store, { accountKey: parseAccountId(peer.accountId), deviceId: peer.deviceId }, provider);
  return record.sessionId ? toHex(record.sessionId) : 'none';
}

/** Alice and Bob, each with a working session with the other (both have answered). */
async function talking() {
  const aliceStore = new MemoryStore();
  const bobStore = new MemoryStore();
  const alice = await w.create(aliceStore);
  const bob = await w.create(bobStore);
  await alice.addContact(bob.accountId, 'bob');
  await bob.addContact(alice.accountId, 'alice');
  await alice.sendText(bob.accountId, 'one');
  await until(() => texts(bob, alice.accountId).includes('one'), 10_000, 'one');
  await bob.sendText(alice.accountId, 'two');
  await until(() => texts(alice, bob.accountId).includes('two'), 10_000, 'two');
  await alice.sendText(bob.accountId, 'three');
  await until(() => texts(bob, alice.accountId).includes('three'), 10_000, 'three');
  return { alice, bob, aliceStore, bobStore };
}

describe('the relay cannot force session resets', () => {
  it('a fabricated stale-devices answer neither deletes nor replaces the session', async () => {
    const { alice, bob, aliceStore } = await talking();
    const before = sessionId(aliceStore, bob);
    const fetches = bundleFetches(w, bob);
    const warnings = record(alice, 'warning');
    fabricateStale(w.evil, parseAccountId(bob.accountId), [bob.deviceId], 1);

    await alice.sendText(bob.accountId, 'four').catch(() => undefined);
    await until(() => texts(bob, alice.accountId).includes('four'), 10_000, 'four after the lie');
    expect(sessionId(aliceStore, bob)).toBe(before);
    expect(bundleFetches(w, bob)).toBe(fetches);
    expect(warnings.map((e) => e.code)).toContain('RELAY_MISBEHAVED');
  });

  it('a device the relay stops listing for a while keeps its session (only the signed list removes one)', async () => {
    const { alice, bob, aliceStore } = await talking();
    const before = sessionId(aliceStore, bob);
    const fetches = bundleFetches(w, bob);
    const hide = w.evil.onRequest(async (req, forward) => {
      if (req.method !== 'GET' || req.path !== `/v1/accounts/${bob.accountId}/devices`) return undefined;
      const real = answerJson<{ account: string; devices: { deviceId: number }[] }>(await forward());
      return jsonAnswer(200, { ...real, devices: real.devices.filter((d) => d.deviceId !== bob.deviceId) });
    });
    expect(await alice.devices(bob.accountId)).toEqual([]);
    hide();
    await alice.sendText(bob.accountId, 'still here');
    await until(() => texts(bob, alice.accountId).includes('still here'), 10_000, 'still here');
    expect(sessionId(aliceStore, bob)).toBe(before);
    expect(bundleFetches(w, bob)).toBe(fetches);
  });

  it('a replayed envelope (DUPLICATE_MESSAGE) does not start a fresh session', async () => {
    const { alice, bob, bobStore } = await talking();
    const before = sessionId(bobStore, alice);
    const fetches = bundleFetches(w, alice);
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    const old = w.evil.pushed.filter((p) => p.to === bobTag && p.frame.sender.account === alice.accountId).at(-1)?.frame as EnvelopeFrame;

    const failed = next(bob, 'undecryptable', (e) => e.clientId === 'replayed-1');
    expect(w.evil.injectEnvelope(bobTag, { sender: old.sender, id: 'replayed-1', envelope: old.envelope })).toBe(true);
    expect((await failed).code).toBe('DUPLICATE_MESSAGE');
    await bob.flush().catch(() => undefined);
    expect(sessionId(bobStore, alice)).toBe(before);
    expect(bundleFetches(w, alice)).toBe(fetches);
    // The conversation goes on, on the same session.
    await alice.sendText(bob.accountId, 'after the replay');
    await until(() => texts(bob, alice.accountId).includes('after the replay'), 10_000, 'after the replay');
    expect(sessionId(bobStore, alice)).toBe(before);
  });

  it(`failures the relay causes replace a working session at most ${MAX_SESSION_RESETS_PER_PEER_PER_DAY} times a day per peer`, async () => {
    const { alice, bob } = await talking();
    const fetches = bundleFetches(w, alice);
    const warnings = record(bob, 'warning');
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    // Tamper with the first delivery of each of Alice's messages (not the re-sends, ids ending in .rN).
    w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId || frame.id.includes('.r')) return undefined;
      const bytes = Buffer.from(frame.envelope, 'base64url');
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
      return [{ ...frame, envelope: bytes.toString('base64url') }];
    });
    const rounds = MAX_SESSION_RESETS_PER_PEER_PER_DAY + 3;
    for (let i = 0; i < rounds; i++) {
      const text = `tampered ${i}`;
      await alice.sendText(bob.accountId, text);
      // Bob asks again; Alice re-sends on the session the request arrived on; the message arrives once.
      await until(() => texts(bob, alice.accountId).includes(text), 10_000, text);
    }
    expect(bundleFetches(w, alice) - fetches).toBeLessThanOrEqual(MAX_SESSION_RESETS_PER_PEER_PER_DAY);
    expect(texts(bob, alice.accountId).filter((t) => t.startsWith('tampered')).length).toBe(rounds);
    // Each refusal past the budget is reported.
    expect(warnings.filter((e) => e.code === 'SESSION_RESET_LIMIT').length).toBeGreaterThan(0);
  }, 60_000);
});
