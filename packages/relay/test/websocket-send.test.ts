// Sending over the authenticated websocket (spec/09-relay.md §5.4): only an
// authenticated socket can send, the per-connection counter refuses a
// replayed or skipped frame, the answer comes only after the commit, the
// frame, in-flight and per-device limits hold, and the send checks are the
// HTTP send's. Also: an HTTP send writes its replay record in the send's own
// transaction (one write per send), and a replayed HTTP send is still refused.
import { type CborValue, encodeCbor, fromUtf8, utf8 } from '@parley/core';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { RelayConfigOverrides } from '../src/config.ts';
import type { RelayStorage, StoreMessagesInput, StoreMessagesResult } from '../src/storage/types.ts';
import {
  type TestDevice,
  eventually,
  fromBase64Url,
  inject,
  json,
  listeningRelay,
  makeDevice,
  register,
  signRequest,
  toBase64Url,
} from './support.ts';

type Relay = Awaited<ReturnType<typeof listeningRelay>>;
let relay: Relay | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
});

async function start(config: RelayConfigOverrides = {}, storage?: RelayStorage) {
  relay = await listeningRelay(config, storage ? { storage } : {});
  const alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
  return { relay, alice, bob };
}

interface Frame {
  type: string;
  counter?: number;
  accepted?: number;
  error?: { code: string; statusCode: number; details?: Record<string, unknown> };
}

/** A raw websocket: its text frames, and how it closed. */
function open(r: Relay) {
  const ws = new WebSocket(`${r.url.replace('http', 'ws')}/v1/websocket`);
  const frames: Frame[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame));
  return new Promise<{ ws: WebSocket; frames: Frame[]; closed: typeof closed }>((resolve) =>
    ws.on('open', () => resolve({ ws, frames, closed })),
  );
}

/** An authenticated websocket of `d` (challenge-response, §5.1). */
async function authenticated(r: Relay, d: TestDevice) {
  const socket = await open(r);
  await eventually(() => socket.frames.some((f) => f.type === 'challenge'));
  const challenge = (socket.frames.find((f) => f.type === 'challenge') as unknown as { challenge: string }).challenge;
  const body = encodeCbor([new URL(r.url).host, fromBase64Url(challenge), d.account.publicKey, d.device.deviceId]);
  socket.ws.send(
    JSON.stringify({
      type: 'auth',
      account: d.id,
      deviceId: d.device.deviceId,
      signature: toBase64Url(d.signer.signStatement('Parley v1 relay websocket', body)),
    }),
  );
  await eventually(() => socket.frames.some((f) => f.type === 'ready'));
  return socket;
}

const element = (to: TestDevice, id: string, text = `ciphertext ${id}`): CborValue => [
  to.account.publicKey,
  to.device.deviceId,
  id,
  utf8(text),
  null,
];
const sendFrame = (counter: number, elements: CborValue[], ttl: number | null = null) => encodeCbor(['send', counter, ttl, elements]);
const answerTo = (frames: Frame[], counter: number) =>
  frames.find((f) => (f.type === 'sent' || f.type === 'send-failed') && f.counter === counter);

async function storedFor(r: Relay, d: TestDevice): Promise<string[]> {
  return (await r.client(d.signer).fetchMessages()).messages.map((m) => `${m.id}=${fromUtf8(m.envelope)}`);
}

