/**
 * Binary push frames, the device's side (spec/09-relay.md §5.2.1): the
 * envelope frame a relay pushes to a device that asked for "cbor" at
 * authentication, and the binary ack frame the device answers with.
 *
 *   relay  -> ["envelope", seq: u64, senderAccount: bstr .size 32, senderDevice: uint,
 *              id: tstr, serverTimestamp: u64, expiresAt: u64, envelope: bstr, delivery: bstr / null]
 *   device -> ["ack", [+ seq: u64]]
 *   u64 = bstr .size 8 (big-endian, at most 2^53-1)
 *
 * The frame is decoded with core's strict decoder (one canonical encoding,
 * bounded size and depth), then every field is checked for type, length
 * and range. A frame that fails is a RelayError BAD_PUSH_FRAME naming the
 * field: the receiver reports it and goes on with the next frame. A delivery
 * record that fails its own checks does not fail the frame: the envelope
 * goes on with `deliveryError` set, exactly as on the JSON path (decode.ts).
 */
import { type CborValue, decodeCbor, encodeCbor, limits } from '@parley/core';
import { decodeDeliveryRecordCbor } from './decode.ts';
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
/** The relay's client ids (spec §4.3): 1-64 of A-Z a-z 0-9 . _ : - */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

function bad(field: string, why: string): RelayError {
  return new RelayError(0, BAD_PUSH_FRAME, `push frame: "${field}" ${why}`, { field });
}

/** 8 big-endian bytes as a safe integer (anything larger is no seq or time a relay writes). */
function u64(v: unknown, field: string, min: number): number {
  if (!(v instanceof Uint8Array) || v.length !== U64_BYTES) throw bad(field, 'expected 8 bytes');
  const view = new DataView(v.buffer, v.byteOffset, U64_BYTES);
  const hi = view.getUint32(0);
  if (hi > 0x1f_ffff) throw bad(field, 'beyond 2^53-1');
  const n = hi * TWO_32 + view.getUint32(4);
  if (n < min) throw bad(field, `below ${min}`);
  return n;
}

function bytes(v: unknown, field: string, min: number, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw bad(field, 'expected a byte string');
  if (v.length < min || v.length > max) throw bad(field, min === max ? `expected ${min} bytes` : `expected ${min}..${max} bytes`);
  // A copy: the decoded value aliases the socket's buffer, which the caller should not keep alive.
  return new Uint8Array(v);
}

/** Whether a websocket message is binary (ws hands over a Buffer, browsers an ArrayBuffer with binaryType "arraybuffer"). */
export function binaryFrame(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return undefined;
}

/** Decodes one binary envelope frame, or throws RelayError BAD_PUSH_FRAME. */
export function decodeEnvelopeFrame(frame: Uint8Array): ReceivedEnvelope {
  let value: unknown;
  try {
    value = decodeCbor(frame, 'push frame', MAX_PUSH_FRAME_BYTES);
  } catch {
    throw bad('frame', `is not one canonical CBOR item of the Parley subset within ${MAX_PUSH_FRAME_BYTES} bytes`);
  }
  if (!Array.isArray(value)) throw bad('frame', 'expected an array');
  if (value[0] !== ENVELOPE_TAG) throw bad('tag', `expected "${ENVELOPE_TAG}"`);
  if (value.length !== FIELDS) throw bad('frame', `expected ${FIELDS} fields`);
  const [, seqField, accountField, deviceField, idField, atField, expiresField, envelopeField, deliveryField] = value as unknown[];
  const seq = u64(seqField, 'seq', 1);
  const accountKey = bytes(accountField, 'sender.account', ACCOUNT_BYTES, ACCOUNT_BYTES);
  // Device 0 is the sealed sender's (spec 12 §5): the relay knows no sender device.
  if (typeof deviceField !== 'number' || !Number.isInteger(deviceField) || deviceField < 0 || deviceField > limits.MAX_DEVICE_ID) {
    throw bad('sender.deviceId', `expected an integer in 0..${limits.MAX_DEVICE_ID}`);
  }
  if (typeof idField !== 'string' || !CLIENT_ID.test(idField)) throw bad('id', 'expected 1-64 of [A-Za-z0-9._:-]');
  const serverTimestamp = u64(atField, 'serverTimestamp', 0);
  const expiresAt = u64(expiresField, 'expiresAt', serverTimestamp);
  const envelope = bytes(envelopeField, 'envelope', 1, limits.MAX_MESSAGE_BYTES);
  if (deliveryField !== null && !(deliveryField instanceof Uint8Array)) throw bad('delivery', 'expected a byte string or null');
  const base = { seq, sender: { accountKey, deviceId: deviceField }, id: idField, serverTimestamp, expiresAt, envelope };
  if (deliveryField === null) return { ...base, delivery: null };
  try {
    return { ...base, delivery: decodeDeliveryRecordCbor(deliveryField) };
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
