// Binary push frames (spec/09-relay.md §5.2.2): the challenge offers them, a
// device that names "cbor" in its auth frame gets each envelope as one binary
// CBOR frame and may acknowledge in binary; a device that names nothing keeps
// JSON. Both kinds side by side receive the same envelopes, on SQLite and (with
// PARLEY_TEST_POSTGRES_URL) PostgreSQL. A malformed binary ack closes only its
// own connection with 4003 and is counted, like a malformed JSON ack.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type CborValue, decodeCbor, encodeCbor, utf8 } from '@parley/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MAX_ACK_FRAME_BYTES, decodeAckFrame, encodeEnvelopeFrame, u64 } from '../src/delivery/push-frame.ts';
import { MAX_ACKS_PER_REQUEST } from '../src/schemas.ts';
import { PUSH_FRAMES_FILE, buildPushFrames } from './support/push-frame-vectors.ts';
import {
  type TestDevice,
  envelopeFor,
  eventually,
  eventuallyAsync,
  fromBase64Url,
  inject,
  listeningRelay,
  makeDevice,
  register,
  toBase64Url,
  websocketAuthFrame,
} from './support.ts';
import { type TestDatabase, storageBackends, testPostgresUrl } from './support/backends.ts';

testPostgresUrl('binary push frames');
const BACKENDS = storageBackends('parley_bp', { poolSize: 2 });

type Relay = Awaited<ReturnType<typeof listeningRelay>>;
let relay: Relay | undefined;
let drop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  await drop?.();
  drop = undefined;
});

async function start(database?: TestDatabase) {
  drop = database?.drop;
  relay = await listeningRelay({}, database ? { storage: await database.open() } : {});
  return relay;
}

async function devices(r: Relay, n: number): Promise<TestDevice[]> {
  const out: TestDevice[] = [];
  for (let i = 0; i < n; i++) {
    const d = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    await register(r.app, d);
    out.push(d);
  }
  return out;
}

/** One envelope as a test reads it from either frame kind: every field, bytes as base64url. */
interface Pushed {
  seq: number;
  sender: string;
  senderDevice: number;
  id: string;
  serverTimestamp: number;
  expiresAt: number;
  envelope: string;
  /** The delivery record, re-encoded to one comparable JSON form. */
  delivery: unknown;
}

/** Reads a u64 (8 bytes, big-endian) the way a reviewer would, independent of the relay's reader. */
const be64 = (b: unknown): number => {
  expect(b).toBeInstanceOf(Uint8Array);
  expect((b as Uint8Array).length).toBe(8);
  return Number(Buffer.from(b as Uint8Array).readBigUInt64BE(0));
};

function fromBinary(bytes: Uint8Array): Pushed {
  const f = decodeCbor(bytes, 'push frame', 2 * 1024 * 1024) as unknown[];
  expect(f).toHaveLength(9);
  expect(f[0]).toBe('envelope');
  const delivery = f[8] as Uint8Array | null;
  let record: unknown = null;
  if (delivery !== null) {
    const d = decodeCbor(delivery, 'delivery', 256) as Uint8Array[];
    record = {
      envelopeId: toBase64Url(d[0] as Uint8Array),
      acceptedAt: be64(d[1]),
      frankKeyId: d[2],
      frank: toBase64Url(d[3] as Uint8Array),
      frankingTag: toBase64Url(d[4] as Uint8Array),
    };
  }
  return {
    seq: be64(f[1]),
    sender: toBase64Url(f[2] as Uint8Array),
    senderDevice: f[3] as number,
    id: f[4] as string,
    serverTimestamp: be64(f[5]),
    expiresAt: be64(f[6]),
    envelope: toBase64Url(f[7] as Uint8Array),
    delivery: record,
  };
}

function fromJson(f: Record<string, unknown>): Pushed {
  const sender = f['sender'] as { account: string; deviceId: number };
  return {
    seq: f['seq'] as number,
    sender: sender.account,
    senderDevice: sender.deviceId,
    id: f['id'] as string,
    serverTimestamp: f['serverTimestamp'] as number,
    expiresAt: f['expiresAt'] as number,
    envelope: f['envelope'] as string,
    delivery: f['delivery'] ?? null,
  };
}

