/**
 * Builds test-vectors/push-frames.json (spec/09-relay.md §5.2.2): binary
 * envelope frames with their fields, refused frames with the field named,
 * frames whose delivery record is refused (the envelope still handed on),
 * and ack frames. Built from the spec's CDDL with core's encodeCbor, not with
 * the relay's writer, so the relay test that compares its writer with this
 * file compares two things. Checked by the relay test
 * (websocket-binary-push.test.ts), the client test
 * (relay-client-push-frames.test.ts) and the independent verifier; rewrite it
 * on purpose with
 * `NODE_OPTIONS=--conditions=parley:source node --import tsx packages/relay/test/support/push-frame-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type CborValue, encodeCbor, toHex } from '@parley/core';

export const PUSH_FRAMES_FILE = new URL('../../../../test-vectors/push-frames.json', import.meta.url);

const u64 = (n: number | bigint): Uint8Array => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};
const fill = (n: number, byte: number) => new Uint8Array(n).fill(byte);

interface Fields {
  seq: number;
  account: Uint8Array;
  device: number;
  id: string;
  serverTimestamp: number;
  expiresAt: number;
  envelope: Uint8Array;
  delivery: Uint8Array | null;
}

const T = 1_796_000_000_000;
const record = encodeCbor([fill(16, 0x11), u64(T), Math.floor(T / 86_400_000), fill(32, 0x22), fill(32, 0x33)]);
const base: Fields = {
  seq: 7,
  account: fill(32, 0xa1),
  device: 2,
  id: 'msg-1',
  serverTimestamp: T,
  expiresAt: T + 2_592_000_000,
  envelope: Uint8Array.from({ length: 40 }, (_, i) => i),
  delivery: record,
};

const frameOf = (f: Fields): CborValue[] => [
  'envelope',
  u64(f.seq),
  f.account,
  f.device,
  f.id,
  u64(f.serverTimestamp),
  u64(f.expiresAt),
  f.envelope,
  f.delivery,
];

const fieldsJson = (f: Fields) => ({
  seq: f.seq,
  senderAccount: toHex(f.account),
  senderDevice: f.device,
  id: f.id,
  serverTimestamp: f.serverTimestamp,
  expiresAt: f.expiresAt,
  envelope: toHex(f.envelope),
  delivery: f.delivery === null ? null : toHex(f.delivery),
});

/** A valid frame's array with field `i` replaced. */
const with_ = (i: number, v: CborValue) => {
  const f = frameOf(base);
  f[i] = v;
  return encodeCbor(f);
};

