/**
 * Binary push frames (spec/09-relay.md §5.2.2): what a device that asked
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
import { readCbor } from '@parley/core';
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

/**
 * The most CBOR items of a legal ack frame: the outer array, "ack", the list and
 * MAX_ACKS_PER_REQUEST seqs. Decoding stops at the first item past it: the byte
 * bound alone would let a frame of one-byte items (empty arrays) cost 9,000.
 */
export const MAX_ACK_FRAME_ITEMS = 3 + MAX_ACKS_PER_REQUEST;

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

/** Bytes of a CBOR head for `arg` in its shortest form (deterministic CBOR, RFC 8949 §4.2.1). */
function headBytes(arg: number): number {
  return arg < 24 ? 1 : arg < 0x100 ? 2 : arg < 0x1_0000 ? 3 : 5;
}

/** Bytes of a byte string of `n` bytes, head included. */
const bstrBytes = (n: number) => headBytes(n) + n;

/** Writes a shortest-form head of `major` (0 uint, 2 bstr, 3 tstr, 4 array) with `arg` at `at`; returns the next offset. */
function writeHead(out: Uint8Array, at: number, major: number, arg: number): number {
  const m = major << 5;
  if (arg < 24) {
    out[at] = m | arg;
    return at + 1;
  }
  if (arg < 0x100) {
    out[at] = m | 24;
    out[at + 1] = arg;
    return at + 2;
  }
  if (arg < 0x1_0000) {
    out[at] = m | 25;
    out[at + 1] = arg >>> 8;
    out[at + 2] = arg & 0xff;
    return at + 3;
  }
  out[at] = m | 26;
  out[at + 1] = arg >>> 24;
  out[at + 2] = (arg >>> 16) & 0xff;
  out[at + 3] = (arg >>> 8) & 0xff;
  out[at + 4] = arg & 0xff;
  return at + 5;
}

function writeBytes(out: Uint8Array, at: number, bytes: Uint8Array): number {
  const next = writeHead(out, at, 2, bytes.length);
  out.set(bytes, next);
  return next + bytes.length;
}

function writeU64(out: Uint8Array, at: number, n: number): number {
  out[at] = 0x48; // bstr, 8 bytes
  const hi = Math.floor(n / TWO_32);
  const lo = n >>> 0;
  out[at + 1] = hi >>> 24;
  out[at + 2] = (hi >>> 16) & 0xff;
  out[at + 3] = (hi >>> 8) & 0xff;
  out[at + 4] = hi & 0xff;
  out[at + 5] = lo >>> 24;
  out[at + 6] = (lo >>> 16) & 0xff;
  out[at + 7] = (lo >>> 8) & 0xff;
  out[at + 8] = lo & 0xff;
  return at + 9;
}

const TAG_BYTES = new TextEncoder().encode(ENVELOPE_FRAME_TAG);
const CBOR_NULL = 0xf6;
const textEncoder = new TextEncoder();

/** `text` when it is all ASCII (client ids are, schemas.ts ClientId): its bytes are its char codes. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * One stored envelope as a binary push frame, written straight into one
 * buffer: the same bytes as core's `encodeCbor` of the frame's array
 * (deterministic CBOR; test/websocket-binary-push.test.ts compares the two),
 * at a fraction of its cost, since this runs once per pushed envelope (a
 * third of a generic encode, and no intermediate array of u64 strings).
 * The buffer comes unzeroed from Node's pool (every byte is written below)
 * and an ASCII id is copied without a TextEncoder: issue 15's profile.
 */
export function encodeEnvelopeFrame(m: StoredMessage): Uint8Array {
  const clientId = m.clientId;
  const ascii = isAscii(clientId);
  const id = ascii ? undefined : textEncoder.encode(clientId);
  const idLength = id ? id.length : clientId.length;
  const delivery = m.delivery;
  const account = m.sender.accountKey;
  // array(9), tag, seq and the two times (9 bytes each as u64), then the fields of variable length.
  const fixed = 1 + 1 + TAG_BYTES.length + 3 * 9;
  const length =
    fixed +
    bstrBytes(account.length) +
    headBytes(m.sender.deviceId) +
    headBytes(idLength) +
    idLength +
    bstrBytes(m.envelope.length) +
    (delivery === undefined ? 1 : bstrBytes(delivery.length));
  const out: Uint8Array = Buffer.allocUnsafe(length);
  let at = writeHead(out, 0, 4, 9);
  at = writeHead(out, at, 3, TAG_BYTES.length);
  out.set(TAG_BYTES, at);
  at += TAG_BYTES.length;
  at = writeU64(out, at, m.seq);
  at = writeBytes(out, at, account);
  at = writeHead(out, at, 0, m.sender.deviceId);
  at = writeHead(out, at, 3, idLength);
  if (id) out.set(id, at);
  else for (let i = 0; i < idLength; i++) out[at + i] = clientId.charCodeAt(i);
  at += idLength;
  at = writeU64(out, at, m.serverTimestamp);
  at = writeU64(out, at, m.expiresAt);
  at = writeBytes(out, at, m.envelope);
  // The stored CBOR form (franking/delivery.ts), as stored: the device checks it.
  if (delivery === undefined) out[at++] = CBOR_NULL;
  else at = writeBytes(out, at, delivery);
  // Unzeroed memory must never leave: every byte was written, or this is a bug.
  if (at !== length) throw new Error(`push frame: wrote ${at} of ${length} bytes`);
  return out;
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
    value = readCbor(bytes, 'ack frame', MAX_ACK_FRAME_BYTES, { maxItems: MAX_ACK_FRAME_ITEMS });
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