/** A storage whose sends wait until released, and which says whether the send's write had finished. */
function gatedStorage(): { storage: RelayStorage; release: () => void; committed: () => number; waiting: () => number } {
  const inner = new SqliteStorage({ path: ':memory:' });
  let gate: Promise<void> = new Promise(() => {});
  let open: () => void = () => {};
  gate = new Promise((resolve) => {
    open = resolve;
  });
  let committed = 0;
  let waiting = 0;
  const storage = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'storeMessages') {
        return async (input: StoreMessagesInput): Promise<StoreMessagesResult> => {
          waiting++;
          await gate;
          const result = await target.storeMessages(input);
          committed++;
          return result;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as RelayStorage;
  return { storage, release: () => open(), committed: () => committed, waiting: () => waiting };
}

describe('authentication', () => {
  it('an unauthenticated socket cannot send: a send frame before "ready" closes it (4003) and stores nothing', async () => {
    const { relay: r, bob } = await start();
    const socket = await open(r);
    await eventually(() => socket.frames.some((f) => f.type === 'challenge'));
    socket.ws.send(sendFrame(1, [element(bob, 'sneaky')]), { binary: true });
    expect((await socket.closed).code).toBe(4003);
    expect(await storedFor(r, bob)).toEqual([]);
  });

  it('a send frame right after a bad auth frame is not processed either (4001)', async () => {
    const { relay: r, alice, bob } = await start();
    const socket = await open(r);
    await eventually(() => socket.frames.some((f) => f.type === 'challenge'));
    socket.ws.send(JSON.stringify({ type: 'auth', account: alice.id, deviceId: 1, signature: toBase64Url(new Uint8Array(64)) }));
    socket.ws.send(sendFrame(1, [element(bob, 'sneaky')]), { binary: true });
    expect([4001, 4003]).toContain((await socket.closed).code);
    expect(await storedFor(r, bob)).toEqual([]);
  });

  it('an authenticated device sends: "sent" under the frame counter, stored as from that device and pushed', async () => {
    const { relay: r, alice, bob } = await start();
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'm1', 'hello')]), { binary: true });
    await eventually(() => answerTo(socket.frames, 1) !== undefined);
    expect(answerTo(socket.frames, 1)).toEqual({ type: 'sent', counter: 1, accepted: 1 });
    const got = (await r.client(bob.signer).fetchMessages()).messages;
    expect(got.map((m) => [m.id, fromUtf8(m.envelope), toBase64Url(m.sender.accountKey), m.sender.deviceId])).toEqual([
      ['m1', 'hello', alice.id, 1],
    ]);
    socket.ws.close();
  });

  it('"ready" names the send limits a client must keep (frame bytes, envelopes per frame, frames in flight)', async () => {
    const { relay: r, alice } = await start({ limits: { maxEnvelopesPerSend: 100, maxInFlightSendsPerConnection: 4 } });
    const socket = await authenticated(r, alice);
    expect(socket.frames.find((f) => f.type === 'ready')).toEqual({
      type: 'ready',
      // The push format this connection gets (§5.2.2): JSON, as the auth frame named none.
      push: 'json',
      sends: { maxFrameBytes: 64 * 1024, maxEnvelopes: 100, maxInFlight: 4 },
    });
    socket.ws.close();
  });
});

describe('replay protection: the per-connection counter', () => {
  it('a repeated counter is refused (AUTH_REPLAYED), closes the connection, and stores nothing more', async () => {
    const { relay: r, alice, bob } = await start();
    const socket = await authenticated(r, alice);
    const frame = sendFrame(1, [element(bob, 'once')]);
    socket.ws.send(frame, { binary: true });
    await eventually(() => answerTo(socket.frames, 1) !== undefined);
    // The very same bytes again: a replayed frame.
    socket.ws.send(frame, { binary: true });
    // And a new id under the used counter: refused too (the counter, not the id, is checked first).
    socket.ws.send(sendFrame(1, [element(bob, 'other')]), { binary: true });
    const closed = await socket.closed;
    expect(closed.code).toBe(4003);
    const answers = socket.frames.filter((f) => f.counter === 1);
    expect(answers[0]?.type).toBe('sent');
    expect(answers[1]?.type).toBe('send-failed');
    expect(answers[1]?.error?.code).toBe('AUTH_REPLAYED');
    expect(await storedFor(r, bob)).toEqual(['once=ciphertext once']);
  });

  it('a skipped counter is refused (MALFORMED) and closes the connection', async () => {
    const { relay: r, alice, bob } = await start();
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(2, [element(bob, 'early')]), { binary: true });
    expect((await socket.closed).code).toBe(4003);
    expect(answerTo(socket.frames, 2)?.error?.code).toBe('MALFORMED');
    expect(await storedFor(r, bob)).toEqual([]);
  });

  it('a new connection starts again at 1, and a resent id is stored once (idempotent, as over HTTP)', async () => {
    const { relay: r, alice, bob } = await start();
    const first = await authenticated(r, alice);
    first.ws.send(sendFrame(1, [element(bob, 'same')]), { binary: true });
    await eventually(() => answerTo(first.frames, 1) !== undefined);
    first.ws.close();
    await first.closed;
    const second = await authenticated(r, alice);
    second.ws.send(sendFrame(1, [element(bob, 'same')]), { binary: true });
    await eventually(() => answerTo(second.frames, 1) !== undefined);
    expect(answerTo(second.frames, 1)).toEqual({ type: 'sent', counter: 1, accepted: 1 });
    expect(await storedFor(r, bob)).toEqual(['same=ciphertext same']);
    second.ws.close();
  });
});

describe('acknowledgement only after the commit', () => {
  it('"sent" is not answered while the write is pending, and is answered once it committed', async () => {
    const gated = gatedStorage();
    const { relay: r, alice, bob } = await start({}, gated.storage);
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'durable')]), { binary: true });
    await eventually(() => gated.waiting() === 1);
    // The write has not committed: give the relay every chance to answer early.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answerTo(socket.frames, 1)).toBeUndefined();
    gated.release();
    await eventually(() => answerTo(socket.frames, 1) !== undefined);
    expect(gated.committed()).toBe(1);
    expect(answerTo(socket.frames, 1)?.type).toBe('sent');
    socket.ws.close();
  });
});

