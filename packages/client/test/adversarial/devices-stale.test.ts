// Issue 11 finding 5, the relay's answers: a fabricated 410 STALE_DEVICES
// deleted the whole session record (current and archived sessions), and a
// device the relay stopped listing for one fetch lost its session too. Now a
// stale claim is checked against the signed device list (and refused while
// the list still names the certificate), and only the account's signed list
// removes a session. spec/10-client.md §4.1, §5.3.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseAccountId } from '../../src/state/ids.ts';
import { record, until } from '../support/harness.ts';
import { answerJson, fabricateStale, jsonAnswer } from '../support/malicious-relay.ts';
import { type World, bundleFetches, sessionId, talking, texts, world } from './support.ts';

let w: World;
beforeEach(async () => {
  w = await world();
});
afterEach(() => w.close());

describe('the relay cannot wipe sessions with its answers', () => {
  it('a fabricated stale-devices answer neither deletes nor replaces the session', async () => {
    const { alice, bob, aliceStore } = await talking(w);
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
    const { alice, bob, aliceStore } = await talking(w);
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
});
