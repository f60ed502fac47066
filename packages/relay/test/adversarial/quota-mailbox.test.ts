// Issue 12 finding 4: one account must not be able to fill a victim's
// mailbox, nor store attachments without bound. Each sender account gets a
// bounded share of each mailbox (spec/09-relay.md §8.3): the attacker (with
// two devices) fills its share and is refused with 507 MAILBOX_FULL,
// scope 'sender-share', while a friend still delivers to the offline
// victim. Attachments count against stored-bytes quotas per device and per
// account. The metrics show how many mailboxes and uploaders are near a
// quota, and which quota refused how many requests.
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayConfigOverrides } from '../../src/config.ts';
import { type TestDevice, listeningRelay, makeDevice, register } from '../support.ts';
import { type Answer, type Listening, bounded, message, signed, tally } from './quota-support.ts';

const KiB = 1024;
const config: RelayConfigOverrides = {
  limits: {
    maxQueuedMessagesPerDevice: 40,
    maxQueuedBytesPerDevice: 40 * 2 * KiB,
    maxMailboxPercentPerSender: 25,
    maxAttachmentBytes: 1000,
    maxAttachmentBytesPerDevice: 3000,
    maxAttachmentBytesPerAccount: 5000,
    maxPendingUploadsPerDevice: 100,
  },
  rateLimits: { requestsPerMinutePerIp: 100_000, attachmentsPerHourPerDevice: 1000 },
};

let relay: Listening;
afterEach(() => relay.close());

async function metric(name: string, label: string): Promise<number> {
  const text = await relay.app.relay.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('finding 4: one account against one mailbox', () => {
  it('fills only its own share; a friend still delivers to the offline victim', async () => {
    relay = await listeningRelay(config);
    const attacker1 = makeDevice();
    const attacker2 = makeDevice(attacker1.account, 2);
    const friend = makeDevice();
    const victim = makeDevice();
    for (const d of [attacker1, attacker2, friend, victim]) await register(relay.app, d);
    const junk = (i: number) => `junk ${i} `.padEnd(KiB, 'x');

    // Phase 1: the attacker's two devices send 60 envelopes of 1 KiB.
    const flood = await bounded(60, 4, (i) => message(relay, i % 2 ? attacker2 : attacker1, victim, `a${i}`, junk(i)));
    // Phase 2: the attack goes on while a friend sends.
    const [more, friendly] = await Promise.all([
      bounded(20, 2, (i) => message(relay, attacker1, victim, `b${i}`, junk(i))),
      bounded(6, 1, (i) => message(relay, friend, victim, `f${i}`)),
    ]);
    console.info('finding 4, mailbox:', JSON.stringify({ attack: tally([...flood, ...more]), friend: tally(friendly) }));

    expect(tally(friendly)).toEqual({ 200: 6 });
    const attack = [...flood, ...more];
    expect(tally(attack)).toEqual({ 200: 10, 507: 70 });
    expect((attack.find((a) => a.status === 507) as Answer).body).toMatchObject({
      code: 'MAILBOX_FULL',
      details: { scope: 'sender-share', devices: [{ account: victim.id, deviceId: 1 }] },
    });
    const inbox = await signed(relay, victim, { method: 'GET', url: '/v1/messages?limit=100' });
    expect((inbox.body.messages as unknown[]).length).toBe(16);

    // The operator sees one sender share at its limit (the friend's 6 of 10 is below 80%), and the refusals by quota.
    expect(await metric('parley_relay_quota_near_limit', 'quota="mailbox_sender_share"')).toBe(1);
    expect(await metric('parley_relay_rate_limited_total', 'limit="mailbox_sender_share"')).toBe(70);
  }, 30_000);
});

describe('finding 4: the byte rate towards one recipient', () => {
  it("is counted per sender: one flooder spends its own budget, not the victim's friends'", async () => {
    relay = await listeningRelay({ rateLimits: { requestsPerMinutePerIp: 100_000, messageBytesPerMinutePerRecipient: 16 * KiB } });
    const attacker = makeDevice();
    const friend = makeDevice();
    const victim = makeDevice();
    for (const d of [attacker, friend, victim]) await register(relay.app, d);
    const flood = await bounded(30, 2, (i) => message(relay, attacker, victim, `r${i}`, `rate ${i} `.padEnd(KiB, 'x')));
    const friendly = await bounded(5, 1, (i) => message(relay, friend, victim, `f${i}`, `hello ${i} `.padEnd(KiB, 'y')));
    console.info('finding 4, byte rate:', JSON.stringify({ attack: tally(flood), friend: tally(friendly) }));
    expect(tally(flood)[429]).toBeGreaterThan(0);
    expect((flood.find((a) => a.status === 429) as Answer).body).toMatchObject({ code: 'RATE_LIMITED' });
    expect(tally(friendly)).toEqual({ 200: 5 });
  }, 30_000);
});

describe('finding 4: stored attachment bytes', () => {
  async function upload(d: TestDevice, size: number): Promise<Answer> {
    return signed(relay, d, { method: 'POST', url: '/v1/attachments', json: { size } });
  }

  it('are bounded per device and per account; another account still uploads', async () => {
    relay = await listeningRelay(config);
    const attacker1 = makeDevice();
    const attacker2 = makeDevice(attacker1.account, 2);
    const friend = makeDevice();
    for (const d of [attacker1, attacker2, friend]) await register(relay.app, d);

    const fromOne = await bounded(10, 2, () => upload(attacker1, 1000));
    const fromTwo = await bounded(10, 2, () => upload(attacker2, 1000));
    const friendly = await upload(friend, 1000);
    console.info('finding 4, attachments:', JSON.stringify({ device1: tally(fromOne), device2: tally(fromTwo), friend: friendly.status }));

    expect(tally(fromOne)).toEqual({ 201: 3, 507: 7 });
    expect((fromOne.find((a) => a.status === 507) as Answer).body).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      details: { scope: 'device', limit: 3000 },
    });
    expect(tally(fromTwo)).toEqual({ 201: 2, 507: 8 });
    expect((fromTwo.find((a) => a.status === 507) as Answer).body).toMatchObject({ details: { scope: 'account', limit: 5000 } });
    expect(friendly.status).toBe(201);
    expect((await relay.app.relay.storage.stats()).attachments).toBe(6);

    expect(await metric('parley_relay_quota_near_limit', 'quota="attachment_bytes_per_device"')).toBe(1);
    expect(await metric('parley_relay_quota_near_limit', 'quota="attachment_bytes_per_account"')).toBe(1);
    // Deleting an upload gives its bytes back.
    const id = (fromOne.find((a) => a.status === 201) as Answer).body.id as string;
    expect((await signed(relay, attacker1, { method: 'DELETE', url: `/v1/attachments/${id}` })).status).toBe(204);
    expect((await upload(attacker2, 1000)).status).toBe(201);
  }, 30_000);
});
