// What one websocket frame can cost the relay before any budget applies (issue 15, hostile input;
// spec/09-relay.md §5.1 and §5.4): against the real relay on 127.0.0.1, bounded in count.
// - A send frame is read head first (tag, counter, TTL, the elements' count): the counter, the in-flight
//   bound and the rate are decided before the elements are decoded, and the elements are decoded with an
//   item budget (what `count` legal elements can hold): a frame past it is closed and counted.
// - A device that goes on sending after being refused for rate is closed after a bounded number of refusals.
// - A text frame (the auth frame before "ready", a JSON ack after) is refused for its length before JSON.parse.
// - Binary ack frames are decoded with the item budget of a legal ack frame.
import { type CborValue, encodeCbor, fromUtf8, utf8 } from '@parley/core';
import type * as core from '@parley/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { MAX_ACKS_PER_REQUEST } from '../src/schemas.ts';
import type { RelayConfigOverrides } from '../src/config.ts';
import { type TestDevice, eventually, fromBase64Url, listeningRelay, makeDevice, register, toBase64Url } from './support.ts';

/** Every readCbor call of the relay in this file: the item budget it passed, and how it ended. */
const reads: { what: string; maxItems: number | undefined; code: string | undefined }[] = [];
vi.mock('@parley/core', async (importOriginal) => {
  const original = await importOriginal<typeof core>();
  return {
    ...original,
    readCbor: (bytes: Uint8Array, what: string, maxBytes: number, options?: { maxItems?: number }) => {
      const record = { what, maxItems: options?.maxItems, code: undefined as string | undefined };
      reads.push(record);
      try {
        return (original.readCbor as (...a: unknown[]) => unknown)(bytes, what, maxBytes, options);
      } catch (error) {
        record.code = (error as { code?: string }).code;
        throw error;
      }
    },
  };
});

type Relay = Awaited<ReturnType<typeof listeningRelay>>;
let relay: Relay | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  reads.length = 0;
});

async function start(config: RelayConfigOverrides = {}) {
  relay = await listeningRelay(config);
  const alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  for (const d of [alice, bob, carol]) await register(relay.app, d);
  return { relay, alice, bob, carol };
}

interface Frame {
  type: string;
  counter?: number;
  error?: { code: string; details?: Record<string, unknown> };
}

function open(r: Relay) {
  const ws = new WebSocket(`${r.url.replace('http', 'ws')}/v1/websocket`);
  const frames: Frame[] = [];
  // Bounded: a connection the relay leaves open shows as code 0 after 5 s, not as a hung test.
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    setTimeout(() => resolve({ code: 0, reason: 'still open after 5 s' }), 5000).unref();
  });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) frames.push(JSON.parse(data.toString()) as Frame);
  });
  return new Promise<{ ws: WebSocket; frames: Frame[]; closed: typeof closed }>((resolve) =>
    ws.on('open', () => resolve({ ws, frames, closed })),
  );
}

function authFrame(r: Relay, d: TestDevice, challenge: string, extra: Record<string, unknown> = {}): string {
  const body = encodeCbor([new URL(r.url).host, fromBase64Url(challenge), d.account.publicKey, d.device.deviceId]);
  return JSON.stringify({
    type: 'auth',
    account: d.id,
    deviceId: d.device.deviceId,
    signature: toBase64Url(d.signer.signStatement('Parley v1 relay websocket', body)),
    ...extra,
  });
}

async function challengeOf(socket: Awaited<ReturnType<typeof open>>): Promise<string> {
  await eventually(() => socket.frames.some((f) => f.type === 'challenge'));
  return (socket.frames.find((f) => f.type === 'challenge') as unknown as { challenge: string }).challenge;
}

async function authenticated(r: Relay, d: TestDevice) {
  const socket = await open(r);
  socket.ws.send(authFrame(r, d, await challengeOf(socket)));
  await eventually(() => socket.frames.some((f) => f.type === 'ready'));
  return socket;
}

const element = (to: TestDevice, id: string): CborValue => [to.account.publicKey, to.device.deviceId, id, utf8(`ciphertext ${id}`), null];
const sendFrame = (counter: number, elements: CborValue[]) => encodeCbor(['send', counter, null, elements]);
const answerTo = (frames: Frame[], counter: number) =>
  frames.find((f) => (f.type === 'sent' || f.type === 'send-failed') && f.counter === counter);

async function counter(r: Relay, name: 'websocketClientErrors' | 'sendsRejected', code: string): Promise<number> {
  return (await r.app.relay.metrics[name].get()).values.find((v) => v.labels['code'] === code)?.value ?? 0;
}

async function stored(r: Relay, d: TestDevice): Promise<string[]> {
  return (await r.client(d.signer).fetchMessages()).messages.map((m) => `${m.id}=${fromUtf8(m.envelope)}`);
}

