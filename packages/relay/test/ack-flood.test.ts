// An acknowledgement flood (spec/09-relay.md §5.2, "one delete per connection"): a device that
// sends ack frames as fast as its socket allows, 1,000 seqs each (most of them for envelopes that
// do not exist), must not put more than MAX_ACK_DELETES_PER_CONNECTION deletes into the relay's
// group commit at once, on a real relay on loopback. Meanwhile another device's send is still
// delivered, the flooder's real envelopes are still deleted (nothing lost), nothing it acknowledged
// is pushed again, its own send frame behind the burst is answered, and its connection stays open
// (acknowledging a lot is no protocol error: the relay holds reading, backpressure through TCP).
// Acks that keep coming past the held socket close it with 4003 ACK_FLOOD.
import { encodeCbor, utf8 } from '@parley/core';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MAX_ACK_DELETES_PER_CONNECTION, MAX_QUEUED_ACK_SEQS } from '../src/delivery/mailbox-pump.ts';
import { u64 } from '../src/delivery/push-frame.ts';
import { MAX_ACKS_PER_REQUEST } from '../src/schemas.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress } from '../src/storage/types.ts';
import {
  type TestDevice,
  envelopeFor,
  eventually,
  fromBase64Url,
  inject,
  listeningRelay,
  makeDevice,
  register,
  websocketAuthFrame,
} from './support.ts';

/** Ack frames in the burst: 300,000 seqs, 2.7 MB of binary frames (a few hundred ms of deletes). */
const FRAMES = 300;
/** Envelopes really stored for the flooder, acknowledged in one frame in the middle of the burst. */
const REAL = 20;
/** Seqs no envelope has: far above anything this test stores. */
const JUNK_BASE = 10_000_000;

type Relay = Awaited<ReturnType<typeof listeningRelay>>;
let relay: Relay | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
});

/** Deletes of one device's acknowledged seqs handed to storage: how many at once, at most, and how many done. */
interface DeleteCount {
  active: number;
  most: number;
  calls: number;
  done: number;
  seqs: number;
}

/** A SQLite storage that counts the deletes of `target.address`'s device while handing every call through. */
function countingStorage(target: { address?: DeviceAddress }) {
  const storage = new SqliteStorage({ path: ':memory:' });
  const count: DeleteCount = { active: 0, most: 0, calls: 0, done: 0, seqs: 0 };
  const ackMessages = storage.ackMessages.bind(storage);
  storage.ackMessages = async (recipient, seqs) => {
    const t = target.address;
    if (!t || t.deviceId !== recipient.deviceId || Buffer.compare(t.accountKey, recipient.accountKey) !== 0) {
      return ackMessages(recipient, seqs);
    }
    count.calls++;
    count.active++;
    count.most = Math.max(count.most, count.active);
    try {
      return await ackMessages(recipient, seqs);
    } finally {
      count.active--;
      count.done++;
      count.seqs += seqs.length;
    }
  };
  return { storage, count };
}

/** A relay on loopback whose storage counts the flooder's deletes; the flooder, a sender and another device, registered. */
async function setup() {
  const target: { address?: DeviceAddress } = {};
  const { storage, count } = countingStorage(target);
  const r = await listeningRelay({}, { storage });
  relay = r;
  const [flooder, sender, other] = [makeDevice(), makeDevice(), makeDevice()];
  for (const d of [flooder, sender, other]) await register(r.app, d);
  target.address = { accountKey: flooder.account.publicKey, deviceId: flooder.device.deviceId };
  return { r, count, flooder, sender, other };
}

interface Socket {
  ws: WebSocket;
  /** Seqs of the envelopes pushed, from JSON or binary frames, in arrival order. */
  pushed: number[];
  /** Answers to send frames (§5.4): `sent` or `send-failed`, by counter. */
  answers: { type: string; counter?: number }[];
  closed: { code: number } | undefined;
}

/** Reads a pushed envelope's seq from a binary frame: ["envelope", u64 seq, ...]; the u64 after `0x82..0x89 "envelope"`. */
function binarySeq(frame: Buffer): number {
  // array(9) head, "envelope" (1 + 8 bytes), then the seq as bstr(8): 1 + 9 + 1 = 11.
  expect(frame.subarray(1, 10).toString('latin1')).toBe('henvelope');
  expect(frame[10]).toBe(0x48);
  return Number(frame.readBigUInt64BE(11));
}

async function connect(r: Relay, d: TestDevice, push: 'json' | 'cbor'): Promise<Socket> {
  const ws = new WebSocket(`${r.url.replace('http', 'ws')}/v1/websocket`);
  const s: Socket = { ws, pushed: [], answers: [], closed: undefined };
  let challenge: string | undefined;
  let ready = false;
  ws.on('close', (code) => {
    s.closed = { code };
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      s.pushed.push(binarySeq(data as Buffer));
      return;
    }
    const frame = JSON.parse(data.toString()) as { type: string; challenge?: string; seq?: number; counter?: number };
    if (frame.type === 'sent' || frame.type === 'send-failed') s.answers.push(frame);
    if (frame.type === 'challenge') challenge = frame.challenge;
    if (frame.type === 'ready') ready = true;
    if (frame.type === 'envelope') s.pushed.push(frame.seq as number);
  });
  await eventually(() => challenge !== undefined);
  ws.send(websocketAuthFrame(new URL(r.url).host, fromBase64Url(challenge as string), d.signer, { push }));
  await eventually(() => ready);
  return s;
}

