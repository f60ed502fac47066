// Messages over HTTP: device-list checks (409/410), idempotent sends,
// mailbox limits, fetch/ack, TTL expiry. spec/09-relay.md §4.3-§4.4, §6.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepOnce } from '../src/sweeper.ts';
import { type TestDevice, type TestRelay, envelopeFor, inject, json, makeDevice, register, testRelay, toBase64Url } from './support.ts';

let relay: TestRelay;
let alice: TestDevice;
let alice2: TestDevice;
let bob: TestDevice;
let bob2: TestDevice;

async function setup(config = {}) {
  relay = await testRelay(config, { clock: true });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  alice2 = makeDevice(alice.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
  for (const d of [alice, alice2, bob, bob2]) await register(relay.app, d);
}
afterEach(() => relay.close());

const send = (from: TestDevice, messages: unknown[], extra = {}) =>
  inject(relay.app, from.signer, { method: 'POST', url: '/v1/messages', json: { messages, ...extra } });
type Inbox = { messages: { seq: number; id: string; envelope: string; sender: { account: string; deviceId: number } }[]; more: boolean };
const inbox = async (d: TestDevice, query = '') =>
  json<Inbox>(await inject(relay.app, d.signer, { method: 'GET', url: `/v1/messages${query}` }));

describe('sending', () => {
  beforeEach(() => setup());

  it('stores one envelope per device and delivers each to its own mailbox only', async () => {
    const r = await send(alice, [
      envelopeFor(bob, 'm1', 'for bob 1'),
      envelopeFor(bob2, 'm1', 'for bob 2'),
      envelopeFor(alice2, 'm1', 'for me 2'),
    ]);
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ accepted: 3 });
    const got = await inbox(bob);
    expect(got.messages).toHaveLength(1);
    expect(got.messages[0]).toMatchObject({
      id: 'm1',
      envelope: toBase64Url(new TextEncoder().encode('for bob 1')),
      sender: { account: alice.id, deviceId: 1 },
    });
    expect((await inbox(bob2)).messages[0]?.envelope).toBe(toBase64Url(new TextEncoder().encode('for bob 2')));
    expect((await inbox(alice)).messages).toEqual([]);
  });

  it('answers 409 with missing and extra devices, and stores nothing', async () => {
    const r = await send(alice, [envelopeFor(bob, 'm1'), { ...envelopeFor(bob, 'm1'), deviceId: 9 }, envelopeFor(alice, 'm1')]);
    expect(r.statusCode).toBe(409);
    const body = json<{ code: string; details: { mismatches: unknown[] } }>(r);
    expect(body.code).toBe('MISMATCHED_DEVICES');
    expect(body.details.mismatches).toEqual(
      expect.arrayContaining([
        { account: bob.id, missingDevices: [2], extraDevices: [9] },
        // the sender's own device is never a recipient; its other device is missing
        { account: alice.id, missingDevices: [2], extraDevices: [1] },
      ]),
    );
    expect((await inbox(bob)).messages).toEqual([]);
  });

  it('an unknown account looks like an account without devices (409, every device extra)', async () => {
    const ghost = makeDevice();
    const r = await send(alice, [envelopeFor(ghost, 'm1'), envelopeFor(alice2, 'm1')]);
    expect(json<{ details: unknown }>(r).details).toEqual({ mismatches: [{ account: ghost.id, missingDevices: [], extraDevices: [1] }] });
  });

  it('answers 410 when an envelope was encrypted for a replaced certificate', async () => {
    const devices = json<{ devices: { deviceId: number; certificateHash: string }[] }>(
      await inject(relay.app, alice.signer, { method: 'GET', url: `/v1/accounts/${bob.id}/devices` }),
    ).devices;
    const hash = (id: number) => devices.find((d) => d.deviceId === id)?.certificateHash as string;
    const fresh = [
      { ...envelopeFor(bob, 'a', 'x'), certificateHash: hash(1) },
      { ...envelopeFor(bob2, 'a', 'x'), certificateHash: hash(2) },
    ];
    expect((await send(alice, [...fresh, envelopeFor(alice2, 'a')])).statusCode).toBe(200);
    await register(relay.app, makeDevice(bob.account, 2)); // bob reinstalls device 2
    const r = await send(alice, [{ ...fresh[0], id: 'b' }, { ...fresh[1], id: 'b' }, envelopeFor(alice2, 'b')]);
    expect(r.statusCode).toBe(410);
    expect(json(r)).toMatchObject({ code: 'STALE_DEVICES', details: { stale: [{ account: bob.id, staleDevices: [2] }] } });
  });

  it('a retry with the same ids stores nothing new and gets the same answer', async () => {
    const batch = [envelopeFor(bob, 'same'), envelopeFor(bob2, 'same'), envelopeFor(alice2, 'same')];
    const first = await send(alice, batch);
    const again = await send(alice, batch);
    expect(again.statusCode).toBe(first.statusCode);
    expect(again.body).toBe(first.body);
    expect((await inbox(bob)).messages).toHaveLength(1);
    // Still a duplicate after delivery and acknowledgement.
    const seq = (await inbox(bob)).messages[0]?.seq as number;
    await inject(relay.app, bob.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [seq] } });
    expect((await send(alice, batch)).body).toBe(first.body);
    expect((await inbox(bob)).messages).toEqual([]);
  });

  it('the same id from another sender device is another message', async () => {
    await send(alice, [envelopeFor(bob, 'x'), envelopeFor(bob2, 'x'), envelopeFor(alice2, 'x')]);
    await send(alice2, [envelopeFor(bob, 'x'), envelopeFor(bob2, 'x'), envelopeFor(alice, 'x')]);
    expect((await inbox(bob)).messages.map((m) => m.sender.deviceId)).toEqual([1, 2]);
  });

  it('refuses two envelopes for one device, empty envelopes, and too many envelopes', async () => {
    const twice = await send(alice, [envelopeFor(bob, 'a'), envelopeFor(bob, 'b')]);
    expect(json(twice).code).toBe('MALFORMED');
    const empty = await send(alice, [{ ...envelopeFor(bob, 'a'), envelope: '' }]);
    expect(json(empty).code).toBe('MALFORMED');
  });
});

