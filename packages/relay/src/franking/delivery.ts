/**
 * The delivery record of a franked envelope (spec/14-franking.md §4.2):
 * what the relay computes at acceptance, stores with the mailbox row and
 * delivers with the envelope (HTTP fetch and websocket alike).
 *
 *   stored:    CBOR [envelopeId: bstr .size 16, acceptedAt: bstr .size 8 (ms, big-endian), frankKeyId: uint,
 *                    frank: bstr .size 32, frankingTag: bstr .size 32]
 *   delivered: { envelopeId, acceptedAt, frankKeyId, frank, frankingTag } (bytes base64url)
 */
import {
  ENVELOPE_ID_BYTES,
  FRANK_BYTES,
  FRANKING_TAG_BYTES,
  type FrankDevice,
  decodeCbor,
  encodeCbor,
  fields,
  relayFrank,
} from '@parley/core';
import type { CryptoProvider } from '@parley/core';
import { toBase64Url } from '../http/encoding.ts';
import type { FrankKeys } from './keys.ts';

export interface DeliveryRecord {
  readonly envelopeId: Uint8Array;
  readonly acceptedAt: number;
  readonly frankKeyId: number;
  readonly frank: Uint8Array;
  readonly frankingTag: Uint8Array;
}

export interface DeliveryJson {
  envelopeId: string;
  acceptedAt: number;
  frankKeyId: number;
  frank: string;
  frankingTag: string;
}

/** Encoded records are 5 short fields: well under this. */
const MAX_DELIVERY_BYTES = 256;

function timeOf(b8: Uint8Array): number {
  const ms = new DataView(b8.buffer, b8.byteOffset, 8).getBigUint64(0);
  // Written by this relay from its clock: a larger value is a damaged row, not input.
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('acceptedAt: beyond a safe integer');
  return Number(ms);
}

export function encodeDelivery(d: DeliveryRecord): Uint8Array {
  const at = new Uint8Array(8);
  new DataView(at.buffer).setBigUint64(0, BigInt(d.acceptedAt));
  // Times as 8 bytes, as in the frank itself: CBOR integers are 32-bit in Parley (01 §2).
  return encodeCbor([d.envelopeId, at, d.frankKeyId, d.frank, d.frankingTag]);
}

export function decodeDelivery(bytes: Uint8Array): DeliveryRecord {
  const f = fields.readArray(decodeCbor(bytes, 'DeliveryRecord', MAX_DELIVERY_BYTES), 'DeliveryRecord', 5);
  return {
    envelopeId: fields.readBytes(f[0], 'envelopeId', ENVELOPE_ID_BYTES),
    acceptedAt: timeOf(fields.readBytes(f[1], 'acceptedAt', 8)),
    frankKeyId: fields.readUint(f[2], 'frankKeyId'),
    frank: fields.readBytes(f[3], 'frank', FRANK_BYTES),
    frankingTag: fields.readBytes(f[4], 'frankingTag', FRANKING_TAG_BYTES),
  };
}

export function deliveryJson(bytes: Uint8Array): DeliveryJson {
  const d = decodeDelivery(bytes);
  return {
    envelopeId: toBase64Url(d.envelopeId),
    acceptedAt: d.acceptedAt,
    frankKeyId: d.frankKeyId,
    frank: toBase64Url(d.frank),
    frankingTag: toBase64Url(d.frankingTag),
  };
}

/** One envelope to frank: its recipient device and the tag the sender supplied. */
export interface FrankTarget {
  readonly recipient: FrankDevice;
  readonly frankingTag: Uint8Array;
}

/**
 * Franks envelopes accepted at `acceptedAt` (one HMAC each, one key read per
 * period): a fresh random envelope id per recipient envelope, so that two
 * recipients of one group message hold different, unlinkable delivery
 * records. `sender` is null for sealed sends.
 */
export async function frankEnvelopes(
  keys: FrankKeys,
  provider: CryptoProvider,
  sender: FrankDevice | null,
  targets: readonly FrankTarget[],
  acceptedAt: number,
): Promise<Uint8Array[]> {
  if (targets.length === 0) return [];
  const { keyId, key } = await keys.forAccept(acceptedAt);
  // One CSPRNG call for all ids: a 1,000-device fan-out otherwise pays 1,000 calls.
  const ids = provider.random(ENVELOPE_ID_BYTES * targets.length);
  return targets.map((t, i) => {
    const envelopeId = ids.slice(i * ENVELOPE_ID_BYTES, (i + 1) * ENVELOPE_ID_BYTES);
    const frank = relayFrank(provider.backend, key, {
      keyId,
      frankingTag: t.frankingTag,
      recipient: t.recipient,
      acceptedAt,
      envelopeId,
      sender,
    });
    return encodeDelivery({ envelopeId, acceptedAt, frankKeyId: keyId, frank, frankingTag: t.frankingTag });
  });
}
