// Issue 11 finding 5: the relay could force session resets at will. A
// fabricated 410 STALE_DEVICES deleted the whole session record (current and
// archived sessions); a replayed envelope (DUPLICATE_MESSAGE) made the
// receiver start a fresh session from a bundle the relay picks; and any
// failure the relay causes could do that up to 100 times an hour per
// device. Now a stale claim is checked against the signed device list, a
// duplicate never starts a session, and fresh sessions that replace a
// working one are limited per peer. spec/10-client.md §4.1, §6.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SESSION_RESETS_PER_PEER_PER_DAY } from '../../src/engine/retry.ts';
import { next, record, until } from '../support/harness.ts';
import { type EnvelopeFrame, deviceTag } from '../support/malicious-relay.ts';
import { type World, bundleFetches, sessionId, talking, texts, world } from './support.ts';

let w: World;
beforeEach(async () => {
  w = await world();
});
afterEach(() => w.close());

describe('the relay cannot force session resets', () => {
  it('a replayed envelope (DUPLICATE_MESSAGE) does not start a fresh session', async () => {
    const { alice, bob, bobStore } = await talking(w);
    const before = sessionId(bobStore, alice);
    const fetches = bundleFetches(w, alice);
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    const old = w.evil.pushed.filter((p) => p.to === bobTag && p.frame.sender.account === alice.accountId).at(-1)?.frame as EnvelopeFrame;

    const failed = next(bob, 'undecryptable', (e) => e.clientId === 'replayed-1');
    // Replayed whole, with its delivery record (the franking tag of a v2 message), as a relay holding it would.
    const replay = { sender: old.sender, id: 'replayed-1', envelope: old.envelope, ...(old.delivery ? { delivery: old.delivery } : {}) };
    expect(w.evil.injectEnvelope(bobTag, replay)).toBe(true);
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
    const { alice, bob } = await talking(w);
    const fetches = bundleFetches(w, alice);
    const warnings = record(bob, 'warning');
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    // Tamper with the first delivery of each of Alice's messages (not the re-sends, ids ending in .rN), in
    // the encrypted header of the v2 message (84 02 02 58 3c <60 bytes> ...): no header key opens it
    // (HEADER_DECRYPT_FAILED), which a fresh session may cure. A body that fails after its header opened
    // replaces no session at all (v2-wire.test.ts).
    w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId || frame.id.includes('.r')) return undefined;
      const bytes = Buffer.from(frame.envelope, 'base64url');
      bytes[10] = (bytes[10] as number) ^ 1;
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