describe('limits', () => {
  it('refuses more envelopes per send than configured', async () => {
    await setup({ limits: { maxEnvelopesPerSend: 2 } });
    const r = await send(alice, [envelopeFor(bob, 'a'), envelopeFor(bob2, 'a'), envelopeFor(alice2, 'a')]);
    expect(r.statusCode).toBe(413);
    expect(json(r)).toMatchObject({ code: 'TOO_MANY_ENVELOPES', details: { limit: 2 } });
  });

  it('refuses an envelope above the envelope limit', async () => {
    await setup({ limits: { maxEnvelopeBytes: 16 } });
    const r = await send(alice, [envelopeFor(bob, 'a', 'x'.repeat(17)), envelopeFor(bob2, 'a'), envelopeFor(alice2, 'a')]);
    expect(r.statusCode).toBe(413);
    expect(json(r).code).toBe('OVERSIZED');
  });

  it('answers MAILBOX_FULL when a device mailbox is at its limit, until it acknowledges', async () => {
    // One sender fills the whole mailbox here: its share is the whole mailbox (shares: test/adversarial/quota-mailbox).
    await setup({ limits: { maxQueuedMessagesPerDevice: 2, maxMailboxPercentPerSender: 100 } });
    const to = (id: string) => [envelopeFor(bob, id), envelopeFor(bob2, id), envelopeFor(alice2, id)];
    expect((await send(alice, to('1'))).statusCode).toBe(200);
    expect((await send(alice, to('2'))).statusCode).toBe(200);
    const full = await send(alice, to('3'));
    expect(full.statusCode).toBe(507);
    expect(json<{ details: { devices: unknown[] } }>(full).details.devices).toHaveLength(3);
    const seqs = (await inbox(bob)).messages.map((m) => m.seq);
    await inject(relay.app, bob.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs } });
    const stillFull = await send(alice, to('3'));
    expect(json<{ details: { devices: unknown[] } }>(stillFull).details.devices).toEqual(
      expect.not.arrayContaining([{ account: bob.id, deviceId: 1 }]),
    );
    expect(json<{ details: { devices: unknown[] } }>(stillFull).details.devices).toHaveLength(2);
  });

  it('limits envelope bytes per recipient account', async () => {
    await setup({ rateLimits: { messageBytesPerMinutePerRecipient: 40 } });
    const to = (id: string) => [envelopeFor(bob, id, 'x'.repeat(15)), envelopeFor(bob2, id, 'x'.repeat(15)), envelopeFor(alice2, id)];
    expect((await send(alice, to('1'))).statusCode).toBe(200);
    const r = await send(alice, to('2'));
    expect(r.statusCode).toBe(429);
    expect(json(r)).toMatchObject({ code: 'RATE_LIMITED' });
    relay.clock.now += 60_000;
    expect((await send(alice, to('2'))).statusCode).toBe(200);
  });
});

describe('fetch, acknowledge, expire', () => {
  beforeEach(() => setup({ messageTtlSeconds: 3600 }));
  const toBob = (id: string) => [envelopeFor(bob, id), envelopeFor(bob2, id), envelopeFor(alice2, id)];

  it('pages through the mailbox in order', async () => {
    for (const id of ['a', 'b', 'c']) await send(alice, toBob(id));
    const page = await inbox(bob, '?limit=2');
    expect(page.messages.map((m) => m.id)).toEqual(['a', 'b']);
    expect(page.more).toBe(true);
    const rest = await inbox(bob, `?after=${page.messages[1]?.seq}`);
    expect(rest.messages.map((m) => m.id)).toEqual(['c']);
    expect(rest.more).toBe(false);
  });

  it("acknowledging someone else's or an unknown seq changes nothing and answers the same", async () => {
    await send(alice, toBob('a'));
    const seq = (await inbox(bob)).messages[0]?.seq as number;
    const foreign = await inject(relay.app, bob2.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [seq] } });
    const unknown = await inject(relay.app, bob.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [seq + 1000] } });
    expect(foreign.statusCode).toBe(204);
    expect(unknown.statusCode).toBe(204);
    expect((await inbox(bob)).messages).toHaveLength(1);
    await inject(relay.app, bob.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [seq] } });
    expect((await inbox(bob)).messages).toHaveLength(0);
  });

  it('messages expire after their TTL (a shorter one may be asked) and are swept', async () => {
    await send(alice, toBob('long'));
    await send(alice, toBob('short'), { ttlSeconds: 60 });
    relay.clock.now += 61_000;
    expect((await inbox(bob)).messages.map((m) => m.id)).toEqual(['long']);
    relay.clock.now += 3600_000;
    expect((await inbox(bob)).messages).toEqual([]);
    const swept = await sweepOnce(relay.app);
    expect(swept.messages).toBe(6);
    const stats = await relay.app.relay.storage.stats();
    expect(stats.queuedMessages).toBe(0);
  });
});
