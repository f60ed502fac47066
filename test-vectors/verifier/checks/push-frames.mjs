/**
 * push-frames.json against spec/09-relay.md §5.2.1, on the verifier's own
 * cborg-based decoder: envelope frames decode to their fields (a delivery
 * record that is not one is refused on its own, BAD_DELIVERY_RECORD, and the
 * frame stands), refused frames fail at the named field, and ack frames
 * encode their seqs (or are refused, BAD_ACK_FRAME).
 */
import { decode, encode } from '../lib/cbor.mjs';
import { refuses, same, truth } from '../lib/check.mjs';
import { Limits } from '../lib/constants.mjs';
import { fail } from '../lib/errors.mjs';
import { fromHex as h, toHex } from '../lib/hex.mjs';

const MAX_SAFE = 2 ** 53 - 1;
const MAX_DEVICE_ID = 2 ** 31 - 1;
const MAX_ACKS = 1000;
/** MAX_MESSAGE_BYTES plus 1 KiB for the other fields (09 §5.2.1): a frame longer than this is refused unread. */
const MAX_FRAME_BYTES = Limits.MAX_MESSAGE_BYTES + 1024;

/** A u64 (8 bytes, big-endian) as a number, or a refusal naming `field`. */
function u64(v, field, min, code) {
  if (!(v instanceof Uint8Array) || v.length !== 8) fail(code, `${field}: not 8 bytes`);
  const n = Buffer.from(v).readBigUInt64BE(0);
  if (n > BigInt(MAX_SAFE) || n < BigInt(min)) fail(code, `${field}: out of range`);
  return Number(n);
}

/** A refusal of a frame carries the field it failed at: the vectors name it. */
class FieldError extends Error {
  constructor(field) {
    super(field);
    this.field = field;
  }
}

function record(bytes) {
  const code = 'BAD_DELIVERY_RECORD';
  let r;
  try {
    r = decode(bytes, 'delivery', 256);
  } catch {
    fail(code, 'not canonical CBOR');
  }
  if (!Array.isArray(r) || r.length !== 5) fail(code, 'not 5 fields');
  const is = (x, n) => x instanceof Uint8Array && x.length === n;
  if (!is(r[0], 16) || !is(r[3], 32) || !is(r[4], 32)) fail(code, 'a byte string of the wrong length');
  u64(r[1], 'acceptedAt', 0, code);
  if (typeof r[2] !== 'number') fail(code, 'frankKeyId');
  return r;
}

/** Decodes an envelope frame as §5.2.1 writes it; throws FieldError(field) on the first field that is wrong. */
function envelopeFrame(bytes) {
  let v;
  try {
    v = decode(bytes, 'frame', MAX_FRAME_BYTES);
  } catch {
    // Not canonical: the field is where the reading stopped, which the spec does not pin; the frame is refused.
    throw new FieldError(null);
  }
  if (!Array.isArray(v) || v.length !== 9) throw new FieldError('frame');
  const check = (ok, field) => {
    if (!ok) throw new FieldError(field);
  };
  check(v[0] === 'envelope', 'tag');
  const num = (x, field, min) => {
    try {
      return u64(x, field, min, 'X');
    } catch {
      throw new FieldError(field);
    }
  };
  const seq = num(v[1], 'seq', 1);
  check(v[2] instanceof Uint8Array && v[2].length === 32, 'sender.account');
  check(typeof v[3] === 'number' && v[3] <= MAX_DEVICE_ID, 'sender.deviceId');
  check(typeof v[4] === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(v[4]), 'id');
  const serverTimestamp = num(v[5], 'serverTimestamp', 0);
  const expiresAt = num(v[6], 'expiresAt', serverTimestamp);
  check(v[7] instanceof Uint8Array && v[7].length >= 1 && v[7].length <= Limits.MAX_MESSAGE_BYTES, 'envelope');
  check(v[8] === null || v[8] instanceof Uint8Array, 'delivery');
  return {
    seq,
    senderAccount: toHex(v[2]),
    senderDevice: v[3],
    id: v[4],
    serverTimestamp,
    expiresAt,
    envelope: toHex(v[7]),
    delivery: v[8] === null ? null : toHex(v[8]),
  };
}

function ackFrame(bytes) {
  const v = decode(bytes, 'ack frame', 1 + 4 + 3 + MAX_ACKS * 9);
  if (!Array.isArray(v) || v.length !== 2 || v[0] !== 'ack' || !Array.isArray(v[1])) fail('BAD_ACK_FRAME', 'not ["ack", [...]]');
  if (v[1].length === 0 || v[1].length > MAX_ACKS) fail('BAD_ACK_FRAME', 'not 1..1000 seqs');
  return v[1].map((s) => u64(s, 'seq', 1, 'BAD_ACK_FRAME'));
}

export function checkPushFrames(f) {
  for (const g of f.groups('EnvelopeFrame')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const got = envelopeFrame(h(t.frame));
        for (const k of Object.keys(got)) same(k, got[k], t[k]);
        if (t.deliveryError) refuses('delivery', () => record(h(t.delivery)), t.deliveryError);
        else if (t.delivery !== null) record(h(t.delivery));
      });
    }
  }
  for (const g of f.groups('EnvelopeFrameInvalid')) {
    for (const t of g.tests) {
      f.run(t, () => {
        truth(`error is BAD_PUSH_FRAME (${t.error})`, t.error === 'BAD_PUSH_FRAME');
        try {
          envelopeFrame(h(t.frame));
        } catch (e) {
          if (!(e instanceof FieldError)) throw e;
          // A non-canonical encoding is refused wherever a reader meets it; the vector's field is where the reference's does.
          if (e.field !== null) same('field', e.field, t.field);
          return;
        }
        truth('frame: accepted, vector expects it refused', false);
      });
    }
  }
  for (const g of f.groups('AckFrame')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('frame', encode(['ack', t.seqs.map((s) => Uint8Array.from(Buffer.from(s.toString(16).padStart(16, '0'), 'hex')))]), t.frame);
        same('seqs', JSON.stringify(ackFrame(h(t.frame))), JSON.stringify(t.seqs));
      });
    }
  }
  for (const g of f.groups('AckFrameInvalid')) {
    for (const t of g.tests) {
      f.run(t, () => {
        // Refused as an ack: a frame that is not one, or one whose CBOR is not canonical.
        try {
          ackFrame(h(t.frame));
        } catch (e) {
          if (e?.code === 'BAD_ACK_FRAME' || e?.code === 'MALFORMED' || e?.code === 'OVERSIZED') return;
          throw e;
        }
        truth('ack: accepted, vector expects it refused', false);
      });
    }
  }
}
