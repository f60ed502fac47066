// Group fan-out over HTTP and the websocket, on SQLite and on PostgreSQL:
// one envelope uploaded once with its recipient list, stored once, and
// delivered to each recipient exactly as a single send would have been;
// the send's device-list checks, idempotency, limits and byte rate; per-
// recipient acknowledgement and TTL; the payload freed with its last
// reference; a recipient removed mid-flight. spec/09-relay.md §4.3.1.
import { afterEach, describe, expect, it } from 'vitest';
import { sweepOnce } from '../src/sweeper.ts';
import {
  type TestDevice,
  envelopeFor,
  eventually,
  eventuallyAsync,
  inject,
  json,
  listeningRelay,
  makeDevice,
  register,
  removalUrl,
  toBase64Url,
} from './support.ts';
import { storageBackends } from './support/backends.ts';

const BACKENDS = storageBackends('parley_f', { poolSize: 4 });

type Inbox = { messages: Record<string, unknown>[]; more: boolean };

describe.each(BACKENDS)('group fan-out on $name', (backend) => {
  let relay: Awaited<ReturnType<typeof listeningRelay>>;
  let drop: () => Promise<void>;
  let alice: TestDevice;
  let alice2: TestDevice;
  let bob: TestDevice;
  let bob2: TestDevice;
  let carol: TestDevice;

  async function setup(config = {}) {
    const database = backend.database();
    drop = database.drop;
    relay = await listeningRelay(config, { clock: true, storage: await database.open() });
    alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    alice2 = makeDevice(alice.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    for (const d of [alice, alice2, bob, bob2, carol]) await register(relay.app, d);
  }
  afterEach(async () => {
    await relay.close();
    await drop();
  });

  const group = () => [alice2, bob, bob2, carol];
  const to = (d: TestDevice) => ({ account: d.id, deviceId: d.device.deviceId });
  const ciphertext = (text: string) => toBase64Url(new TextEncoder().encode(text));
  const fanout = (from: TestDevice, id: string, recipients: TestDevice[], extra: Record<string, unknown> = {}) =>
    inject(relay.app, from.signer, {
      method: 'POST',
      url: '/v1/messages/fanout',
      json: { id, envelope: ciphertext(`group ${id}`), recipients: recipients.map(to), ...extra },
    });
  const inbox = async (d: TestDevice) => json<Inbox>(await inject(relay.app, d.signer, { method: 'GET', url: '/v1/messages' }));
  const ack = (d: TestDevice, seqs: unknown[]) => inject(relay.app, d.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs } });
  const stats = () => relay.app.relay.storage.stats();

  it('stores once; each recipient fetches an envelope shaped exactly like a single send', async () => {
    await setup();
    const r = await fanout(alice, 'g1', group());
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ accepted: 4 });
    await inject(relay.app, alice.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: { messages: group().map((d) => envelopeFor(d, 's1', 'group g1')) },
    });
    for (const d of group()) {
      const [viaFanout, viaSend] = (await inbox(d)).messages;
      expect(viaFanout).toEqual({ ...viaSend, seq: viaFanout?.['seq'], id: 'g1' });
      expect(viaFanout?.['envelope']).toBe(ciphertext('group g1'));
    }
    expect(await stats()).toMatchObject({ payloads: 1, queuedMessages: 8 });
  });

  it('answers 409 unless every recipient account is covered exactly, 410 for a stale certificate, and stores nothing', async () => {
    await setup();
    const r = await fanout(alice, 'g', [alice, bob, carol]);
    expect(r.statusCode).toBe(409);
    expect(json<{ code: string; details: { mismatches: unknown[] } }>(r).details.mismatches).toEqual(
      expect.arrayContaining([
        { account: bob.id, missingDevices: [2], extraDevices: [] },
        { account: alice.id, missingDevices: [2], extraDevices: [1] },
      ]),
    );
    const stale = await fanout(alice, 'g', [], {
      recipients: group().map((d) => ({ ...to(d), certificateHash: toBase64Url(new Uint8Array(32).fill(7)) })),
    });
    expect(stale.statusCode).toBe(410);
    expect(json<{ code: string }>(stale).code).toBe('STALE_DEVICES');
    expect(await stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
  });

  it('refuses malformed and oversized fan-outs before storing anything', async () => {
    await setup({ limits: { maxRecipientsPerFanout: 3, maxEnvelopeBytes: 64 } });
    const tooMany = await fanout(alice, 'g', group());
    expect([tooMany.statusCode, json<{ code: string }>(tooMany).code]).toEqual([413, 'TOO_MANY_RECIPIENTS']);
    const twice = await fanout(alice, 'g', [bob, bob]);
    expect([twice.statusCode, json<{ code: string }>(twice).code]).toEqual([400, 'MALFORMED']);
    const empty = await fanout(alice, 'g', [bob, bob2], { envelope: '' });
    expect([empty.statusCode, json<{ code: string }>(empty).code]).toEqual([400, 'MALFORMED']);
    const big = await fanout(alice, 'g', [bob, bob2], { envelope: ciphertext('x'.repeat(65)) });
    expect([big.statusCode, json<{ code: string }>(big).code]).toEqual([413, 'OVERSIZED']);
    // The body limit follows the configured envelope and recipient limits (spec §8.1): here about 1.7 KB.
    const huge = await fanout(alice, 'g', [bob, bob2], { envelope: 'A'.repeat(4000) });
    expect([huge.statusCode, json<{ code: string }>(huge).code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const canonical = await fanout(alice, 'g', [bob, bob2], { envelope: 'AB' });
    expect([canonical.statusCode, json<{ code: string }>(canonical).code]).toEqual([400, 'MALFORMED']);
    const invalid: Record<string, unknown>[] = [
      { recipients: [] },
      { recipients: 'nope' },
      { recipients: [{ ...to(bob), deviceId: 0 }] },
      { recipients: [{ ...to(bob), account: 'short' }] },
      { recipients: [{ ...to(bob), extra: 1 }] },
      { recipients: [{ ...to(bob), certificateHash: 'not a hash' }] },
      { id: 'spaces are not allowed' },
      { envelope: 'not base64!' },
      { ttlSeconds: 0 },
      { extra: true },
    ];
    for (const body of invalid) {
      const r = await fanout(alice, 'g', [bob, bob2], body);
      expect([r.statusCode, json<{ code: string }>(r).code], JSON.stringify(body)).toEqual([400, 'VALIDATION_FAILED']);
    }
    expect(await stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
  });

  it('a retry with the same id answers the same and stores nothing, also after acknowledgement', async () => {
    await setup();
    expect(json(await fanout(alice, 'same', group()))).toEqual({ accepted: 4 });
    const [m] = (await inbox(bob)).messages;
    await ack(bob, [m?.['seq']]);
    const retry = await fanout(alice, 'same', group());
    expect([retry.statusCode, json(retry)]).toEqual([200, { accepted: 4 }]);
    expect((await inbox(bob)).messages).toEqual([]);
    expect((await inbox(bob2)).messages.map((x) => x['id'])).toEqual(['same']);
    expect(await stats()).toMatchObject({ payloads: 1, queuedMessages: 3 });
  });

  it('is acknowledged per recipient; the last acknowledgement frees the payload', async () => {
    await setup();
    await fanout(alice, 'g', group());
    for (const [i, d] of group().entries()) {
      expect(await stats()).toMatchObject({ payloads: 1, queuedMessages: 4 - i });
      const [m] = (await inbox(d)).messages;
      // Another device's seq acknowledges nothing.
      expect((await ack(carol === d ? bob : carol, [m?.['seq']])).statusCode).toBe(204);
      expect((await ack(d, [m?.['seq']])).statusCode).toBe(204);
      expect((await inbox(d)).messages).toEqual([]);
    }
    expect(await stats()).toMatchObject({ payloads: 0, queuedMessages: 0, queuedBytes: 0 });
  });

  it('expires with its TTL and is swept with its payload', async () => {
    await setup();
    await fanout(alice, 'short', group(), { ttlSeconds: 60 });
    relay.clock.now += 61_000;
    for (const d of group()) expect((await inbox(d)).messages).toEqual([]);
    expect(await sweepOnce(relay.app)).toMatchObject({ messages: 4, sentIds: 4 });
    expect(await stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
  });

  it('a recipient removed mid-flight loses its copy only; the others still receive, then the payload goes', async () => {
    await setup();
    await fanout(alice, 'g', group());
    expect((await inject(relay.app, bob2.signer, { method: 'DELETE', url: removalUrl(bob2) })).statusCode).toBe(204);
    expect(await stats()).toMatchObject({ payloads: 1, queuedMessages: 3 });
    for (const d of [alice2, bob, carol]) {
      const [m] = (await inbox(d)).messages;
      expect(m?.['envelope']).toBe(ciphertext('group g'));
      await ack(d, [m?.['seq']]);
    }
    expect(await stats()).toMatchObject({ payloads: 0, queuedMessages: 0 });
    // A retry still naming the removed device is refused like any send: the list changed.
    const next = await fanout(alice, 'next', group());
    expect(json<{ details: { mismatches: unknown[] } }>(next).details.mismatches).toEqual([
      { account: bob.id, missingDevices: [], extraDevices: [2] },
    ]);
  });

  it('spends the same per-recipient byte rate as single sends (each device counts)', async () => {
    const envelopeBytes = 'group g1'.length;
    await setup({ rateLimits: { messageBytesPerMinutePerRecipient: 3 * envelopeBytes } });
    expect((await fanout(alice, 'g1', [bob, bob2])).statusCode).toBe(200);
    const limited = await fanout(alice, 'g2', [bob, bob2]);
    expect([limited.statusCode, json<{ code: string }>(limited).code]).toEqual([429, 'RATE_LIMITED']);
    const single = await inject(relay.app, alice.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: { messages: [envelopeFor(bob, 's', 'group g3'), envelopeFor(bob2, 's', 'group g3')] },
    });
    expect(single.statusCode).toBe(429);
  });

  it('pushes the envelope to a connected recipient over the websocket, like a single send', async () => {
    await setup();
    const got: { id: string; envelope: string; sender: number }[] = [];
    const receiver = relay.client(bob.signer).connect({
      onEnvelope: (e) => void got.push({ id: e.id, envelope: toBase64Url(e.envelope), sender: e.sender.deviceId }),
    });
    receiver.start();
    await receiver.whenOpen();
    await fanout(alice, 'live', group());
    await eventually(() => got.length === 1);
    expect(got).toEqual([{ id: 'live', envelope: ciphertext('group live'), sender: 1 }]);
    // Acknowledged on the socket: bob's reference goes, the payload stays for the others.
    await eventuallyAsync(async () => (await stats()).queuedMessages === 3);
    expect((await stats()).payloads).toBe(1);
    receiver.stop();
  });
});
