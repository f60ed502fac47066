// Binary push frames in the relay client (spec/09-relay.md §5.2.2): the
// receiver asks for them only when the relay offers them, decodes each frame
// strictly (every field's type, length and range; a broken frame is a typed
// BAD_PUSH_FRAME that is reported and never blocks the next one), and
// acknowledges in binary. Through the real relay: a text sent by one SDK
// client reaches another as binary frames; a relay that offers nothing gets
// JSON, and everything still works.
import { readFileSync } from 'node:fs';
import { Account, type CborValue, PreKeyStore, decodeCbor, encodeCbor, limits } from '@parley/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ParleyClient } from '../src/client.ts';
import { BAD_DELIVERY_RECORD } from '../src/relay-client/decode.ts';
import {
  MailboxReceiver,
  type ReceivedEnvelope,
  RelayClient,
  type WebSocketLike,
  deviceSigner,
  isRelayError,
  preKeysOf,
} from '../src/relay-client/index.ts';
import { BAD_PUSH_FRAME, MAX_PUSH_FRAME_BYTES, decodeEnvelopeFrame, encodeAckFrame } from '../src/relay-client/push-frame.ts';
import type { WebSocketConstructor } from '../src/relay-client/types.ts';
import { connectRelay } from '../src/relay-link/adapter.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, until } from './support/harness.ts';
import { loopbackRelay } from './support/loopback-relay.ts';

/** 8 bytes, big-endian (written independently of the code under test). */
const be = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return new Uint8Array(b);
};

const T = 1_780_000_000_000;
const record = () => encodeCbor([new Uint8Array(16).fill(1), be(T), 20_601, new Uint8Array(32).fill(2), new Uint8Array(32).fill(3)]);
/** The fields of a valid frame, in order (spec §5.2.2). */
const fields = (): CborValue[] => [
  'envelope',
  be(7),
  new Uint8Array(32).fill(9),
  3,
  'm-1',
  be(T),
  be(T + 600_000),
  new Uint8Array([1, 2, 3]),
  record(),
];
const frame = (f: CborValue[] = fields()) => encodeCbor(f);

/** What decoding `bytes` threw: [code, field] of a RelayError, or the error itself. */
function refusal(bytes: Uint8Array): [string, unknown] | 'decoded' {
  try {
    decodeEnvelopeFrame(bytes);
    return 'decoded';
  } catch (e) {
    if (!isRelayError(e)) throw e;
    return [e.code, e.details['field']];
  }
}

