/**
 * Binary push frames (spec/09-relay.md §5.2.1): what a device that asked
 * for them at authentication receives instead of the JSON envelope frame,
 * and the binary acknowledgement it may answer with.
 *
 *   relay  -> ["envelope", seq: u64, senderAccount: bstr .size 32, senderDevice: uint,
 *              id: tstr, serverTimestamp: u64, expiresAt: u64, envelope: bstr, delivery: bstr / null]
 *   device -> ["ack", [+ seq: u64]]            (1..MAX_ACKS_PER_REQUEST seqs)
 *
 *   u64 = bstr .size 8   (big-endian; Parley's CBOR integers are 32-bit, 01 §2,
 *                         and seqs and millisecond times are not)
 *
 * Why: a JSON envelope frame costs base64 and JSON of the envelope on the
 * relay and JSON.parse plus base64 decoding on the device (47-60 µs per
 * 1 KiB envelope on the listening devices at 5,000/s, issue 15). Here the
 * envelope and the stored delivery record go out as raw bytes, and the
 * delivery record is not even decoded on the relay.
 */
import { decodeCbor, encodeCbor } from '@parley/core';
import { MAX_ACKS_PER_REQUEST } from '../schemas.ts';
import type { StoredMessage } from '../storage/types.ts';

/** The push formats a device can ask for in its auth frame (spec §5.1); "json" is the default. */
export const PUSH_FORMATS = ['json', 'cbor'] as const;
export type PushFormat = (typeof PUSH_FORMATS)[number];

export const ENVELOPE_FRAME_TAG = 'envelope';
export const ACK_FRAME_TAG = 'ack';

const U64_BYTES = 8;
const TWO_32 = 0x1_0000_0000;

/**
 * The largest binary ack frame: array(2) head (1) + "ack" (4) + array(1000)
 * head (3) + 1000 × (bstr head (1) + 8). Decoding refuses anything longer
 * before parsing it, so a hostile frame costs at most this much work.
 */
export const MAX_ACK_FRAME_BYTES = 1 + 4 + 3 + MAX_ACKS_PER_REQUEST * (1 + U64_BYTES);

/** `n` (0..2^53-1) as 8 bytes, big-endian. */
export function u64(n: number): Uint8Array {
  const out = new Uint8Array(U64_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(n / TWO_32));
  view.setUint32(4, n >>> 0);
  return out;
}

/** 8 big-endian bytes as a number, or undefined past 2^53-1 (no seq or time of this relay is). */
export function readU64(b: unknown): number | undefined {
  if (!(b instanceof Uint8Array) || b.length !== U64_BYTES) return undefined;
  const view = new DataView(b.buffer, b.byteOffset, U64_BYTES);
  const hi = view.getUint32(0);
  if (hi > 0x1f_ffff) return undefined;
  return hi * TWO_32 + view.getUint32(4);
}

/** One stored envelope as a binary push frame. */
export function encodeEnvelopeFrame(m: StoredMessage): Uint8Array {
  return encodeCbor([
    ENVELOPE_FRAME_TAG,
    u64(m.seq),
    m.sender.accountKey,
    m.sender.deviceId,
    m.clientId,
    u64(m.serverTimestamp),
    u64(m.expiresAt),
    m.envelope,
    // The stored CBOR form (franking/delivery.ts), as stored: the device checks it.
    m.delivery ?? null,
  ]);
}

/**
 * Whether a binary frame from an authenticated device is meant as an ack
 * frame: a short array (one-byte head, major type 4) whose first item is the
 * text "ack". Canonical CBOR has one encoding of that start, so this peek
 * decides without decoding; anything else goes to the send path, which
 * closes on what it cannot read.
 */
export function isAckFrame(bytes: Uint8Array): boolean {
  const head = bytes[0] ?? 0;
  return (
    bytes.length >= 5 && head >= 0x80 && head <= 0x97 && bytes[1] === 0x63 && bytes[2] === 0x61 && bytes[3] === 0x63 && bytes[4] === 0x6b
  );
}

/**
 * The seqs of a binary ack frame, or undefined when it is not exactly
 * ["ack", [1..1000 seqs as u64, each 1..2^53-1]] in canonical CBOR: the
 * relay then closes the connection (4003), as for a malformed JSON ack.
 */
export function decodeAckFrame(bytes: Uint8Array): number[] | undefined {
  let value: unknown;
  try {
    value = decodeCbor(bytes, 'ack frame', MAX_ACK_FRAME_BYTES);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2 || value[0] !== ACK_FRAME_TAG) return undefined;
  const list: unknown = value[1];
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ACKS_PER_REQUEST) return undefined;
  const seqs: number[] = [];
  for (const item of list) {
    const seq = readU64(item);
    if (seq === undefined || seq === 0) return undefined;
    seqs.push(seq);
  }
  return seqs;
}
