/**
 * How many body bytes each route may read, and of which media type.
 * spec/09-relay.md §8.1.
 *
 * Every route gets the limit it needs, not one limit for all: a JSON parser
 * handed 8 MiB costs the relay far more than a send of that size is worth
 * when the route only ever takes `{"size":123}`. Limits are set on the
 * routes once, when they are added (an onRoute hook), so route files do not
 * each repeat them.
 *
 * A body is read before its request is authenticated only when the client
 * did not declare its digest (auth/body-digest.ts); such a body may be at
 * most PRE_AUTH_BODY_BYTES.
 */
import type { RouteOptions } from 'fastify';
import type { RelayConfig } from '../config.ts';
import { base64UrlLength } from '../http/encoding.ts';
import { relayError } from '../errors.ts';

const KiB = 1024;

/**
 * Most body bytes read from a client that has not authenticated yet (a body
 * sent without Content-Digest). An acknowledgement of a few seqs, a small
 * registration or an upload start fits; anything bigger must declare its
 * digest so the relay can verify the signature first.
 */
export const PRE_AUTH_BODY_BYTES = 4 * KiB;

/**
 * A prekey upload or registration: 1000 one-time X25519 keys (36 B, 48
 * characters) and 101 ML-KEM keys (1256 B, 1675 characters) with their JSON
 * punctuation come to about 225 KB; the rest is room for the certificate and
 * signed prekey.
 */
export const PREKEY_BODY_BYTES = 256 * KiB;

/** An acknowledgement: at most 1000 seqs of up to 16 digits and a comma each. */
export const ACK_BODY_BYTES = 24 * KiB;

/** Routes whose body is a small fixed-shape object (`{"size":n}`) or absent. */
export const SMALL_BODY_BYTES = 1 * KiB;

/** JSON fields and punctuation around one envelope in a send: account, ids, certificate hash. */
const ENVELOPE_OVERHEAD_BYTES = 512;

/**
 * One recipient of a fan-out in compact JSON: `{"account":"<43>","deviceId":<10>,"certificateHash":"<43>"},`
 * is 144 bytes; the rest is room for whitespace.
 */
const FANOUT_RECIPIENT_BYTES = 192;

/** The id, TTL and punctuation of a fan-out body around its envelope and recipients. */
const FANOUT_OVERHEAD_BYTES = 1 * KiB;

export type BodyType = 'json' | 'octets';

/** The largest send body: the configured request limit, never below one envelope of the configured maximum. */
export function sendBodyBytes(config: RelayConfig): number {
  return Math.max(config.limits.maxRequestBytes, base64UrlLength(config.limits.maxEnvelopeBytes) + ENVELOPE_OVERHEAD_BYTES);
}

/** A group fan-out body: one envelope of the configured maximum and the most recipients allowed. */
function fanoutBodyBytes(config: RelayConfig): number {
  const { maxEnvelopeBytes, maxRecipientsPerFanout } = config.limits;
  return base64UrlLength(maxEnvelopeBytes) + maxRecipientsPerFanout * FANOUT_RECIPIENT_BYTES + FANOUT_OVERHEAD_BYTES;
}

/** The body limit and media type of a route. */
export function routeBody(config: RelayConfig, method: string, url: string): { limit: number; type: BodyType } {
  switch (`${method} ${url}`) {
    case 'POST /v1/messages':
      return { limit: sendBodyBytes(config), type: 'json' };
    case 'POST /v1/messages/fanout':
      return { limit: fanoutBodyBytes(config), type: 'json' };
    case 'PUT /v1/devices':
    case 'PUT /v1/keys':
      return { limit: PREKEY_BODY_BYTES, type: 'json' };
    case 'POST /v1/messages/ack':
      return { limit: ACK_BODY_BYTES, type: 'json' };
    case 'PATCH /v1/attachments/:id':
      return { limit: config.limits.maxUploadChunkBytes, type: 'octets' };
    default:
      return { limit: SMALL_BODY_BYTES, type: 'json' };
  }
}

/** Sets `bodyLimit` on a route as it is added (unless the route chose its own). */
export function applyRouteBodyLimit(config: RelayConfig, route: RouteOptions): void {
  if (route.bodyLimit !== undefined) return;
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  route.bodyLimit = Math.max(...methods.map((m) => routeBody(config, m, route.url).limit));
}

/** Whether a request carries a body (a length above zero, or chunked). */
export function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

/**
 * Refuses a body of another media type than the route takes (415), before
 * any of it is read: JSON routes take `application/json`, with no parameter
 * but `charset=utf-8`; the upload route takes `application/octet-stream`.
 */
export function checkMediaType(contentType: string | undefined, type: BodyType): void {
  const [essence = '', ...params] = (contentType ?? '').split(';').map((s) => s.trim().toLowerCase());
  const expected = type === 'json' ? 'application/json' : 'application/octet-stream';
  const paramsOk = params.every((p) => type === 'json' && /^charset="?utf-8"?$/.test(p));
  if (essence !== expected || !paramsOk) {
    throw relayError('UNSUPPORTED_MEDIA_TYPE', `this route takes ${expected}${type === 'json' ? ' (UTF-8)' : ''}`);
  }
}