let sent = 0;
async function send(r: Relay, from: TestDevice, to: TestDevice): Promise<void> {
  const id = `m${++sent}`;
  const res = await inject(r.app, from.signer, { method: 'POST', url: '/v1/messages', json: { messages: [envelopeFor(to, id)] } });
  expect(res.statusCode, res.body).toBe(200);
}

async function counterValue(r: Relay, name: 'websocketAckPauses' | 'websocketClientErrors', code?: string): Promise<number> {
  const { values } = await r.app.relay.metrics[name].get();
  return values.filter((v) => code === undefined || v.labels['code'] === code).reduce((n, v) => n + v.value, 0);
}

const ackFrames = {
  binary: (seqs: number[]) => encodeCbor(['ack', seqs.map((s) => u64(s))]),
  json: (seqs: number[]) => JSON.stringify({ type: 'ack', seqs }),
};

describe.each([
  { kind: 'binary', push: 'cbor' },
  { kind: 'json', push: 'json' },
] as const)('an acknowledgement flood of $kind ack frames', ({ kind, push }) => {
  it(`keeps at most ${MAX_ACK_DELETES_PER_CONNECTION} delete of the connection at once; others are served, and nothing is lost or pushed twice`, async () => {
    const { r, count, flooder, sender, other } = await setup();

    for (let i = 0; i < REAL; i++) await send(r, sender, flooder);
    const f = await connect(r, flooder, push);
    const o = await connect(r, other, 'json');
    await eventually(() => f.pushed.length === REAL);
    const real = [...f.pushed];

    // The burst: every frame is full, all but one for seqs nothing has; the middle one also
    // acknowledges the real envelopes.
    for (let i = 0; i < FRAMES; i++) {
      const seqs = Array.from({ length: MAX_ACKS_PER_REQUEST }, (_, k) => JUNK_BASE + i * MAX_ACKS_PER_REQUEST + k);
      if (i === FRAMES / 2) seqs.splice(0, REAL, ...real);
      f.ws.send(ackFrames[kind](seqs));
    }
    // Its own send frame, behind the whole burst: it waits with the acks, and is then answered.
    f.ws.send(encodeCbor(['send', 1, null, [[other.account.publicKey, other.device.deviceId, 'from-flooder', utf8('hi'), null]]]));
    await eventually(() => count.calls > 0);

    // Another device's send is delivered while the flood lasts.
    await send(r, sender, other);
    await eventually(() => o.pushed.length >= 1, 10_000);
    const deletesDoneAtDelivery = count.done;

    await eventually(() => count.seqs === FRAMES * MAX_ACKS_PER_REQUEST, 20_000);
    expect(count.most).toBeLessThanOrEqual(MAX_ACK_DELETES_PER_CONNECTION);
    // The flood waited in TCP: reading was held (and restarted, or nothing more would have come).
    expect(await counterValue(r, 'websocketAckPauses')).toBeGreaterThan(0);
    // The flood had not ended when the other device's envelope was delivered.
    expect(deletesDoneAtDelivery).toBeLessThan(count.calls);
    await eventually(() => f.answers.length === 1 && o.pushed.length === 2);
    expect(f.answers[0]).toMatchObject({ type: 'sent', counter: 1 });

    // Nothing lost: the acknowledged envelopes are gone from the mailbox ...
    const left = await inject(r.app, flooder.signer, { method: 'GET', url: '/v1/messages' });
    expect((JSON.parse(left.body) as { messages: unknown[] }).messages).toEqual([]);
    // ... and nothing pushed twice: the next envelope is the only push after them.
    await send(r, sender, flooder);
    await eventually(() => f.pushed.length === REAL + 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(f.pushed).toHaveLength(REAL + 1);
    expect(new Set(f.pushed).size).toBe(REAL + 1);
    expect(f.closed).toBeUndefined();
    f.ws.close();
    o.ws.close();
  });
});

describe('acknowledgements that do not stop at a held socket', () => {
  it('close the connection with 4003 ACK_FLOOD, counted, past MAX_QUEUED_ACK_SEQS waiting; others are served', async () => {
    const { r, count, flooder, sender, other } = await setup();
    const f = await connect(r, flooder, 'json');
    const o = await connect(r, other, 'json');

    // A one-digit seq repeated: 2 bytes a seq, so one 64 KiB read of the socket holds ~32 full
    // frames (32,000 seqs), past MAX_QUEUED_ACK_SEQS at once. Enough frames that the socket buffers
    // are full when reading restarts, so such a read comes (the first ones may be shorter).
    const frame = ackFrames.json(Array.from({ length: MAX_ACKS_PER_REQUEST }, () => 1));
    const frames = 100;
    for (let i = 0; i < frames; i++) f.ws.send(frame);
    await eventually(() => f.closed !== undefined, 10_000);
    expect(f.closed?.code).toBe(4003);
    expect(await counterValue(r, 'websocketClientErrors', 'ACK_FLOOD')).toBe(1);
    expect(count.most).toBeLessThanOrEqual(MAX_ACK_DELETES_PER_CONNECTION);
    // What it had queued before is deleted (also after the close), one delete at a time; nothing
    // after the refused frame is taken.
    await eventually(() => count.active === 0 && count.done === count.calls);
    expect(count.seqs).toBeLessThan(frames * MAX_ACKS_PER_REQUEST);

    await send(r, sender, other);
    await eventually(() => o.pushed.length === 1);
    expect(o.closed).toBeUndefined();
    o.ws.close();
  });
});