export function buildPushFrames(): string {
  let tcId = 1;
  const valid = [
    { comment: 'a franked envelope (with its delivery record)', fields: base },
    { comment: 'an unfranked envelope: delivery null', fields: { ...base, delivery: null } },
    {
      comment: 'a sealed envelope: sender device 0, the account field the token hash',
      fields: { ...base, device: 0, account: fill(32, 0xb2) },
    },
    {
      comment: 'a seq past 2^32 and an id of 64 characters',
      fields: { ...base, seq: 2 ** 40 + 5, id: 'A-z0.9_:'.repeat(8), device: 0x7fffffff, envelope: fill(300, 0xee) },
    },
  ].map((x) => ({
    tcId: tcId++,
    comment: x.comment,
    ...fieldsJson(x.fields),
    frame: toHex(encodeCbor(frameOf(x.fields))),
    result: 'valid',
  }));

  const records: [string, Uint8Array][] = [
    ['a 15-byte envelope id', encodeCbor([fill(15, 0x11), u64(T), 1, fill(32, 0x22), fill(32, 0x33)])],
    ['acceptedAt past 2^53-1', encodeCbor([fill(16, 0x11), u64(2n ** 60n), 1, fill(32, 0x22), fill(32, 0x33)])],
    ['four fields', encodeCbor([fill(16, 0x11), u64(T), 1, fill(32, 0x22)])],
    ['not CBOR: a lone 0xff', new Uint8Array([0xff])],
  ];
  const badRecords = records.map(([comment, delivery]) => ({
    tcId: tcId++,
    comment: `a frame whose delivery record has ${comment}: the envelope is handed on without a record`,
    ...fieldsJson({ ...base, delivery }),
    frame: toHex(encodeCbor(frameOf({ ...base, delivery }))),
    deliveryError: 'BAD_DELIVERY_RECORD',
    result: 'valid',
  }));

  const frameInvalid: [string, string, Uint8Array][] = [
    ['frame', 'eight fields', encodeCbor(frameOf(base).slice(0, 8))],
    ['frame', 'ten fields', encodeCbor([...frameOf(base), null])],
    ['frame', 'a trailing byte', new Uint8Array([...encodeCbor(frameOf(base)), 0])],
    ['tag', 'the tag "ack"', with_(0, 'ack')],
    ['seq', 'seq 0', with_(1, u64(0))],
    ['seq', 'seq 2^53 (past a safe integer)', with_(1, u64(2n ** 53n))],
    ['seq', 'seq as an integer, not 8 bytes', with_(1, 7)],
    ['sender.account', 'a 31-byte account', with_(2, fill(31, 0xa1))],
    ['sender.deviceId', 'sender device 2^31', with_(3, 0x80000000)],
    ['id', 'an empty id', with_(4, '')],
    ['id', 'an id with a space', with_(4, 'msg 1')],
    ['id', 'an id of 65 characters', with_(4, 'x'.repeat(65))],
    ['serverTimestamp', 'a 7-byte time', with_(5, fill(7, 0))],
    ['expiresAt', 'expiresAt before serverTimestamp', with_(6, u64(T - 1))],
    ['envelope', 'an empty envelope', with_(7, new Uint8Array(0))],
    ['delivery', 'delivery as an integer', with_(8, 0)],
    // Not canonical: sender device 2 written in the one-byte form (0x18 0x02).
    [
      'sender.deviceId',
      'sender device 2 in a longer form than its shortest',
      (() => {
        const good = encodeCbor(frameOf(base));
        const at = 1 + 9 + 9 + 34;
        return new Uint8Array([...good.subarray(0, at), 0x18, 0x02, ...good.subarray(at + 1)]);
      })(),
    ],
  ];
  const invalid = frameInvalid.map(([field, comment, bytes]) => ({
    tcId: tcId++,
    comment,
    frame: toHex(bytes),
    error: 'BAD_PUSH_FRAME',
    field,
    result: 'invalid',
  }));

  const acks = [
    { comment: 'one seq', seqs: [7] },
    { comment: 'three seqs, one past 2^32', seqs: [1, 2, 2 ** 40 + 5] },
  ].map((x) => ({ tcId: tcId++, comment: x.comment, seqs: x.seqs, frame: toHex(encodeCbor(['ack', x.seqs.map(u64)])), result: 'valid' }));
  const ackInvalid: [string, Uint8Array][] = [
    ['no seqs', encodeCbor(['ack', []])],
    ['seq 0', encodeCbor(['ack', [u64(0)]])],
    ['a seq of 9 bytes', encodeCbor(['ack', [fill(9, 1)]])],
    ['a seq as an integer', encodeCbor(['ack', [7]])],
    ['1001 seqs', encodeCbor(['ack', Array.from({ length: 1001 }, (_, i) => u64(i + 1))])],
    ['a third field', encodeCbor(['ack', [u64(7)], null])],
  ];
  const acksInvalid = ackInvalid.map(([comment, bytes]) => ({
    tcId: tcId++,
    comment,
    frame: toHex(bytes),
    error: 'BAD_ACK_FRAME',
    result: 'invalid',
  }));

  const file = {
    description:
      'Binary push frames on the delivery websocket: the envelope frame a relay pushes to a device that asked for "cbor", and the ack frame the device answers with (canonical CBOR of the Parley subset).',
    spec: 'spec/09-relay.md §5.2.2',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      u64: "seq, serverTimestamp, expiresAt and a delivery record's acceptedAt travel as 8-byte big-endian byte strings (at most 2^53-1); here they are numbers.",
      delivery:
        "delivery is the delivery record's CBOR form as the relay stores it, [envelopeId (16 B), acceptedAt (u64), frankKeyId (uint), frank (32 B), frankingTag (32 B)], or null.",
      field: 'For a refused envelope frame, field names the first field (in frame order) that is wrong; "frame" for the array itself.',
      deliveryError:
        'A frame whose delivery record is refused is still a valid frame: the envelope is handed on without a record, with BAD_DELIVERY_RECORD.',
    },
    testGroups: [
      { type: 'EnvelopeFrame', tests: [...valid, ...badRecords] },
      { type: 'EnvelopeFrameInvalid', tests: invalid },
      { type: 'AckFrame', tests: acks },
      { type: 'AckFrameInvalid', tests: acksInvalid },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(PUSH_FRAMES_FILE, buildPushFrames());
  console.log(`wrote ${fileURLToPath(PUSH_FRAMES_FILE)}`);
}