interface Socket {
  ws: WebSocket;
  /** Text frames, parsed. */
  text: Record<string, unknown>[];
  /** Envelopes, from binary or JSON frames, in arrival order. */
  pushed: Pushed[];
  binaryFrames: number;
  closed: Promise<{ code: number; reason: string }>;
}

/** An authenticated websocket of `d`; `push` is what its auth frame names (undefined: nothing, as an older client). */
async function connect(r: Relay, d: TestDevice, push?: string): Promise<Socket> {
  const ws = new WebSocket(`${r.url.replace('http', 'ws')}/v1/websocket`);
  const s: Socket = {
    ws,
    text: [],
    pushed: [],
    binaryFrames: 0,
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
  };
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      s.binaryFrames++;
      s.pushed.push(fromBinary(new Uint8Array(data as Buffer)));
      return;
    }
    const frame = JSON.parse(data.toString()) as Record<string, unknown>;
    s.text.push(frame);
    if (frame['type'] === 'envelope') s.pushed.push(fromJson(frame));
  });
  await new Promise((resolve) => ws.on('open', resolve));
  await eventually(() => s.text.some((f) => f['type'] === 'challenge'));
  const challenge = s.text.find((f) => f['type'] === 'challenge') as { challenge: string };
  ws.send(websocketAuthFrame(new URL(r.url).host, fromBase64Url(challenge.challenge), d.signer, push === undefined ? {} : { push }));
  await Promise.race([eventually(() => s.text.some((f) => f['type'] === 'ready')), s.closed]);
  return s;
}

let sent = 0;
/** `from` sends one envelope to each of `to` over HTTP, with a franking tag when `tag` is given. */
async function send(r: Relay, from: TestDevice, to: TestDevice[], tag?: Uint8Array): Promise<string> {
  const id = `m${++sent}`;
  const res = await inject(r.app, from.signer, {
    method: 'POST',
    url: '/v1/messages',
    json: {
      messages: to.map((d) => ({
        ...envelopeFor(d, id, `ciphertext ${id} ${'x'.repeat(1000)}`),
        ...(tag ? { frankingTag: toBase64Url(tag) } : {}),
      })),
    },
  });
  expect(res.statusCode, res.body).toBe(200);
  return id;
}

const ackFrame = (seqs: number[]) => encodeCbor(['ack', seqs.map((s) => u64(s))]);
const stored = async (r: Relay, d: TestDevice) => (await r.client(d.signer).fetchMessages()).messages.length;
/** Everything but what differs per recipient: seq, and the delivery record's per-envelope id and frank. */
const shared = (p: Pushed) => {
  const d = p.delivery as { frankingTag: string; frankKeyId: number } | null;
  return { ...p, seq: 0, delivery: d && { frankingTag: d.frankingTag, frankKeyId: d.frankKeyId } };
};