describe('limits', () => {
  it('a frame above maxWebSocketFrameBytes closes the connection (1009) and stores nothing', async () => {
    const { relay: r, alice, bob } = await start({ limits: { maxWebSocketFrameBytes: 4096 } });
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'big', 'x'.repeat(5000))]), { binary: true });
    expect((await socket.closed).code).toBe(1009);
    expect(await storedFor(r, bob)).toEqual([]);
  });

  it('past maxInFlightSendsPerConnection unanswered frames, a frame is refused (RATE_LIMITED) and stores nothing', async () => {
    const gated = gatedStorage();
    const { relay: r, alice, bob } = await start({ limits: { maxInFlightSendsPerConnection: 2 } }, gated.storage);
    const socket = await authenticated(r, alice);
    for (let c = 1; c <= 3; c++) socket.ws.send(sendFrame(c, [element(bob, `f${c}`)]), { binary: true });
    await eventually(() => answerTo(socket.frames, 3) !== undefined);
    const refused = answerTo(socket.frames, 3);
    expect(refused?.error?.code).toBe('RATE_LIMITED');
    expect(refused?.error?.details).toMatchObject({ limit: 2 });
    gated.release();
    await eventually(() => answerTo(socket.frames, 1) !== undefined && answerTo(socket.frames, 2) !== undefined);
    expect(await storedFor(r, bob)).toEqual(['f1=ciphertext f1', 'f2=ciphertext f2']);
    // The connection goes on: the window is open again.
    socket.ws.send(sendFrame(4, [element(bob, 'f4')]), { binary: true });
    await eventually(() => answerTo(socket.frames, 4) !== undefined);
    expect(answerTo(socket.frames, 4)?.type).toBe('sent');
    socket.ws.close();
  });

  it('past websocketSendsPerMinutePerDevice frames, RATE_LIMITED with retryAfterSeconds, also on a new connection', async () => {
    const { relay: r, alice, bob } = await start({ rateLimits: { websocketSendsPerMinutePerDevice: 2 } });
    const socket = await authenticated(r, alice);
    for (let c = 1; c <= 3; c++) socket.ws.send(sendFrame(c, [element(bob, `r${c}`)]), { binary: true });
    await eventually(() => [1, 2, 3].every((c) => answerTo(socket.frames, c) !== undefined));
    expect(answerTo(socket.frames, 3)?.error?.code).toBe('RATE_LIMITED');
    expect(answerTo(socket.frames, 3)?.error?.details?.['retryAfterSeconds']).toBeGreaterThan(0);
    socket.ws.close();
    await socket.closed;
    // The budget is the device's, not the connection's.
    const again = await authenticated(r, alice);
    again.ws.send(sendFrame(1, [element(bob, 'r4')]), { binary: true });
    await eventually(() => answerTo(again.frames, 1) !== undefined);
    expect(answerTo(again.frames, 1)?.error?.code).toBe('RATE_LIMITED');
    expect(await storedFor(r, bob)).toEqual(['r1=ciphertext r1', 'r2=ciphertext r2']);
    again.ws.close();
  });

  it('more elements than maxEnvelopesPerSend: TOO_MANY_ENVELOPES under the counter; the connection goes on', async () => {
    const { relay: r, alice, bob } = await start({ limits: { maxEnvelopesPerSend: 1 } });
    const carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(r.app, carol);
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'a'), element(carol, 'b')]), { binary: true });
    socket.ws.send(sendFrame(2, [element(bob, 'c')]), { binary: true });
    await eventually(() => answerTo(socket.frames, 2) !== undefined);
    expect(answerTo(socket.frames, 1)?.error?.code).toBe('TOO_MANY_ENVELOPES');
    expect(answerTo(socket.frames, 2)?.type).toBe('sent');
    socket.ws.close();
  });
});

