// Websocket delivery on a real listening relay: backlog then live pushes,
// "drained", acknowledgement deletes, redelivery of unacknowledged
// envelopes, replacement by a second connection, flow control, and the
// auth and protocol failures. spec/09-relay.md §5.
import { encodeCbor, fromUtf8 } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type ReceivedEnvelope,
  type TestDevice,
  eventually,
  eventuallyAsync,
  fromBase64Url,
  inject,
  isRelayError,
  listeningRelay,
  makeDevice,
  register,
  removalUrl,
  toBase64Url,
} from './support.ts';

let relay: Awaited<ReturnType<typeof listeningRelay>>;
let alice: TestDevice;
let bob: TestDevice;

beforeEach(async () => {
  relay = await listeningRelay({ limits: { maxInFlightPerConnection: 3, maxWebSocketFrameBytes: 4096 } });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
});
afterEach(() => relay.close());

const sendToBob = (id: string) =>
  relay
    .client(alice.signer)
    .send([{ accountKey: bob.account.publicKey, deviceId: 1, id, envelope: new TextEncoder().encode(`env ${id}`) }]);
const stored = async () => (await relay.client(bob.signer).fetchMessages()).messages.map((m) => m.id);

/** A raw websocket with a frame log, for protocol-level checks. */
function rawSocket(): Promise<{ ws: WebSocket; frames: Record<string, unknown>[]; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/websocket`);
  const frames: Record<string, unknown>[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  return new Promise((resolve) => ws.on('open', () => resolve({ ws, frames, closed })));
}

function authFrame(d: TestDevice, challenge: string) {
  const host = new URL(relay.url).host;
  const body = encodeCbor([host, fromBase64Url(challenge), d.account.publicKey, d.device.deviceId]);
  return JSON.stringify({
    type: 'auth',
    account: d.id,
    deviceId: d.device.deviceId,
    signature: toBase64Url(d.signer.signStatement('Parley v1 relay websocket', body)),
  });
}

describe('delivery', () => {
  it('pushes the backlog in order, says drained, then pushes new envelopes as they arrive; acks delete', async () => {
    for (const id of ['a', 'b']) await sendToBob(id);
    const got: string[] = [];
    let drained = 0;
    const receiver = relay.client(bob.signer).connect({
      onEnvelope: (e) => {
        got.push(fromUtf8(e.envelope));
      },
      onDrained: () => {
        drained++;
        got.push('<drained>');
      },
    });
    receiver.start();
    await eventually(() => drained === 1);
    await sendToBob('c');
    await eventually(() => got.length === 4);
    expect(got).toEqual(['env a', 'env b', '<drained>', 'env c']);
    // Acknowledged on the socket: the mailbox empties.
    await eventuallyAsync(async () => (await stored()).length === 0);
    receiver.stop();
  });

  it('redelivers what was not acknowledged on the next connection, and only that', async () => {
    for (const id of ['a', 'b', 'c']) await sendToBob(id);
    const first: string[] = [];
    const r1 = relay.client(bob.signer).connect({
      onEnvelope: (e: ReceivedEnvelope) => {
        first.push(e.id);
        if (e.id === 'b') throw new Error('app could not store it');
      },
      onError: () => {},
    });
    r1.start();
    await eventually(() => first.length === 3);
    await eventually(() => relay.app.relay.hub.size === 1);
    await new Promise((r) => setTimeout(r, 50));
    r1.stop();
    await eventuallyAsync(async () => (await stored()).join() === 'b');

    const second: string[] = [];
    const r2 = relay.client(bob.signer).connect({ onEnvelope: (e) => void second.push(e.id) });
    r2.start();
    await eventually(() => second.length === 1);
    expect(second).toEqual(['b']);
    r2.stop();
  });

  it('a second connection of the same device replaces the first', async () => {
    const errors: unknown[] = [];
    const r1 = relay
      .client(bob.signer)
      .connect({ onEnvelope: () => {}, onError: (e) => errors.push(e) })
      .start();
    await r1.whenOpen();
    const r2 = relay
      .client(bob.signer)
      .connect({ onEnvelope: () => {} })
      .start();
    await r2.whenOpen();
    await eventually(() => r1.state === 'stopped');
    expect(errors.some((e) => isRelayError(e, 'WS_REPLACED'))).toBe(true);
    expect(relay.app.relay.hub.size).toBe(1);
    await sendToBob('x');
    r2.stop();
  });

  it('keeps at most the in-flight window unacknowledged', async () => {
    for (const id of ['1', '2', '3', '4', '5']) await sendToBob(id);
    const { ws, frames } = await rawSocket();
    await eventually(() => frames.length === 1);
    ws.send(authFrame(bob, String(frames[0]?.['challenge'])));
    await eventually(() => frames.filter((f) => f['type'] === 'envelope').length === 3);
    await new Promise((r) => setTimeout(r, 100));
    const envelopes = () => frames.filter((f) => f['type'] === 'envelope');
    expect(envelopes()).toHaveLength(3);
    expect(frames.some((f) => f['type'] === 'drained')).toBe(false);
    ws.send(JSON.stringify({ type: 'ack', seqs: envelopes().map((f) => f['seq']) }));
    await eventually(() => frames.some((f) => f['type'] === 'drained'));
    expect(envelopes().map((f) => f['id'])).toEqual(['1', '2', '3', '4', '5']);
    ws.close();
  });

  it('closes the socket of a removed device (4004)', async () => {
    const { ws, frames, closed } = await rawSocket();
    await eventually(() => frames.length === 1);
    ws.send(authFrame(bob, String(frames[0]?.['challenge'])));
    await eventually(() => frames.some((f) => f['type'] === 'ready'));
    await inject(relay.app, bob.signer, { method: 'DELETE', url: removalUrl(bob) });
    expect((await closed).code).toBe(4004);
  });
});

describe('websocket failures', () => {
  it('a signature by another key closes with 4001', async () => {
    const { ws, frames, closed } = await rawSocket();
    await eventually(() => frames.length === 1);
    const impostor = makeDevice(bob.account, 1);
    ws.send(authFrame(impostor, String(frames[0]?.['challenge'])));
    expect((await closed).code).toBe(4001);
  });

  it('a signature over another challenge closes with 4001 (no replay across connections)', async () => {
    const { ws, frames, closed } = await rawSocket();
    await eventually(() => frames.length === 1);
    ws.send(authFrame(bob, toBase64Url(new Uint8Array(32))));
    expect((await closed).code).toBe(4001);
  });

  it('an unknown device closes with 4001', async () => {
    const { ws, frames, closed } = await rawSocket();
    await eventually(() => frames.length === 1);
    ws.send(authFrame(makeDevice(), String(frames[0]?.['challenge'])));
    expect((await closed).code).toBe(4001);
  });

  it('a frame that is not auth, or not JSON, closes with 4003', async () => {
    for (const frame of ['hello', JSON.stringify({ type: 'ack', seqs: [1] })]) {
      const { ws, closed } = await rawSocket();
      ws.send(frame);
      expect((await closed).code).toBe(4003);
    }
  });

  it('an oversized frame closes with 1009', async () => {
    const { ws, closed } = await rawSocket();
    ws.send('x'.repeat(5000));
    expect((await closed).code).toBe(1009);
  });

  it('the relay shutting down closes sockets with 1001 (clients reconnect)', async () => {
    const { ws, frames, closed } = await rawSocket();
    await eventually(() => frames.length === 1);
    ws.send(authFrame(bob, String(frames[0]?.['challenge'])));
    await eventually(() => frames.some((f) => f['type'] === 'ready'));
    await relay.app.close();
    expect((await closed).code).toBe(1001);
  });
});