describe.each(BACKENDS)('binary push frames on $name', (backend) => {
  it('binary and JSON devices side by side receive the same envelopes (backlog, then live), and both acknowledge', async () => {
    const r = await start(backend.database());
    const [alice, bin, json] = (await devices(r, 3)) as [TestDevice, TestDevice, TestDevice];
    // A backlog (one franked, so the delivery record travels too) ...
    const tag = new Uint8Array(randomBytes(32));
    await send(r, alice, [bin, json]);
    await send(r, alice, [bin, json], tag);
    const b = await connect(r, bin, 'cbor');
    const j = await connect(r, json);
    expect(b.text.find((f) => f['type'] === 'challenge')?.['push']).toEqual(['json', 'cbor']);
    expect(b.text.find((f) => f['type'] === 'ready')?.['push']).toBe('cbor');
    expect(j.text.find((f) => f['type'] === 'ready')?.['push']).toBe('json');
    // ... then live envelopes, pushed as they commit.
    await eventually(() => b.pushed.length === 2 && j.pushed.length === 2);
    for (let i = 0; i < 3; i++) await send(r, alice, [bin, json], i === 1 ? tag : undefined);
    await eventually(() => b.pushed.length === 5 && j.pushed.length === 5);

    expect(b.binaryFrames).toBe(5);
    expect(b.text.some((f) => f['type'] === 'envelope')).toBe(false);
    expect(j.binaryFrames).toBe(0);
    // "drained" stays a JSON text frame on both (§5.2.2).
    expect(b.text.filter((f) => f['type'] === 'drained')).toHaveLength(1);
    expect(j.text.filter((f) => f['type'] === 'drained')).toHaveLength(1);
    expect(b.pushed.map(shared)).toEqual(j.pushed.map(shared));
    expect(b.pushed[1]?.delivery).toMatchObject({ frankingTag: toBase64Url(tag) });
    expect(b.pushed.map((p) => p.senderDevice)).toEqual([1, 1, 1, 1, 1]);
    // The same as an HTTP fetch of the same mailbox returns (the JSON path's decoder is the reference).
    const fetched = (await inject(r.app, bin.signer, { method: 'GET', url: '/v1/messages' })).body;
    expect(b.pushed).toEqual((JSON.parse(fetched) as { messages: Record<string, unknown>[] }).messages.map(fromJson));
    // Seqs in order, every one pushed once.
    const seqs = b.pushed.map((p) => p.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));

    b.ws.send(ackFrame(seqs));
    j.ws.send(JSON.stringify({ type: 'ack', seqs: j.pushed.map((p) => p.seq) }));
    await eventuallyAsync(async () => (await stored(r, bin)) === 0 && (await stored(r, json)) === 0);
    // Still open: a good binary ack is no protocol error.
    expect(b.ws.readyState).toBe(WebSocket.OPEN);
    b.ws.close();
    j.ws.close();
  });
});

