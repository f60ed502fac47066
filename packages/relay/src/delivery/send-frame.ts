/**
 * The websocket send frame: a binary frame of canonical CBOR (spec/09-relay.md
 * §5.4), so envelopes travel as raw bytes, not base64 inside JSON.
 *
 *   ["send", counter, ttlSeconds / null,
 *     [[accountKey (32 B), deviceId, id (text), envelope (bytes), certificateHash (32 B) / null,
 *       frankingTag (32 B) / null (optional)], ...]]
 *
 * Decoded with core's one-pass strict decoder `readCbor` (one encoding per
 * value; a frame in any other encoding is refused; envelopes stay views into
 * the frame, neither copied nor re-encoded), then checked field by field
 * with the same bounds as the HTTP body schema (schemas.ts SendBody).
 */
import { limits as coreLimits, readCbor } from '@parley/core';
import { relayError } from '../errors.ts';
import type { SendElement } from './send.ts';

export const SEND_FRAME_TAG = 'send';

/** The same ids the HTTP send takes (schemas.ts ClientId). */
const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Counters and TTLs are CBOR unsigned integers of Parley's subset: at most 2^32-1. */
const MAX_UINT32 = 0xffffffff;

export interface SendFrame {
  /** 1 for the first send frame on a connection, one more for each next one. */
  readonly counter: number;
  readonly ttlSeconds?: number;
  /** Still to be checked with `sendElements` (a bad element is answered under this frame's counter). */
  readonly elements: readonly unknown[];
}

const malformed = (what: string) => relayError('MALFORMED', `send frame: ${what}`);

const isUint = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

/**
 * Decodes a send frame's outer array, or throws MALFORMED: then there is no
 * counter to answer under, and the relay closes the connection (4003).
 */
export function decodeSendFrame(bytes: Uint8Array, maxBytes: number): SendFrame {
  let value: unknown;
  try {
    value = readCbor(bytes, 'send frame', maxBytes);
  } catch {
    throw malformed('not one canonical CBOR item of the Parley subset');
  }
  if (!Array.isArray(value) || value.length !== 4 || value[0] !== SEND_FRAME_TAG)
    throw malformed('expected ["send", counter, ttl, elements]');
  const [, counter, ttl, list] = value as [unknown, unknown, unknown, unknown];
  if (!isUint(counter, 1, MAX_UINT32)) throw malformed('counter must be 1..2^32-1');
  if (ttl !== null && !isUint(ttl, 1, MAX_UINT32)) throw malformed('ttlSeconds must be null or a positive integer');
  if (!Array.isArray(list)) throw malformed('elements must be an array');
  return { counter, ...(ttl === null ? {} : { ttlSeconds: ttl as number }), elements: list };
}

/**
 * The elements of a send frame, checked with the HTTP body's bounds: throws
 * MALFORMED, or TOO_MANY_ENVELOPES past `maxElements` (maxEnvelopesPerSend).
 */
export function sendElements(list: readonly unknown[], maxElements: number): SendElement[] {
  if (list.length === 0) throw malformed('elements must not be empty');
  if (list.length > maxElements) {
    throw relayError('TOO_MANY_ENVELOPES', `at most ${maxElements} envelopes per send`, { limit: maxElements });
  }
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