describe('the same send checks as HTTP', () => {
  it('missing devices: MISMATCHED_DEVICES with the same details, nothing stored', async () => {
    const { relay: r, alice, bob } = await start();
    const bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(r.app, bob2);
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'only-one')]), { binary: true });
    await eventually(() => answerTo(socket.frames, 1) !== undefined);
    const failed = answerTo(socket.frames, 1);
    expect(failed?.error?.code).toBe('MISMATCHED_DEVICES');
    expect(failed?.error?.statusCode).toBe(409);
    expect(failed?.error?.details).toEqual({ mismatches: [{ account: bob.id, missingDevices: [2], extraDevices: [] }] });
    expect(await storedFor(r, bob)).toEqual([]);
    socket.ws.close();
  });

  it('two envelopes for one device, and an empty envelope: MALFORMED under the counter', async () => {
    const { relay: r, alice, bob } = await start();
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'x'), element(bob, 'y')]), { binary: true });
    socket.ws.send(sendFrame(2, [[bob.account.publicKey, 1, 'empty', new Uint8Array(0), null]]), { binary: true });
    await eventually(() => answerTo(socket.frames, 2) !== undefined);
    expect(answerTo(socket.frames, 1)?.error?.code).toBe('MALFORMED');
    expect(answerTo(socket.frames, 2)?.error?.code).toBe('MALFORMED');
    expect(await storedFor(r, bob)).toEqual([]);
    socket.ws.close();
  });

  it('a frame that is not canonical CBOR of the send shape closes the connection (4003)', async () => {
    const { relay: r, alice } = await start();
    for (const bad of [
      Uint8Array.of(0x9f, 0x64, 0x73, 0x65, 0x6e, 0x64, 0xff), // indefinite-length array
      encodeCbor(['send', 0, null, []]), // counter 0
      encodeCbor(['sned', 1, null, []]),
      utf8('not cbor at all'),
      // Read in one pass since issue 15 (core's readCbor): non-canonical anywhere in the frame is still the whole frame's fault.
      Uint8Array.of(0x84, 0x64, 0x73, 0x65, 0x6e, 0x64, 0x18, 0x01, 0xf6, 0x80), // counter 1 in a one-byte form
      Uint8Array.of(...encodeCbor(['send', 1, null, []]), 0x00), // trailing bytes
      Uint8Array.of(
        ...[0x84, 0x64, 0x73, 0x65, 0x6e, 0x64, 0x01, 0xf6, 0x81, 0x85],
        ...encodeCbor(new Uint8Array(32).fill(1)),
        0x01,
        ...encodeCbor('id1'),
        ...[0x58, 0x02, 0x61, 0x62], // a 2-byte envelope with a one-byte length
        0xf6,
      ),
    ]) {
      const socket = await authenticated(r, alice);
      socket.ws.send(bad, { binary: true });
      expect((await socket.closed).code).toBe(4003);
    }
  });
});

describe('HTTP sends: one transaction per send', () => {
  it('the replay record and the envelopes are one write, and a replayed send is still refused', async () => {
    let writes = 0;
    const storage = new SqliteStorage({ path: ':memory:', observeBatch: (n) => (writes += n) });
    const { relay: r, alice, bob } = await start({}, storage);
    const request = {
      method: 'POST' as const,
      url: '/v1/messages',
      json: { messages: [{ account: bob.id, deviceId: 1, id: 'h1', envelope: toBase64Url(utf8('over http')) }] },
    };
    const before = writes;
    const first = await inject(r.app, alice.signer, request);
    expect(first.statusCode).toBe(200);
    expect(writes - before).toBe(1);

    // The very same signed request again (same nonce): 401 AUTH_REPLAYED, stored once.
    const { authorization, raw } = signRequest(alice.signer, { ...request, nonce: new Uint8Array(16).fill(7) }, r.app.relay.now());
    const replayed = () =>
      r.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { host: 'relay.test', authorization, 'content-type': 'application/json' },
        payload: Buffer.from(raw as Uint8Array),
      });
    expect((await replayed()).statusCode).toBe(200);
    const again = await replayed();
    expect(again.statusCode).toBe(401);
    expect(json(again).code).toBe('AUTH_REPLAYED');
    expect(await storedFor(r, bob)).toEqual(['h1=over http']);
  });

  it('a send refused by the device check still consumes its nonce: its replay is AUTH_REPLAYED', async () => {
    const { relay: r, alice, bob } = await start();
    const bob2 = makeDevice(bob.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(r.app, bob2);
    const request = {
      method: 'POST' as const,
      url: '/v1/messages',
      json: { messages: [{ account: bob.id, deviceId: 1, id: 'h2', envelope: toBase64Url(utf8('x')) }] },
      nonce: new Uint8Array(16).fill(9),
    };
    const { authorization, raw } = signRequest(alice.signer, request, r.app.relay.now());
    const send = () =>
      r.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { host: 'relay.test', authorization, 'content-type': 'application/json' },
        payload: Buffer.from(raw as Uint8Array),
      });
    expect((await send()).statusCode).toBe(409);
    const again = await send();
    expect(again.statusCode).toBe(401);
    expect(json(again).code).toBe('AUTH_REPLAYED');
  });
});