describe('decoding a binary envelope frame', () => {
  it('decodes every field of a valid frame, the delivery record included', () => {
    const e = decodeEnvelopeFrame(frame());
    expect(e).toEqual({
      seq: 7,
      sender: { accountKey: new Uint8Array(32).fill(9), deviceId: 3 },
      id: 'm-1',
      serverTimestamp: T,
      expiresAt: T + 600_000,
      envelope: new Uint8Array([1, 2, 3]),
      delivery: {
        envelopeId: new Uint8Array(16).fill(1),
        acceptedAt: T,
        frankKeyId: 20_601,
        frank: new Uint8Array(32).fill(2),
        frankingTag: new Uint8Array(32).fill(3),
      },
    });
    // Sealed envelopes name no sender device (0), and an unfranked one carries no record.
    const sealed = fields();
    sealed[3] = 0;
    sealed[8] = null;
    expect(decodeEnvelopeFrame(frame(sealed))).toMatchObject({ sender: { deviceId: 0 }, delivery: null });
    expect(decodeEnvelopeFrame(frame(sealed)).deliveryError).toBeUndefined();
  });

  // Values of every CBOR kind of Parley's subset, for "the wrong type".
  const anyValue: fc.Arbitrary<CborValue> = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.string({ maxLength: 70 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }),
  );
  const notBytes = anyValue.filter((v) => !(v instanceof Uint8Array));
  const u64Wrong = fc.oneof(
    fc.uint8Array({ maxLength: 16 }).filter((b) => b.length !== 8),
    fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }).map(be),
    notBytes,
  );
  /** For each checked field: its index, the field name the error carries, and values that must be refused. */
  const mutations: [number, string, fc.Arbitrary<CborValue>][] = [
    [0, 'tag', anyValue.filter((v) => v !== 'envelope')],
    [1, 'seq', fc.oneof(u64Wrong, fc.constant(be(0)))],
    [2, 'sender.account', anyValue.filter((v) => !(v instanceof Uint8Array && v.length === 32))],
    [
      3,
      'sender.deviceId',
      fc.oneof(
        fc.integer({ min: limits.MAX_DEVICE_ID + 1, max: 0xffffffff }),
        anyValue.filter((v) => typeof v !== 'number'),
      ),
    ],
    [4, 'id', anyValue.filter((v) => !(typeof v === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(v)))],
    [5, 'serverTimestamp', u64Wrong],
    [6, 'expiresAt', fc.oneof(u64Wrong, fc.integer({ min: 0, max: T - 1 }).map(be))],
    [7, 'envelope', fc.oneof(fc.constant(new Uint8Array(0)), notBytes)],
    [8, 'delivery', notBytes.filter((v) => v !== null)],
  ];
  for (const [index, field, values] of mutations) {
    it(`refuses every wrong "${field}" with BAD_PUSH_FRAME naming it (fast-check)`, () => {
      fc.assert(
        fc.property(values, (value) => {
          const f = fields();
          f[index] = value;
          expect(refusal(frame(f))).toEqual([BAD_PUSH_FRAME, field]);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('refuses a frame of another shape: fields missing or added, not an array, not canonical, too large', () => {
    const f = fields();
    expect(refusal(frame(f.slice(0, 8)))).toEqual([BAD_PUSH_FRAME, 'frame']);
    expect(refusal(frame([...f, null]))).toEqual([BAD_PUSH_FRAME, 'frame']);
    expect(refusal(encodeCbor('envelope'))).toEqual([BAD_PUSH_FRAME, 'frame']);
    expect(refusal(new Uint8Array([...frame(), 0]))).toEqual([BAD_PUSH_FRAME, 'frame']);
    // The device id 3 written in two bytes (0x18 0x03) instead of one: not canonical, refused at that field.
    const good = frame();
    const at = 1 + 9 + 9 + 34;
    expect(good[at]).toBe(0x03);
    expect(refusal(new Uint8Array([...good.subarray(0, at), 0x18, 0x03, ...good.subarray(at + 1)]))).toEqual([
      BAD_PUSH_FRAME,
      'sender.deviceId',
    ]);
    expect(refusal(new Uint8Array(MAX_PUSH_FRAME_BYTES + 1))).toEqual([BAD_PUSH_FRAME, 'frame']);
    expect(refusal(new Uint8Array(0))).toEqual([BAD_PUSH_FRAME, 'frame']);
  });

  it('any byte changed, cut or added: a typed refusal or a frame whose every field is in range, never another error (fast-check)', () => {
    const good = frame();
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 }), (at, byte, how) => {
        const bytes =
          how === 0
            ? Uint8Array.from(good, (b, i) => (i === at ? byte : b))
            : how === 1
              ? good.subarray(0, at)
              : new Uint8Array([...good.subarray(0, at), byte, ...good.subarray(at)]);
        let e: ReceivedEnvelope;
        try {
          e = decodeEnvelopeFrame(bytes);
        } catch (error) {
          expect(isRelayError(error, BAD_PUSH_FRAME)).toBe(true);
          return;
        }
        expect(Number.isSafeInteger(e.seq) && e.seq >= 1).toBe(true);
        expect(e.sender.accountKey).toHaveLength(32);
        expect(e.sender.deviceId >= 0 && e.sender.deviceId <= limits.MAX_DEVICE_ID).toBe(true);
        expect(e.id).toMatch(/^[A-Za-z0-9._:-]{1,64}$/);
        expect(e.expiresAt >= e.serverTimestamp && Number.isSafeInteger(e.expiresAt)).toBe(true);
        expect(e.envelope.length).toBeGreaterThan(0);
        expect(e.delivery === null || e.delivery.frank.length === 32).toBe(true);
      }),
      { numRuns: 800 },
    );
  });

  /**
   * The frame decoded the plain way, as a reviewer would: core's strict decoder (decode, re-encode, compare),
   * then each field checked. The client's layout reader must agree with it on every input.
   */
  function reference(bytes: Uint8Array): ReceivedEnvelope | 'refused' {
    let v: unknown;
    try {
      v = decodeCbor(bytes, 'push frame', MAX_PUSH_FRAME_BYTES);
    } catch {
      return 'refused';
    }
    if (!Array.isArray(v) || v.length !== 9 || v[0] !== 'envelope') return 'refused';
    const [, seq, account, device, id, at, expires, envelope, delivery] = v as unknown[];
    const u64 = (x: unknown, min: number) => {
      if (!(x instanceof Uint8Array) || x.length !== 8) return undefined;
      const n = Buffer.from(x).readBigUInt64BE(0);
      return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(min) ? Number(n) : undefined;
    };
    const s = u64(seq, 1);
    const t = u64(at, 0);
    const e = t === undefined ? undefined : u64(expires, t);
    if (s === undefined || t === undefined || e === undefined) return 'refused';
    if (!(account instanceof Uint8Array) || account.length !== 32) return 'refused';
    if (typeof device !== 'number' || device > limits.MAX_DEVICE_ID) return 'refused';
    if (typeof id !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(id)) return 'refused';
    if (!(envelope instanceof Uint8Array) || envelope.length === 0 || envelope.length > limits.MAX_MESSAGE_BYTES) return 'refused';
    if (delivery !== null && !(delivery instanceof Uint8Array)) return 'refused';
    const base = { seq: s, sender: { accountKey: new Uint8Array(account), deviceId: device }, id, serverTimestamp: t, expiresAt: e };
    const out = { ...base, envelope: new Uint8Array(envelope) };
    if (delivery === null) return { ...out, delivery: null };
    const broken = { ...out, delivery: null, deliveryError: BAD_DELIVERY_RECORD };
    let r: unknown;
    try {
      r = decodeCbor(delivery, 'delivery', 256);
    } catch {
      return broken;
    }
    if (!Array.isArray(r) || r.length !== 5) return broken;
    const [envelopeId, acceptedAt, frankKeyId, frank, frankingTag] = r as unknown[];
    const accepted = u64(acceptedAt, 0);
    const is = (x: unknown, n: number): x is Uint8Array => x instanceof Uint8Array && x.length === n;
    if (!is(envelopeId, 16) || accepted === undefined || typeof frankKeyId !== 'number' || !is(frank, 32) || !is(frankingTag, 32))
      return broken;
    return {
      ...out,
      delivery: {
        envelopeId: new Uint8Array(envelopeId),
        acceptedAt: accepted,
        frankKeyId,
        frank: new Uint8Array(frank),
        frankingTag: new Uint8Array(frankingTag),
      },
    };
  }

  it("agrees with core's strict decoder on every mutation of valid frames: the same refusals, the same envelopes (fast-check)", () => {
    const valid = fc.record({
      seq: fc.oneof(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
      device: fc.constantFrom(0, 1, 23, 24, 255, 256, 65_535, 65_536, limits.MAX_DEVICE_ID),
      id: fc.constantFrom('a', 'm-1', 'x'.repeat(23), 'y'.repeat(24), 'z'.repeat(64)),
      envelope: fc.constantFrom(1, 23, 24, 255, 256).map((n) => new Uint8Array(n).fill(0xab)),
      delivery: fc.constantFrom<'record' | 'none'>('record', 'none'),
    });
    const mutation = fc.record({
      // Of the frame's bytes, or (record-*) of the delivery record's, the frame re-encoded around it.
      how: fc.constantFrom('replace', 'delete', 'insert', 'truncate', 'none', 'record-replace', 'record-delete', 'record-insert'),
      // Half of them in the last 110 bytes, where a delivery record (at the frame's end) lies.
      at: fc.oneof(fc.nat(), fc.integer({ min: -110, max: -1 })),
      byte: fc.constantFrom(
        0x00,
        0x01,
        0x17,
        0x18,
        0x19,
        0x1a,
        0x1b,
        0x1f,
        0x40,
        0x48,
        0x58,
        0x59,
        0x5f,
        0x60,
        0x78,
        0x7f,
        0x80,
        0x89,
        0x9f,
        0xf6,
        0xf7,
        0xff,
      ),
    });
    const outcomes = { refused: 0, decoded: 0, badRecord: 0 };
    fc.assert(
      fc.property(valid, mutation, (v, m) => {
        const f = fields();
        f[1] = be(v.seq);
        f[3] = v.device;
        f[4] = v.id;
        f[7] = v.envelope;
        if (v.delivery === 'none') f[8] = null;
        if (m.how.startsWith('record-')) {
          const r = record();
          const i = Math.abs(m.at) % r.length;
          f[8] =
            m.how === 'record-replace'
              ? Uint8Array.from(r, (b, k) => (k === i ? m.byte : b))
              : m.how === 'record-delete'
                ? new Uint8Array([...r.subarray(0, i), ...r.subarray(i + 1)])
                : new Uint8Array([...r.subarray(0, i), m.byte, ...r.subarray(i)]);
        }
        const good = frame(f);
        const at = m.at < 0 ? Math.max(0, good.length + m.at) : m.at % good.length;
        const bytes =
          m.how === 'replace'
            ? Uint8Array.from(good, (b, i) => (i === at ? m.byte : b))
            : m.how === 'delete'
              ? new Uint8Array([...good.subarray(0, at), ...good.subarray(at + 1)])
              : m.how === 'insert'
                ? new Uint8Array([...good.subarray(0, at), m.byte, ...good.subarray(at)])
                : m.how === 'truncate'
                  ? good.subarray(0, at)
                  : good; // 'none' and record-*
        const expected = reference(bytes);
        const got = refusal(bytes) === 'decoded' ? decodeEnvelopeFrame(bytes) : 'refused';
        expect(got).toEqual(expected);
        outcomes[got === 'refused' ? 'refused' : got.deliveryError ? 'badRecord' : 'decoded']++;
      }),
      { numRuns: 800 },
    );
    // Both sides of the property were exercised.
    expect(Math.min(outcomes.refused, outcomes.decoded, outcomes.badRecord)).toBeGreaterThan(20);
  });

  /** Every CBOR head in `bytes` (one item): its offset, major type, argument and length. */
  function heads(bytes: Uint8Array): { at: number; major: number; arg: number; size: number }[] {
    const out: { at: number; major: number; arg: number; size: number }[] = [];
    const walk = (at: number): number => {
      const major = (bytes[at] as number) >> 5;
      const info = (bytes[at] as number) & 31;
      const extra = info < 24 ? 0 : info === 24 ? 1 : info === 25 ? 2 : 4;
      let arg = info < 24 ? info : 0;
      for (let i = 1; i <= extra; i++) arg = arg * 256 + (bytes[at + i] as number);
      out.push({ at, major, arg, size: 1 + extra });
      let next = at + 1 + extra;
      if (major === 2 || major === 3) next += arg;
      if (major === 4) for (let i = 0; i < arg; i++) next = walk(next);
      return next;
    };
    walk(0);
    return out;
  }

  /** `bytes` with the head at `h` written in each longer form than its shortest: one non-canonical variant each. */
  function widened(bytes: Uint8Array, h: { at: number; major: number; arg: number; size: number }): Uint8Array[] {
    const forms: number[][] = [];
    const m = h.major << 5;
    if (h.size < 2 && h.arg < 0x100) forms.push([m | 24, h.arg]);
    if (h.size < 3 && h.arg < 0x1_0000) forms.push([m | 25, h.arg >> 8, h.arg & 0xff]);
    if (h.size < 5) forms.push([m | 26, h.arg >>> 24, (h.arg >> 16) & 0xff, (h.arg >> 8) & 0xff, h.arg & 0xff]);
    return forms.map((f) => new Uint8Array([...bytes.subarray(0, h.at), ...f, ...bytes.subarray(h.at + h.size)]));
  }

  it('refuses every head of the frame and of its delivery record written longer than its shortest form, as core does', () => {
    let checked = 0;
    for (const delivery of [record(), null]) {
      const f = fields();
      f[8] = delivery;
      const good = frame(f);
      for (const h of heads(good)) {
        for (const bytes of widened(good, h)) {
          expect(reference(bytes)).toBe('refused');
          expect(refusal(bytes)).not.toBe('decoded');
          checked++;
        }
      }
    }
    // Inside the record: the frame stays valid, the record is refused (and the envelope handed on).
    const r = record();
    for (const h of heads(r)) {
      for (const bytes of widened(r, h)) {
        const f = fields();
        f[8] = bytes;
        expect(reference(frame(f))).toMatchObject({ deliveryError: BAD_DELIVERY_RECORD });
        expect(decodeEnvelopeFrame(frame(f))).toMatchObject({ delivery: null, deliveryError: BAD_DELIVERY_RECORD });
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('a broken delivery record does not fail the frame: the envelope goes on with BAD_DELIVERY_RECORD (fast-check)', () => {
    const good = record();
    const broken = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.nat(good.length - 1).map((n) => good.subarray(0, n)),
      fc.nat(good.length - 1).map((n) => Uint8Array.from(good, (b, i) => (i === n ? b ^ 0x20 : b))),
      fc.constantFrom(
        encodeCbor([new Uint8Array(15), be(T), 1, new Uint8Array(32), new Uint8Array(32)]),
        encodeCbor([new Uint8Array(16), be(2n ** 60n), 1, new Uint8Array(32), new Uint8Array(32)]),
        encodeCbor([new Uint8Array(16), be(T), 1, new Uint8Array(32)]),
        encodeCbor([new Uint8Array(16), be(T), 'one', new Uint8Array(32), new Uint8Array(32)]),
      ),
    );
    let refused = 0;
    fc.assert(
      fc.property(broken, (bytes) => {
        const f = fields();
        f[8] = bytes;
        const e = decodeEnvelopeFrame(frame(f));
        expect(e.envelope).toEqual(new Uint8Array([1, 2, 3]));
        if (e.deliveryError) {
          refused++;
          expect(e.deliveryError).toBe(BAD_DELIVERY_RECORD);
          expect(e.delivery).toBeNull();
        } else expect(e.delivery?.frankingTag).toHaveLength(32);
      }),
      { numRuns: 400 },
    );
    // Random bytes, truncations and the fixed cases are always refused (3 of 4 kinds); a flipped bit may land in a field's content.
    expect(refused).toBeGreaterThan(250);
  });

  it('an ack frame is ["ack", [seq as 8 bytes, ...]] with 1..1000 seqs', () => {
    expect(encodeAckFrame([7, 2 ** 40])).toEqual(encodeCbor(['ack', [be(7), be(2 ** 40)]]));
    expect(() => encodeAckFrame([])).toThrow(RangeError);
    expect(() => encodeAckFrame(Array.from({ length: 1001 }, (_, i) => i + 1))).toThrow(RangeError);
    expect(() => encodeAckFrame([0])).toThrow(RangeError);
  });
});

describe('test-vectors/push-frames.json', () => {
  const file = JSON.parse(readFileSync(new URL('../../../test-vectors/push-frames.json', import.meta.url), 'utf8')) as {
    testGroups: { type: string; tests: Record<string, unknown>[] }[];
  };
  const group = (type: string) => file.testGroups.find((g) => g.type === type)?.tests ?? [];
  const hex = (s: unknown) => new Uint8Array(Buffer.from(String(s), 'hex'));

  it('decodes every valid envelope frame to its fields (a refused delivery record handed on as BAD_DELIVERY_RECORD)', () => {
    const frames = group('EnvelopeFrame');
    expect(frames.length).toBeGreaterThan(4);
    for (const t of frames) {
      const e = decodeEnvelopeFrame(hex(t['frame']));
      const what = String(t['comment']);
      expect([e.seq, e.sender.deviceId, e.id, e.serverTimestamp, e.expiresAt], what).toEqual([
        t['seq'],
        t['senderDevice'],
        t['id'],
        t['serverTimestamp'],
        t['expiresAt'],
      ]);
      expect(Buffer.from(e.sender.accountKey).toString('hex'), what).toBe(t['senderAccount']);
      expect(Buffer.from(e.envelope).toString('hex'), what).toBe(t['envelope']);
      if (t['deliveryError']) expect([e.delivery, e.deliveryError], what).toEqual([null, t['deliveryError']]);
      else if (t['delivery'] === null) expect(e.delivery, what).toBeNull();
      else expect(e.delivery?.frankingTag, what).toHaveLength(32);
    }
  });

  it('refuses every invalid envelope frame with BAD_PUSH_FRAME naming the field', () => {
    const refused = group('EnvelopeFrameInvalid');
    expect(refused.length).toBeGreaterThan(10);
    for (const t of refused) expect(refusal(hex(t['frame'])), String(t['comment'])).toEqual([t['error'], t['field']]);
  });

  it('writes each ack frame byte for byte', () => {
    for (const t of group('AckFrame')) expect(Buffer.from(encodeAckFrame(t['seqs'] as number[])).toString('hex')).toBe(t['frame']);
  });
});

/** A socket the test drives: what the receiver sent, and frames pushed to it. */
function fakeSockets() {
  const sent: (string | Uint8Array)[] = [];
  const sockets: FakeSocket[] = [];
  class FakeSocket implements WebSocketLike {
    readyState = 1;
    binaryType = 'blob';
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor() {
      sockets.push(this);
    }
    send(data: string | Uint8Array): void {
      sent.push(data);
    }
    close(): void {
      this.readyState = 3;
    }
    text(data: unknown): void {
      this.onmessage?.({ data: JSON.stringify(data) });
    }
    binary(bytes: Uint8Array): void {
      // As a browser hands it over with binaryType "arraybuffer".
      this.onmessage?.({ data: bytes.slice().buffer });
    }
  }
  return { sent, sockets, FakeSocket };
}

function receiver(FakeSocket: unknown, options: { binaryPush?: boolean } = {}) {
  const signer = deviceSigner(Account.generate().createDevice(1));
  const got: ReceivedEnvelope[] = [];
  const errors: string[] = [];
  const r = new MailboxReceiver(
    { url: 'ws://127.0.0.1:1/v1/websocket', host: '127.0.0.1:1', signer, WebSocket: FakeSocket as WebSocketConstructor },
    { onEnvelope: (e) => void got.push(e), onError: (e) => errors.push((e as { code: string }).code) },
    options,
  ).start();
  return { r, got, errors };
}

const challenge = (push?: unknown) => ({ type: 'challenge', challenge: 'AAAA', serverTime: 1, ...(push === undefined ? {} : { push }) });
const authOf = (sent: (string | Uint8Array)[]) => JSON.parse(sent.find((s) => typeof s === 'string' && s.includes('"auth"')) as string);

describe('the receiver', () => {
  it('asks for "cbor" only when the challenge offers it, and not when binaryPush is false', () => {
    for (const [offer, option, asked] of [
      [['json', 'cbor'], undefined, 'cbor'],
      [undefined, undefined, undefined],
      [['json'], undefined, undefined],
      ['cbor', undefined, undefined],
      [['json', 'cbor'], false, undefined],
    ] as const) {
      const { sent, sockets, FakeSocket } = fakeSockets();
      const { r } = receiver(FakeSocket, option === undefined ? {} : { binaryPush: option });
      sockets[0]?.text(challenge(offer));
      expect(authOf(sent).push, JSON.stringify([offer, option])).toBe(asked);
      // Binary frames would come as Blobs in a browser: the receiver asks for ArrayBuffers.
      expect(sockets[0]?.binaryType).toBe('arraybuffer');
      r.stop();
    }
  });

  it('a broken frame is reported (BAD_PUSH_FRAME) and the next frames are handled and acknowledged in binary', async () => {
    const { sent, sockets, FakeSocket } = fakeSockets();
    const { r, got, errors } = receiver(FakeSocket);
    const s = sockets[0] as NonNullable<(typeof sockets)[0]>;
    s.text(challenge(['json', 'cbor']));
    s.text({ type: 'ready', push: 'cbor' });
    const at = (seq: number) => {
      const f = fields();
      f[1] = be(seq);
      return frame(f);
    };
    s.binary(at(7));
    s.binary(at(8).subarray(0, 20));
    const badRecord = fields();
    badRecord[1] = be(9);
    badRecord[8] = new Uint8Array([1, 2]);
    s.binary(frame(badRecord));
    s.binary(at(10));
    s.text({ type: 'drained' });
    await until(() => got.length === 3);
    await new Promise((x) => setTimeout(x, 20));
    r.stop();
    expect(got.map((e) => e.seq)).toEqual([7, 9, 10]);
    expect(got[1]?.deliveryError).toBe(BAD_DELIVERY_RECORD);
    expect(errors).toEqual([BAD_PUSH_FRAME, BAD_DELIVERY_RECORD]);
    const acks = sent.filter((x): x is Uint8Array => x instanceof Uint8Array);
    expect(acks.length).toBeGreaterThan(0);
    expect(sent.some((x) => typeof x === 'string' && x.includes('"ack"'))).toBe(false);
    // The frames acknowledge exactly the handled seqs, in order (the broken one stays on the relay).
    expect(Buffer.concat(acks)).toEqual(Buffer.from(encodeAckFrame([7, 9, 10])));
  });

  it('acknowledges in JSON when the relay\'s "ready" did not say "cbor", whatever frames came', async () => {
    const { sent, sockets, FakeSocket } = fakeSockets();
    const { r, got } = receiver(FakeSocket);
    const s = sockets[0] as NonNullable<(typeof sockets)[0]>;
    s.text(challenge());
    s.text({ type: 'ready' });
    s.binary(frame());
    await until(() => got.length === 1);
    await new Promise((x) => setTimeout(x, 20));
    r.stop();
    expect(sent.filter((x) => typeof x === 'string' && x.includes('"ack"')).map((x) => JSON.parse(x as string).seqs)).toEqual([[7]]);
    expect(sent.some((x) => x instanceof Uint8Array)).toBe(false);
  });
});

// ---- through the real relay ------------------------------------------------

// One relay for the file: each test registers accounts of its own.
const server = loopbackRelay('push-frames', { scope: 'all' });

/** A binary ack frame starts with array(2) and the text "ack" (spec §5.2.2). */
const isAck = (b: Uint8Array) => b[0] === 0x82 && b[1] === 0x63 && b[2] === 0x61 && b[3] === 0x63 && b[4] === 0x6b;

/**
 * The ws WebSocket behind a WebSocketLike that counts frames each way. With `oldRelay` it stands for a relay
 * from before binary push: its challenge carries no "push" offer (such a relay would also refuse an auth
 * frame naming one, which is counted here).
 */
function countingWebSocket(oldRelay = false) {
  const counts = { binaryIn: 0, binaryAcks: 0, textAcks: 0, authWithPush: 0 };
  class Counting implements WebSocketLike {
    readonly #ws: WebSocket;
    onopen: ((event: unknown) => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    constructor(url: string) {
      this.#ws = new WebSocket(url);
      this.#ws.on('open', (e: unknown) => this.onopen?.(e));
      this.#ws.on('error', (e) => this.onerror?.(e));
      this.#ws.on('close', (code, reason) => this.onclose?.({ code, reason: reason.toString() }));
      this.#ws.on('message', (data, isBinary) => {
        if (isBinary) {
          counts.binaryIn++;
          this.onmessage?.({ data: data as Buffer });
          return;
        }
        let text = String(data);
        if (oldRelay && text.includes('"challenge"')) {
          const { push: _offer, ...plain } = JSON.parse(text) as Record<string, unknown>;
          text = JSON.stringify(plain);
        }
        this.onmessage?.({ data: text });
      });
    }
    get readyState(): number {
      return this.#ws.readyState;
    }
    send(data: string | Uint8Array): void {
      if (typeof data !== 'string') {
        if (isAck(data)) counts.binaryAcks++;
      } else {
        const f = JSON.parse(data) as { type: string };
        if (f.type === 'ack') counts.textAcks++;
        if (f.type === 'auth' && 'push' in f) counts.authWithPush++;
      }
      this.#ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.#ws.close(code, reason);
    }
  }
  return { counts, WebSocket: Counting as WebSocketConstructor };
}

async function device(WS: WebSocketConstructor) {
  const account = Account.generate();
  const d = account.createDevice(1);
  const client = new RelayClient({ baseUrl: server.url, signer: deviceSigner(d), WebSocket: WS, websocketSends: false });
  await client.registerDevice(d.certificate, preKeysOf(PreKeyStore.generate(d, { oneTimePreKeys: 1, kemPreKeys: 1 })));
  return { account, client };
}

const clients: ParleyClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined);
});