/** Bob sends one envelope to carol over his own socket: the relay serves him while alice's frames are refused. */
async function bobIsServed(r: Relay, bob: TestDevice, carol: TestDevice, id: string): Promise<void> {
  const socket = await authenticated(r, bob);
  socket.ws.send(sendFrame(1, [element(carol, id)]), { binary: true });
  await eventually(() => answerTo(socket.frames, 1) !== undefined);
  expect(answerTo(socket.frames, 1)?.type).toBe('sent');
  socket.ws.close();
}

describe('send frames: elements decoded within what a legal frame can hold', () => {
  it('one element of 30,000 empty byte strings (a legal count, 30,001 items): closed 4003, counted, never built', async () => {
    const { relay: r, alice, bob, carol } = await start();
    const socket = await authenticated(r, alice);
    const hostile = sendFrame(1, [new Array(30_000).fill(new Uint8Array(0))]);
    expect(hostile.length).toBeLessThan(r.app.relay.config.limits.maxWebSocketFrameBytes);
    socket.ws.send(hostile, { binary: true });
    await bobIsServed(r, bob, carol, 'meanwhile');
    expect((await socket.closed).code).toBe(4003);
    expect(answerTo(socket.frames, 1)).toBeUndefined();
    expect(await counter(r, 'sendsRejected', 'OVERSIZED')).toBe(1);
    // One element can hold 7 items (the array and its 6 fields): the decoder was told so, and stopped there.
    const elementsRead = reads.filter((x) => x.what.startsWith('send frame'));
    // (and bob's legal frame, decoded with the same budget, was not refused)
    expect(elementsRead.map((x) => [x.maxItems, x.code]).sort()).toEqual([
      [1 + 7, undefined],
      [1 + 7, 'OVERSIZED'],
    ]);
    expect(await stored(r, carol)).toEqual(['meanwhile=ciphertext meanwhile']);
  });

  it('more elements than maxEnvelopesPerSend: TOO_MANY_ENVELOPES from the head alone (nothing decoded); the connection goes on', async () => {
    const { relay: r, alice, bob } = await start({ limits: { maxEnvelopesPerSend: 4 } });
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, new Array(20_000).fill([])), { binary: true });
    socket.ws.send(sendFrame(2, [element(bob, 'ok')]), { binary: true });
    await eventually(() => answerTo(socket.frames, 2) !== undefined);
    expect(answerTo(socket.frames, 1)?.error?.code).toBe('TOO_MANY_ENVELOPES');
    expect(answerTo(socket.frames, 2)?.type).toBe('sent');
    // Only frame 2's elements were decoded, with a budget of its one element.
    expect(reads.filter((x) => x.what.startsWith('send frame')).map((x) => [x.maxItems, x.code])).toEqual([[1 + 7, undefined]]);
    socket.ws.close();
  });

  it('a list head claiming more elements than the frame has bytes: a truncated frame, closed 4003 unanswered, no rate taken', async () => {
    const { relay: r, alice } = await start();
    const socket = await authenticated(r, alice);
    // ["send", 1, null, array of 2^32-1 elements] and nothing after the head.
    socket.ws.send(Uint8Array.of(0x84, 0x64, 0x73, 0x65, 0x6e, 0x64, 0x01, 0xf6, 0x9a, 0xff, 0xff, 0xff, 0xff), { binary: true });
    expect((await socket.closed).code).toBe(4003);
    expect(answerTo(socket.frames, 1)).toBeUndefined();
    expect(await counter(r, 'sendsRejected', 'MALFORMED')).toBe(1);
  });
});