describe('the envelope frame encoder', () => {
  it("writes exactly the bytes of core's deterministic CBOR encoding of the frame (fast-check)", () => {
    const message = fc.record({
      seq: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
      accountKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      deviceId: fc.oneof(fc.constantFrom(0, 1, 23, 24, 255, 256, 65535, 65536, 0x7fffffff), fc.integer({ min: 0, max: 0x7fffffff })),
      // Client ids are ASCII (the writer's fast path); any other text still takes the UTF-8 path.
      clientId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })),
      serverTimestamp: fc.integer({ min: 0, max: 2 ** 45 }),
      ttl: fc.integer({ min: 1000, max: 2 ** 40 }),
      envelope: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.constantFrom(23, 24, 255, 256, 65535, 65536, 70_000).map((n) => new Uint8Array(n).fill(5)),
      ),
      delivery: fc.option(fc.uint8Array({ minLength: 1, maxLength: 200 }), { nil: undefined }),
    });
    fc.assert(
      fc.property(message, (m) => {
        const stored = {
          seq: m.seq,
          sender: { accountKey: m.accountKey, deviceId: m.deviceId },
          clientId: m.clientId,
          serverTimestamp: m.serverTimestamp,
          expiresAt: m.serverTimestamp + m.ttl,
          envelope: m.envelope,
          ...(m.delivery ? { delivery: m.delivery } : {}),
        };
        const reference = encodeCbor([
          'envelope',
          u64(m.seq),
          m.accountKey,
          m.deviceId,
          m.clientId,
          u64(m.serverTimestamp),
          u64(m.serverTimestamp + m.ttl),
          m.envelope,
          m.delivery ?? null,
        ]);
        expect(Buffer.from(encodeEnvelopeFrame(stored)).equals(Buffer.from(reference))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('test-vectors/push-frames.json', () => {
  const file = JSON.parse(readFileSync(PUSH_FRAMES_FILE, 'utf8')) as {
    testGroups: { type: string; tests: Record<string, unknown>[] }[];
  };
  const group = (type: string) => file.testGroups.find((g) => g.type === type)?.tests ?? [];
  const hex = (s: unknown) => Buffer.from(String(s), 'hex');

  it('is what the generator builds (rewrite only on purpose: --write)', () => {
    expect(readFileSync(PUSH_FRAMES_FILE, 'utf8') === buildPushFrames()).toBe(true);
  });

  it("the relay's writer gives each envelope frame's bytes", () => {
    const frames = group('EnvelopeFrame');
    expect(frames.length).toBeGreaterThan(4);
    for (const t of frames) {
      const m = {
        seq: t['seq'] as number,
        sender: { accountKey: hex(t['senderAccount']), deviceId: t['senderDevice'] as number },
        clientId: t['id'] as string,
        serverTimestamp: t['serverTimestamp'] as number,
        expiresAt: t['expiresAt'] as number,
        envelope: hex(t['envelope']),
        ...(t['delivery'] === null ? {} : { delivery: hex(t['delivery']) }),
      };
      expect(Buffer.from(encodeEnvelopeFrame(m)).toString('hex'), String(t['comment'])).toBe(t['frame']);
    }
  });

  it("the relay's ack decoder takes the valid ack frames and refuses the others", () => {
    for (const t of group('AckFrame')) expect(decodeAckFrame(hex(t['frame'])), String(t['comment'])).toEqual(t['seqs']);
    const refused = group('AckFrameInvalid');
    expect(refused.length).toBeGreaterThan(3);
    for (const t of refused) expect(decodeAckFrame(hex(t['frame'])), String(t['comment'])).toBeUndefined();
  });
});

describe('negotiation', () => {
  it('an auth frame naming a format the relay does not offer is refused (4003), as any malformed auth frame', async () => {
    const r = await start();
    const [d] = (await devices(r, 1)) as [TestDevice];
    const s = await connect(r, d, 'xml');
    expect((await s.closed).code).toBe(4003);
  });

  it('a JSON device may still acknowledge in binary, and a binary device in JSON', async () => {
    const r = await start();
    const [alice, bin, json] = (await devices(r, 3)) as [TestDevice, TestDevice, TestDevice];
    await send(r, alice, [bin, json]);
    const b = await connect(r, bin, 'cbor');
    const j = await connect(r, json, 'json');
    await eventually(() => b.pushed.length === 1 && j.pushed.length === 1);
    b.ws.send(JSON.stringify({ type: 'ack', seqs: [b.pushed[0]?.seq] }));
    j.ws.send(ackFrame([j.pushed[0]?.seq as number]));
    await eventuallyAsync(async () => (await stored(r, bin)) === 0 && (await stored(r, json)) === 0);
    b.ws.close();
    j.ws.close();
  });
});

describe('malformed binary acks', () => {
  const counted = async (r: Relay) =>
    (await r.app.relay.metrics.websocketClientErrors.get()).values.find((v) => v.labels['code'] === 'BAD_ACK_FRAME')?.value ?? 0;
  /** Binary frames that are no ack go to the send path, which counts them as MALFORMED sends (§5.4). */
  const malformedSends = async (r: Relay) =>
    (await r.app.relay.metrics.sendsRejected.get()).values.find((v) => v.labels['code'] === 'MALFORMED')?.value ?? 0;

  /** Mutations of a valid ack frame that no relay may take. */
  function brokenAcks(valid: number[]): [string, Uint8Array][] {
    const good = ackFrame(valid);
    const out: [string, Uint8Array][] = [
      ['truncated', good.subarray(0, good.length - 1)],
      ['trailing byte', new Uint8Array([...good, 0])],
      ['no seqs', encodeCbor(['ack', []])],
      ['seq 0', ackFrame([0])],
      ['seq of 7 bytes', encodeCbor(['ack', [new Uint8Array(7).fill(1)]])],
      ['seq of 9 bytes', encodeCbor(['ack', [new Uint8Array(9).fill(1)]])],
      ['seq as an integer', encodeCbor(['ack', [1]])],
      ['seq beyond 2^53-1', encodeCbor(['ack', [new Uint8Array([0, 0x20, 0, 0, 0, 0, 0, 0])]])],
      ['seqs not an array', encodeCbor(['ack', u64(1)])],
      ['extra field', encodeCbor(['ack', [u64(1)], null] as CborValue)],
      [`${MAX_ACKS_PER_REQUEST + 1} seqs`, ackFrame(Array.from({ length: MAX_ACKS_PER_REQUEST + 1 }, (_, i) => i + 1))],
      // The list's length in a longer head than needed: not canonical.
      ['non-canonical length', new Uint8Array([0x82, 0x63, 0x61, 0x63, 0x6b, 0x98, 0x01, 0x48, ...u64(1)])],
      ['wrong tag', encodeCbor(['acK', [u64(1)]])],
    ];
    return out;
  }

  it('every mutation of a valid ack closes only its own connection with 4003, is counted, and changes nothing stored', async () => {
    const r = await start();
    const [alice, victim, bystander] = (await devices(r, 3)) as [TestDevice, TestDevice, TestDevice];
    await send(r, alice, [victim]);
    const watch = await connect(r, bystander, 'cbor');
    const cases = brokenAcks([1]);
    // The decoder refuses each (so none of them is, by accident, a valid ack of another seq).
    for (const [, bytes] of cases) expect(decodeAckFrame(bytes)).toBeUndefined();
    for (const [name, bytes] of cases) {
      const s = await connect(r, victim, 'cbor');
      await eventually(() => s.pushed.length === 1);
      s.ws.send(bytes);
      expect((await s.closed).code, name).toBe(4003);
    }
    // Every refusal is counted: as a bad ack, or (the wrong tag) as a malformed send frame.
    expect([await counted(r), await malformedSends(r)]).toEqual([cases.length - 1, 1]);
    // The envelope was never acknowledged by any of them; the relay still delivers to others.
    expect(await stored(r, victim)).toBe(1);
    await send(r, alice, [bystander]);
    await eventually(() => watch.pushed.length === 1);
    expect(watch.ws.readyState).toBe(WebSocket.OPEN);
    watch.ws.close();
  });

  it('a malformed JSON ack is closed and counted the same way (4003, BAD_ACK_FRAME)', async () => {
    const r = await start();
    const [d] = (await devices(r, 1)) as [TestDevice];
    for (const frame of ['{"type":"ack","seqs":[]}', '{"type":"ack","seqs":[0]}', '{"type":"ack"}', 'not json']) {
      const s = await connect(r, d, 'cbor');
      s.ws.send(frame);
      expect((await s.closed).code, frame).toBe(4003);
    }
    expect(await counted(r)).toBe(4);
  });

  it('arbitrary bytes behind an ack head: 4003 unless they form a valid ack, never a crash (fast-check)', async () => {
    const r = await start();
    const [alice, victim, bystander] = (await devices(r, 3)) as [TestDevice, TestDevice, TestDevice];
    const watch = await connect(r, bystander, 'cbor');
    let ackCloses = 0;
    let closes = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 64 }), fc.boolean(), async (tail, headed) => {
        // Half with the ack head (the ack decoder's input), half raw (the binary dispatch's input).
        const bytes = headed ? new Uint8Array([0x82, 0x63, 0x61, 0x63, 0x6b, ...tail]) : tail;
        if (bytes.length === 0) return;
        const valid = decodeAckFrame(bytes) !== undefined;
        const s = await connect(r, victim, 'cbor');
        s.ws.send(bytes);
        if (valid) {
          // A valid ack of seqs that are not this device's deletes nothing and keeps the connection.
          await new Promise((x) => setTimeout(x, 20));
          expect(s.ws.readyState).toBe(WebSocket.OPEN);
          s.ws.close();
          await s.closed;
          return;
        }
        expect((await s.closed).code).toBe(4003);
        // Headed frames are refused as acks; the rest by the send path (counted as MALFORMED sends, §5.4).
        if (headed) ackCloses++;
        closes++;
      }),
      { numRuns: 40 },
    );
    expect(await counted(r)).toBe(ackCloses);
    expect(await malformedSends(r)).toBe(closes - ackCloses);
    await send(r, alice, [bystander]);
    await eventually(() => watch.pushed.length === 1);
    watch.ws.close();
  });

  it('the ack decoder is bounded and total: any input up to its limit returns seqs or undefined, never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (tail) => {
        const seqs = decodeAckFrame(new Uint8Array([0x82, 0x63, 0x61, 0x63, 0x6b, ...tail]));
        if (seqs) for (const s of seqs) expect(Number.isSafeInteger(s) && s >= 1).toBe(true);
      }),
      { numRuns: 3000 },
    );
    const full = ackFrame(Array.from({ length: MAX_ACKS_PER_REQUEST }, (_, i) => 2 ** 40 + i));
    expect(full.length).toBe(MAX_ACK_FRAME_BYTES);
    expect(decodeAckFrame(full)).toHaveLength(MAX_ACKS_PER_REQUEST);
    expect(decodeAckFrame(new Uint8Array([...full, 0]))).toBeUndefined();
  });
});