describe('through the real relay', () => {
  for (const [name, oldRelay, binaryPush] of [
    ['binary frames (the default)', false, undefined],
    ['a relay that offers no binary frames', true, undefined],
    ['binaryPush: false', false, false],
  ] as const) {
    it(`${name}: every envelope arrives, with its delivery record, and is acknowledged`, async () => {
      const { counts, WebSocket: WS } = countingWebSocket(oldRelay);
      const alice = await device(WS);
      const bob = await device(WS);
      const tag = new Uint8Array(32).fill(0x5a);
      const big = new Uint8Array(1024).fill(0xab);
      await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'franked', envelope: big, frankingTag: tag }]);
      await alice.client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: 'plain', envelope: new Uint8Array([2]) }]);
      const fetched = (await bob.client.fetchMessages()).messages;

      const pushed: ReceivedEnvelope[] = [];
      const errors: unknown[] = [];
      const receiver = bob.client
        .connect({ onEnvelope: (e) => void pushed.push(e), onError: (e) => errors.push(e) }, binaryPush === undefined ? {} : { binaryPush })
        .start();
      await until(() => pushed.length === 2, 8000, 'two envelopes');
      // Acknowledged: the relay deletes them (binary acks on the binary connection).
      const end = Date.now() + 8000;
      while ((await bob.client.fetchMessages()).messages.length > 0 && Date.now() < end) await new Promise((x) => setTimeout(x, 20));
      receiver.stop();
      expect(await bob.client.fetchMessages()).toMatchObject({ messages: [] });
      expect(errors).toEqual([]);
      // Byte for byte what the HTTP fetch (JSON) returned.
      expect(pushed).toEqual(fetched);
      expect(pushed[0]?.envelope).toEqual(big);
      expect(pushed[0]?.delivery?.frankingTag).toEqual(tag);
      const binary = !oldRelay && binaryPush !== false;
      expect(counts.binaryIn).toBe(binary ? 2 : 0);
      expect(counts.authWithPush).toBe(binary ? 1 : 0);
      expect(counts.binaryAcks > 0).toBe(binary);
      expect(counts.textAcks > 0).toBe(!binary);
    });
  }

  it('SDK to SDK: texts both ways arrive as binary push frames and are acknowledged in binary', async () => {
    const { counts, WebSocket: WS } = countingWebSocket();
    const connector = connectRelay(server.url, { WebSocket: WS });
    const create = async () => {
      const c = await ParleyClient.createAccount({ store: new MemoryStore(), relay: connector, options: TEST_OPTIONS });
      clients.push(c);
      await c.start();
      return c;
    };
    const alice = await create();
    const bob = await create();
    const texts = (c: ParleyClient, peer: ParleyClient) =>
      c.history(peer.accountId).flatMap((h) => (h.content.body.type === 'text' && !h.outgoing ? [h.content.body.text] : []));
    await alice.addContact(bob.accountId, 'bob');
    await bob.addContact(alice.accountId, 'alice');
    await alice.sendText(bob.accountId, 'hello over binary frames');
    await until(() => texts(bob, alice).includes('hello over binary frames'), 15_000, 'bob gets the text');
    await bob.sendText(alice.accountId, 'and back');
    await until(() => texts(alice, bob).includes('and back'), 15_000, 'alice gets the reply');
    expect(counts.binaryIn).toBeGreaterThanOrEqual(2);
    expect(counts.authWithPush).toBeGreaterThanOrEqual(2);
    await until(() => counts.binaryAcks >= 2, 5000, 'binary acks');
    expect(counts.textAcks).toBe(0);
  });
});
