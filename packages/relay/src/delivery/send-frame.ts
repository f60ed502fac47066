/**
 * The websocket send frame: a binary frame of canonical CBOR (spec/09-relay.md
 * §5.4), so envelopes travel as raw bytes, not base64 inside JSON.
 *
 *   ["send", counter, ttlSeconds / null,
 *     [[accountKey (32 B), deviceId, id (text), envelope (bytes), certificateHash (32 B) / null,
 *       frankingTag (32 B) / null (optional)], ...]]
 *
 * Read in two steps (spec/09-relay.md §5.4): the head (tag, counter, TTL,
 * the elements' count) by hand, so a frame refused for its counter, the
 * in-flight bound, the rate or its count costs a few bytes; then, once
 * taken, the elements with core's one-pass strict decoder `readCbor` (one
 * encoding per value; envelopes stay views into the frame) within an item
 * budget of what that many legal elements hold, then checked field by field
 * with the same bounds as the HTTP body schema (schemas.ts SendBody).
 */
import { limits as coreLimits, readCbor } from '@parley/core';
import { relayError } from '../errors.ts';
import { type SendElement, tooManyEnvelopes } from './send.ts';

/** The same ids the HTTP send takes (schemas.ts ClientId). */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Counters and TTLs are CBOR unsigned integers of Parley's subset: at most 2^32-1. */
const MAX_UINT32 = 0xffffffff;

export interface SendFrame {
  /** 1 for the first send frame on a connection, one more for each next one. */
  readonly counter: number;
  readonly ttlSeconds?: number;
  /** How many elements the frame's list claims (its head; not decoded yet). */
  readonly count: number;
  /** The encoded elements list: decoded by `readElements` only once the frame is taken (counter, in flight, rate). */
  readonly elementBytes: Uint8Array;
}

/**
 * Items one element can hold: its array and at most 6 fields (account, device, id, envelope, certificate
 * hash, franking tag). `readElements` gives the decoder 1 + count x this: a legal frame never needs more,
 * and a hostile one (64 KiB of empty strings or arrays: 65,000 items) is refused at the first item past it.
 */
export const ITEMS_PER_ELEMENT = 7;

const malformed = (what: string) => relayError('MALFORMED', `send frame: ${what}`);

const isUint = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/** The start of every send frame: array(4) head, then the text "send". */
const FRAME_START = Uint8Array.of(0x84, 0x64, 0x73, 0x65, 0x6e, 0x64);
const CBOR_NULL = 0xf6;

/**
 * Reads a send frame's head: ["send", counter, ttl, <list head>, ...], in
 * canonical CBOR (the same rules as core's reader: shortest-form heads,
 * 4-byte arguments at most), without decoding the elements. Throws MALFORMED:
 * then there is no counter to answer under, and the relay closes the
 * connection (4003). Why the head alone: the counter, the in-flight bound and
 * the rate decide whether the frame is taken at all (spec/09-relay.md §5.4),
 * and a refused frame should cost the relay a few bytes, not its elements.
 */
export function readSendHead(bytes: Uint8Array, maxBytes: number): SendFrame {
  if (bytes.length > maxBytes) throw malformed(`more than ${maxBytes} bytes`);
  for (let i = 0; i < FRAME_START.length; i++) {
    if (bytes[i] !== FRAME_START[i]) throw malformed('expected ["send", counter, ttl, elements]');
  }
  let at = FRAME_START.length;
  /** A canonical head of `major` at `at`: its argument (0..2^32-1), or undefined when it is not one. */
  const head = (major: number): number | undefined => {
    const first = bytes[at];
    if (first === undefined || first >> 5 !== major) return undefined;
    const info = first & 0x1f;
    const width = info < 24 ? 0 : info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : -1;
    if (width < 0 || at + 1 + width > bytes.length) return undefined;
    let v = info < 24 ? info : 0;
    for (let i = 1; i <= width; i++) v = v * 256 + (bytes[at + i] as number);
    // Shortest form only (01 §2.1): a value that fits a narrower head is not canonical.
    if ((width === 1 && v < 24) || (width === 2 && v < 0x100) || (width === 4 && v < 0x1_0000)) return undefined;
    at += 1 + width;
    return v;
  };
  const counter = head(0);
  if (!isUint(counter, 1, MAX_UINT32)) throw malformed('counter must be 1..2^32-1');
  let ttl: number | undefined;
  if (bytes[at] === CBOR_NULL) at++;
  else {
    ttl = head(0);
    if (!isUint(ttl, 1, MAX_UINT32)) throw malformed('ttlSeconds must be null or a positive integer');
  }
  const elementBytes = bytes.subarray(at);
  const count = head(4);
  if (count === undefined) throw malformed('elements must be an array');
  // Every element takes at least one byte: a count beyond the bytes left is a truncated frame, not a large one.
  if (count > bytes.length - at) throw malformed('truncated');
  return { counter, ...(ttl === undefined ? {} : { ttlSeconds: ttl }), count, elementBytes };
}

