/**
 * Wire-to-typed conversions shared by the HTTP and websocket sides.
 *
 * A delivered envelope's delivery record (spec/17-franking-and-reports.md
 * §4) is checked for form here, in either of its wire forms (the JSON object
 * of an HTTP fetch or JSON push, the CBOR array of a binary push frame):
 * every field present with its type and length. A record that fails is not thrown on (that would stall the
 * mailbox on one relay mistake): the envelope goes on with `delivery` null
 * and `deliveryError` set, and the SDK refuses the v2 message it carries.
 */
import { ENVELOPE_ID_BYTES, FRANK_BYTES, FRANKING_TAG_BYTES } from '@parley/core';
import { fromBase64Url } from './encoding.ts';
import { RelayError } from './errors.ts';
import { LayoutReader } from './layout-reader.ts';
import type { DeliveryRecord, ReceivedEnvelope, WireDeliveredMessage } from './types.ts';

/** The code of a delivery record without the form of one. */
export const BAD_DELIVERY_RECORD = 'BAD_DELIVERY_RECORD';

/** Frank key periods are day numbers (FRANK_KEY_PERIOD_MS); anything past a 32-bit id is not one (CBOR uints are 32-bit in Parley, 01 §2). */
const MAX_FRANK_KEY_ID = 0xffffffff;

export function decodeDelivered(m: WireDeliveredMessage): ReceivedEnvelope {
  const base = {
    seq: m.seq,
    sender: { accountKey: fromBase64Url(m.sender.account), deviceId: m.sender.deviceId },
    id: m.id,
    serverTimestamp: m.serverTimestamp,
    expiresAt: m.expiresAt,
    envelope: fromBase64Url(m.envelope),
  };
  if (m.delivery === undefined || m.delivery === null) return { ...base, delivery: null };
  try {
    return { ...base, delivery: decodeDeliveryRecord(m.delivery) };
  } catch (e) {
    if (!(e instanceof RelayError)) throw e;
    return { ...base, delivery: null, deliveryError: e.code };
  }
}

function bad(field: string, why: string): RelayError {
  return new RelayError(200, BAD_DELIVERY_RECORD, `delivery record: "${field}" ${why}`, { field });
}

function bytesField(o: Record<string, unknown>, field: string, length: number): Uint8Array {
  const v = o[field];
  // A base64url string of `length` bytes has exactly this many characters (no padding).
  if (typeof v !== 'string' || v.length !== Math.ceil((length * 4) / 3)) throw bad(field, `expected ${length} bytes in base64url`);
  try {
    return fromBase64Url(v);
  } catch {
    throw bad(field, 'is not canonical base64url');
  }
}

function uintField(o: Record<string, unknown>, field: string, max: number): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw bad(field, `expected an integer in 0..${max}`);
  return v;
}

/** Throws RelayError BAD_DELIVERY_RECORD unless `w` has the form of a delivery record. Unknown fields are ignored (a newer relay may add some). */
export function decodeDeliveryRecord(w: unknown): DeliveryRecord {
  if (typeof w !== 'object' || w === null || Array.isArray(w)) throw bad('delivery', 'expected an object');
  const o = w as Record<string, unknown>;
  return {
    envelopeId: bytesField(o, 'envelopeId', ENVELOPE_ID_BYTES),
    acceptedAt: uintField(o, 'acceptedAt', Number.MAX_SAFE_INTEGER),
    frankKeyId: uintField(o, 'frankKeyId', MAX_FRANK_KEY_ID),
    frank: bytesField(o, 'frank', FRANK_BYTES),
    frankingTag: bytesField(o, 'frankingTag', FRANKING_TAG_BYTES),
  };
}

/** The stored form is 5 short fields (well under this); a longer one is refused before it is read. */
const MAX_DELIVERY_RECORD_BYTES = 256;
/** array(5): the record's head. */
const RECORD_HEAD = 0x85;

/**
 * The delivery record in its CBOR form, as a binary push frame carries it (spec/09-relay.md §5.2.2):
 * [envelopeId: bstr .size 16, acceptedAt: bstr .size 8 (ms, big-endian), frankKeyId: uint,
 *  frank: bstr .size 32, frankingTag: bstr .size 32], canonical. Throws RelayError BAD_DELIVERY_RECORD.
 */
export function decodeDeliveryRecordCbor(bytes: Uint8Array): DeliveryRecord {
  if (bytes.length > MAX_DELIVERY_RECORD_BYTES) throw bad('delivery', `longer than ${MAX_DELIVERY_RECORD_BYTES} bytes`);
  if (bytes[0] !== RECORD_HEAD) throw bad('delivery', 'expected an array of 5 fields');
  const r = new LayoutReader(bytes.subarray(1), bad);
  const record = {
    envelopeId: r.bytes('envelopeId', ENVELOPE_ID_BYTES, ENVELOPE_ID_BYTES),
    // Beyond a safe integer is no time this relay wrote (and the JSON form could not carry it either).
    acceptedAt: r.u64('acceptedAt', 0),
    frankKeyId: r.uint('frankKeyId', MAX_FRANK_KEY_ID),
    frank: r.bytes('frank', FRANK_BYTES, FRANK_BYTES),
    frankingTag: r.bytes('frankingTag', FRANKING_TAG_BYTES, FRANKING_TAG_BYTES),
  };
  r.end('delivery');
  return record;
}
