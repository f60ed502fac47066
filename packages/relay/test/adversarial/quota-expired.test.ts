// Issue 12 finding 7 (mailbox part): envelopes that expired but were not
// swept yet must not count against the mailbox limit. An attacker fills an
// offline victim's mailbox with short-lived envelopes; once they expire, a
// friend's send is accepted at once, without waiting for the next sweep
// (spec/09-relay.md §4.3, §6).
import { afterEach, describe, expect, it } from 'vitest';
import { listeningRelay, makeDevice, register } from '../support.ts';
import { type Listening, bounded, message, signed, tally } from './quota-support.ts';

let relay: Listening;
afterEach(() => relay.close());

describe('finding 7: expired envelopes in a full mailbox', () => {
  it('do not refuse a send before the sweep runs', async () => {
    relay = await listeningRelay(
      {
        // No sweep during the test: only the send path can drop expired envelopes.
        sweepIntervalSeconds: 3600,
        limits: { maxQueuedMessagesPerDevice: 20, maxMailboxPercentPerSender: 100 },
        rateLimits: { requestsPerMinutePerIp: 100_000 },
      },
      { clock: true },
    );
    const attacker = makeDevice();
    const friend = makeDevice();
    const victim = makeDevice();
    for (const d of [attacker, friend, victim]) await register(relay.app, d);

    // 20 envelopes that live one minute fill the mailbox.
    const filled = await bounded(20, 2, (i) => message(relay, attacker, victim, `short${i}`, undefined, 60));
    expect(tally(filled)).toEqual({ 200: 20 });
    expect((await message(relay, friend, victim, 'early')).body).toMatchObject({ code: 'MAILBOX_FULL' });

    relay.clock.now += 120_000;
    const later = await bounded(5, 1, (i) => message(relay, friend, victim, `later${i}`));
    console.info('finding 7, friend after expiry:', JSON.stringify(tally(later)));
    expect(tally(later)).toEqual({ 200: 5 });
    const inbox = await signed(relay, victim, { method: 'GET', url: '/v1/messages?limit=100' });
    expect((inbox.body.messages as { id: string }[]).map((m) => m.id)).toEqual(['later0', 'later1', 'later2', 'later3', 'later4']);
    expect((await relay.app.relay.storage.stats()).queuedMessages).toBe(5);
  }, 30_000);
});