describe('frames past the rate', () => {
  it('a frame past the rate is refused before its elements are read (RATE_LIMITED, even with broken elements)', async () => {
    const { relay: r, alice, bob } = await start({ rateLimits: { websocketSendsPerMinutePerDevice: 1 } });
    const socket = await authenticated(r, alice);
    socket.ws.send(sendFrame(1, [element(bob, 'r1')]), { binary: true });
    // Frame 2: a legal head, then an element with a non-canonical length (closed 4003 if it were decoded).
    const broken = Uint8Array.of(
      ...[0x84, 0x64, 0x73, 0x65, 0x6e, 0x64, 0x02, 0xf6, 0x81, 0x85],
      ...encodeCbor(bob.account.publicKey),
      0x01,
      ...encodeCbor('id2'),
      ...[0x58, 0x02, 0x61, 0x62],
      0xf6,
    );
    socket.ws.send(broken, { binary: true });
    await eventually(() => answerTo(socket.frames, 2) !== undefined);
    expect(answerTo(socket.frames, 2)?.error?.code).toBe('RATE_LIMITED');
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    socket.ws.close();
  });

  it('a device that goes on sending past the rate is closed after 2 x maxInFlight refusals in a row, counted; others are served', async () => {
    const maxInFlight = 4;
    const {
      relay: r,
      alice,
      bob,
      carol,
    } = await start({
      rateLimits: { websocketSendsPerMinutePerDevice: 2 },
      limits: { maxInFlightSendsPerConnection: maxInFlight },
    });
    const socket = await authenticated(r, alice);
    const flood = 200;
    for (let c = 1; c <= flood; c++) socket.ws.send(sendFrame(c, [element(bob, `f${c}`)]), { binary: true });
    expect((await socket.closed).code).toBe(4003);
    const refused = socket.frames.filter((f) => f.type === 'send-failed' && f.error?.code === 'RATE_LIMITED');
    expect(refused.length).toBe(2 * maxInFlight);
    // Nothing past the closing frame was answered (the first two may close before their commit answers).
    const answered = socket.frames.filter((f) => f.type === 'send-failed' || f.type === 'sent').map((f) => f.counter as number);
    expect(Math.max(...answered)).toBe(2 + 2 * maxInFlight);
    expect(await counter(r, 'websocketClientErrors', 'SEND_RATE_FLOOD')).toBe(1);
    await bobIsServed(r, bob, carol, 'meanwhile');
  });

  it('refusals that are not in a row do not close: a device that waits after RATE_LIMITED keeps its connection', async () => {
    const {
      relay: r,
      alice,
      bob,
    } = await start({
      rateLimits: { websocketSendsPerMinutePerDevice: 60_000 },
      limits: { maxInFlightSendsPerConnection: 1 },
    });
    const socket = await authenticated(r, alice);
    let c = 0;
    // Each round: frames past the in-flight bound (refused), then the device waits for its answer.
    for (let round = 0; round < 5; round++) {
      const first = ++c;
      socket.ws.send(sendFrame(first, [element(bob, `w${first}`)]), { binary: true });
      socket.ws.send(sendFrame(++c, [element(bob, `w${c}`)]), { binary: true });
      await eventually(() => answerTo(socket.frames, first) !== undefined && answerTo(socket.frames, c) !== undefined);
    }
    expect(socket.frames.filter((f) => f.type === 'sent').length).toBe(5);
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    socket.ws.close();
  });
});

describe('text frames are refused for their length before they are parsed', () => {
  it('an auth frame (before "ready", unauthenticated) longer than MAX_AUTH_FRAME_BYTES: closed 4003, counted FRAME_TOO_LARGE', async () => {
    const { relay: r, alice, bob, carol } = await start();
    const socket = await open(r);
    const challenge = await challengeOf(socket);
    // Valid JSON of the auth shape, padded with 60,000 bytes of empty arrays.
    socket.ws.send(authFrame(r, alice, challenge, { pad: new Array(20_000).fill([]) }));
    await bobIsServed(r, bob, carol, 'meanwhile');
    expect((await socket.closed).code).toBe(4003);
    expect(await counter(r, 'websocketClientErrors', 'FRAME_TOO_LARGE')).toBe(1);
    expect(await counter(r, 'websocketClientErrors', 'BAD_AUTH_FRAME')).toBe(0);
  });

  it('a JSON ack frame longer than the largest legal one: closed 4003, counted FRAME_TOO_LARGE; a legal maximal one is taken', async () => {
    const { relay: r, alice } = await start();
    const legal = await authenticated(r, alice);
    const seqs = Array.from({ length: MAX_ACKS_PER_REQUEST }, (_, i) => Number.MAX_SAFE_INTEGER - i);
    legal.ws.send(JSON.stringify({ type: 'ack', seqs }));
    const hostile = await authenticated(r, alice);
    expect((await legal.closed).code).toBe(4002); // replaced by the second connection, not refused for its size
    hostile.ws.send(JSON.stringify({ type: 'ack', seqs: [1], pad: ' '.repeat(40_000) }));
    expect((await hostile.closed).code).toBe(4003);
    expect(await counter(r, 'websocketClientErrors', 'FRAME_TOO_LARGE')).toBe(1);
    expect(await counter(r, 'websocketClientErrors', 'BAD_ACK_FRAME')).toBe(0);
  });
});

describe('binary ack frames', () => {
  it('are decoded with the item budget of a legal ack frame (the array, "ack", the list, MAX_ACKS_PER_REQUEST seqs)', async () => {
    const { relay: r, alice } = await start();
    const socket = await open(r);
    socket.ws.send(authFrame(r, alice, await challengeOf(socket), { push: 'cbor' }));
    await eventually(() => socket.frames.some((f) => f.type === 'ready'));
    socket.ws.send(encodeCbor(['ack', new Array(MAX_ACKS_PER_REQUEST + 1).fill(new Uint8Array(0))]), { binary: true });
    expect((await socket.closed).code).toBe(4003);
    const acks = reads.filter((x) => x.what === 'ack frame');
    expect(acks.map((x) => [x.maxItems, x.code])).toEqual([[3 + MAX_ACKS_PER_REQUEST, 'OVERSIZED']]);
  });
});
