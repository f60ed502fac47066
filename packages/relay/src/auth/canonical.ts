/**
 * The bytes a device (or an account) signs to authenticate to the relay.
 * spec/09-relay.md §3 defines them byte by byte; packages/client builds the
 * same bytes independently, and both sides test against the spec's example.
 *
 * Both structures are CBOR([label, bstr(CBOR(fields))]): exactly what core's
 * `Account.signStatement(label, body)` signs, so the account key and device
 * keys authenticate through one scheme. The labels differ from every label
 * core signs (certificates, prekeys, group messages), so a relay signature
 * can never be replayed as one of those, nor the reverse.
 *
 * Timestamps travel as 8-byte big-endian byte strings: CBOR integers above
 * 2^32 are encoded inconsistently across libraries, byte strings are not.
 */
import { encodeCbor } from '@parley/core';

export const REQUEST_LABEL = 'Parley v1 relay request';
export const WEBSOCKET_LABEL = 'Parley v1 relay websocket';

/** Device id 0 in a signature means "the account key itself" (device ids start at 1). */
export const ACCOUNT_SIGNER = 0;

export interface SignedRequestFields {
  /** Upper-case HTTP method. */
  readonly method: string;
  /** The Host header the client sent (authority: name or address, and port when not the default). */
  readonly host: string;
  /** Path and query exactly as sent, e.g. `/v1/messages?limit=10`. */
  readonly pathAndQuery: string;
  /** SHA-256 of the body bytes (of the empty string when there is no body). */
  readonly bodySha256: Uint8Array;
  /** Milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** 16 random bytes chosen by the client. */
  readonly nonce: Uint8Array;
  readonly accountKey: Uint8Array;
  /** 1..2^31-1 for a device, 0 for the account key. */
  readonly deviceId: number;
}

export function timestampBytes(ms: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms), false);
  return out;
}

export function requestSignedBody(f: SignedRequestFields): Uint8Array {
  return encodeCbor([f.method, f.host, f.pathAndQuery, f.bodySha256, timestampBytes(f.timestamp), f.nonce, f.accountKey, f.deviceId]);
}

/** CBOR([REQUEST_LABEL, bstr(body)]): what the signer's Ed25519 key signs. */
export function requestSignedBytes(f: SignedRequestFields): Uint8Array {
  return encodeCbor([REQUEST_LABEL, requestSignedBody(f)]);
}

export interface SignedWebSocketFields {
  readonly host: string;
  /** The 32-byte challenge the relay sent on this connection. */
  readonly challenge: Uint8Array;
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export function websocketSignedBody(f: SignedWebSocketFields): Uint8Array {
  return encodeCbor([f.host, f.challenge, f.accountKey, f.deviceId]);
}

export function websocketSignedBytes(f: SignedWebSocketFields): Uint8Array {
  return encodeCbor([WEBSOCKET_LABEL, websocketSignedBody(f)]);
}
