/**
 * Request signing for the relay: the bytes, the Authorization header, and
 * signers for a device and for an account. spec/09-relay.md §3.
 *
 * Built independently of the relay's own code (only the spec is shared);
 * both are tested against the spec's worked example.
 */
import { type Account, type DeviceIdentity, encodeCbor } from '@parley/core';
import { toBase64Url } from './encoding.ts';

export const REQUEST_LABEL = 'Parley v1 relay request';
export const WEBSOCKET_LABEL = 'Parley v1 relay websocket';

/** Who signs requests: a device (deviceId >= 1) or the account key (deviceId 0). */
export interface RelaySigner {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  /** Signs CBOR([label, bstr(body)]) with the signer's Ed25519 key. */
  signStatement(label: string, body: Uint8Array): Uint8Array;
}

/** Signs as a device, with its certificate's signing key. */
export function deviceSigner(device: DeviceIdentity): RelaySigner {
  return {
    accountKey: device.accountKey,
    deviceId: device.deviceId,
    signStatement: (label, body) => device.sign(encodeCbor([label, body])),
  };
}

/** Signs as the account itself (device id 0): allowed for device management only. */
export function accountSigner(account: Account): RelaySigner {
  return { accountKey: account.publicKey, deviceId: 0, signStatement: (label, body) => account.signStatement(label, body) };
}

export interface RequestToSign {
  readonly method: string;
  readonly host: string;
  readonly pathAndQuery: string;
  readonly bodySha256: Uint8Array;
  readonly timestamp: number;
  readonly nonce: Uint8Array;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

/** The body inside the signed statement (spec §3.1). */
export function requestStatementBody(r: RequestToSign, signer: Pick<RelaySigner, 'accountKey' | 'deviceId'>): Uint8Array {
  return encodeCbor([r.method, r.host, r.pathAndQuery, r.bodySha256, u64be(r.timestamp), r.nonce, signer.accountKey, signer.deviceId]);
}

/** The value of the Authorization header for a request. */
export function authorizationHeader(r: RequestToSign, signer: RelaySigner): string {
  const signature = signer.signStatement(REQUEST_LABEL, requestStatementBody(r, signer));
  return `Parley ${toBase64Url(signer.accountKey)}.${signer.deviceId}.${r.timestamp}.${toBase64Url(r.nonce)}.${toBase64Url(signature)}`;
}

/** `Content-Digest` (RFC 9530) for a body's SHA-256: the relay verifies the signature before reading the body. */
export function contentDigest(bodySha256: Uint8Array): string {
  let binary = '';
  for (const b of bodySha256) binary += String.fromCharCode(b);
  return `sha-256=:${btoa(binary)}:`;
}

/** The body signed to authenticate a websocket (spec §5.1). */
export function websocketStatementBody(
  host: string,
  challenge: Uint8Array,
  signer: Pick<RelaySigner, 'accountKey' | 'deviceId'>,
): Uint8Array {
  return encodeCbor([host, challenge, signer.accountKey, signer.deviceId]);
}