/**
 * Decodes the elements list of a frame whose head was read, with an item
 * budget of what `frame.count` legal elements can hold (refused: OVERSIZED),
 * or throws MALFORMED (not canonical CBOR of the subset, trailing bytes):
 * either way the frame stream is no longer trusted (4003). The caller has
 * checked `count` against maxEnvelopesPerSend first.
 */
export function readElements(frame: SendFrame, maxBytes: number): readonly unknown[] {
  let value: unknown;
  try {
    value = readCbor(frame.elementBytes, 'send frame elements', maxBytes, { maxItems: 1 + frame.count * ITEMS_PER_ELEMENT });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'OVERSIZED') throw malformed('not one canonical CBOR item of the Parley subset');
    throw relayError('OVERSIZED', `send frame: elements hold more than ${ITEMS_PER_ELEMENT} items each`, {
      limit: 1 + frame.count * ITEMS_PER_ELEMENT,
    });
  }
  return value as readonly unknown[];
}

/**
 * The elements of a send frame, checked with the HTTP body's bounds: throws
 * MALFORMED, or TOO_MANY_ENVELOPES past `maxElements` (maxEnvelopesPerSend).
 */
export function sendElements(list: readonly unknown[], maxElements: number): SendElement[] {
  if (list.length === 0) throw malformed('elements must not be empty');
  if (list.length > maxElements) throw tooManyEnvelopes(maxElements);
  return list.map((item: unknown, i): SendElement => {
    if (!Array.isArray(item) || (item.length !== 5 && item.length !== 6)) throw malformed(`elements[${i}]: expected 5 or 6 fields`);
    const [accountKey, deviceId, clientId, envelope, certificateHash, frankingTag = null] = item as unknown[];
    if (!(accountKey instanceof Uint8Array) || accountKey.length !== 32) throw malformed(`elements[${i}].account: 32 bytes expected`);
    if (!isUint(deviceId, 1, coreLimits.MAX_DEVICE_ID)) throw malformed(`elements[${i}].deviceId: 1..2^31-1 expected`);
    if (typeof clientId !== 'string' || !CLIENT_ID.test(clientId)) throw malformed(`elements[${i}].id: 1-64 of [A-Za-z0-9._:-]`);
    if (!(envelope instanceof Uint8Array)) throw malformed(`elements[${i}].envelope: bytes expected`);
    if (certificateHash !== null && !(certificateHash instanceof Uint8Array && certificateHash.length === 32)) {
      throw malformed(`elements[${i}].certificateHash: null or 32 bytes expected`);
    }
    if (frankingTag !== null && !(frankingTag instanceof Uint8Array && frankingTag.length === 32)) {
      throw malformed(`elements[${i}].frankingTag: null or 32 bytes expected`);
    }
    return {
      accountKey,
      deviceId,
      clientId,
      envelope,
      ...(certificateHash === null ? {} : { certificateHash: certificateHash as Uint8Array }),
      ...(frankingTag === null ? {} : { frankingTag: frankingTag as Uint8Array }),
    };
  });
}
