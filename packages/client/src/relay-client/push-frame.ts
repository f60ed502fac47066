/**
 * Binary push frames, the device's side (spec/09-relay.md §5.2.2): the
 * envelope frame a relay pushes to a device that asked for "cbor" at
 * authentication, and the binary ack frame the device answers with.
 *
 *   relay  -> ["envelope", seq: u64, senderAccount: bstr .size 32, senderDevice: uint,
 *              id: tstr, serverTimestamp: u64, expiresAt: u64, envelope: bstr, delivery: bstr / null]
 *   device -> ["ack", [+ seq: u64]]
 *   u64 = bstr .size 8 (big-endian, at most 2^53-1)
 *
 * The frame is read by its exact layout in deterministic CBOR
 * (layout-reader.ts: one canonical encoding, bounded size), every field
 * checked for type, length and range as it is read. A frame that fails is a
 * RelayError BAD_PUSH_FRAME naming the field: the receiver reports it and
 * goes on with the next frame. A delivery
 * record that fails its own checks does not fail the frame: the envelope
 * goes on with `deliveryError` set, exactly as on the JSON path (decode.ts).
 */
import { type CborValue, encodeCbor, limits } from '@parley/core';
import { decodeDeliveryRecordCbor } from './decode.ts';
import { LayoutReader } from './layout-reader.ts';
import { RelayError } from './errors.ts';
import type { ReceivedEnvelope } from './types.ts';

/** The code of a binary push frame without the form of one. */
export const BAD_PUSH_FRAME = 'BAD_PUSH_FRAME';

/** Acknowledged seqs per ack frame: the relay's bound for JSON and binary acks alike (§5.2). */
export const MAX_ACKS_PER_FRAME = 1000;

/**
 * Largest push frame decoded: the largest envelope core accepts plus the
 * other fields (tag, seq, account, device, 64-character id, two times, a
 * delivery record of at most 256 bytes: under 600 bytes), rounded up.
 */
export const MAX_PUSH_FRAME_BYTES = limits.MAX_MESSAGE_BYTES + 1024;

const ENVELOPE_TAG = 'envelope';
const FIELDS = 9;
const ACCOUNT_BYTES = 32;
const U64_BYTES = 8;
const TWO_32 = 0x1_0000_0000;

function bad(field: string, why: string): RelayError {
  return new RelayError(0, BAD_PUSH_FRAME, `push frame: "${field}" ${why}`, { field });
}

/** 0x89 (array of 9), then "envelope" as a text string. */
const FRAME_START = new Uint8Array([0x80 | FIELDS, 0x60 | ENVELOPE_TAG.length, ...new TextEncoder().encode(ENVELOPE_TAG)]);

/** Whether a websocket message is binary (ws hands over a Buffer, browsers an ArrayBuffer with binaryType "arraybuffer"). */
export function binaryFrame(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return undefined;
}

/** Decodes one binary envelope frame, or throws RelayError BAD_PUSH_FRAME naming the first field that is wrong. */
export function decodeEnvelopeFrame(frame: Uint8Array): ReceivedEnvelope {
  if (frame.length > MAX_PUSH_FRAME_BYTES) throw bad('frame', `longer than ${MAX_PUSH_FRAME_BYTES} bytes`);
  const r = new LayoutReader(frame, bad);
  // The array head first: a frame with a field missing or added is refused as a frame, not at its tag.
  r.literal(FRAME_START.subarray(0, 1), 'frame', `an array of ${FIELDS} fields`);
  r.literal(FRAME_START.subarray(1), 'tag', `"${ENVELOPE_TAG}"`);
  const seq = r.u64('seq', 1);
  const accountKey = r.bytes('sender.account', ACCOUNT_BYTES, ACCOUNT_BYTES);
  // Device 0 is the sealed sender's (spec 12 §5): the relay knows no sender device.
  const deviceId = r.uint('sender.deviceId', limits.MAX_DEVICE_ID);
  const id = r.clientId('id');
  const serverTimestamp = r.u64('serverTimestamp', 0);
  const expiresAt = r.u64('expiresAt', serverTimestamp);
  const envelope = r.bytes('envelope', 1, limits.MAX_MESSAGE_BYTES);
  const base = { seq, sender: { accountKey, deviceId }, id, serverTimestamp, expiresAt, envelope };
  if (r.null()) {
    r.end('frame');
    return { ...base, delivery: null };
  }
  const record = r.view('delivery', MAX_PUSH_FRAME_BYTES);
  r.end('frame');
  try {
    return { ...base, delivery: decodeDeliveryRecordCbor(record) };
  } catch (e) {
    if (!(e instanceof RelayError)) throw e;
    return { ...base, delivery: null, deliveryError: e.code };
  }
}

/** An ack frame for 1..MAX_ACKS_PER_FRAME seqs. */
export function encodeAckFrame(seqs: readonly number[]): Uint8Array {
  if (seqs.length === 0 || seqs.length > MAX_ACKS_PER_FRAME) throw new RangeError(`an ack frame carries 1..${MAX_ACKS_PER_FRAME} seqs`);
  return encodeCbor([
    'ack',
    seqs.map((seq): CborValue => {
      if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('a seq is an integer in 1..2^53-1');
      const out = new Uint8Array(U64_BYTES);
      const view = new DataView(out.buffer);
      view.setUint32(0, Math.floor(seq / TWO_32));
      view.setUint32(4, seq >>> 0);
      return out;
    }),
  ]);
}
