/**
 * Request and websocket signing for the relay's tests, built from the spec
 * (spec/09-relay.md §3, §5.1) on @parley/core only.
 *
 * Deliberately not the relay's own `auth/canonical.ts`: a test that signed
 * with the code that verifies would pass with a mistake on both sides. Nor
 * the client's signing code: the relay depends on core only, so its tests
 * cannot import the client (.dependency-cruiser.cjs, rule
 * relay-not-client-or-bench). auth-vector.test.ts pins these bytes, the
 * relay's and (in packages/client) the client's to the spec's worked example.
 */
import { type Account, type DeviceIdentity, encodeCbor } from '@parley/core';

const REQUEST_LABEL = 'Parley v1 relay request';
const WEBSOCKET_LABEL = 'Parley v1 relay websocket';

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

/** Base64url without padding (RFC 4648 §5), the relay's encoding for byte strings. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict inverse of toBase64Url: a non-canonical spelling throws (TypeError). */
export function fromBase64Url(text: string): Uint8Array {
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (toBase64Url(bytes) !== text) throw new TypeError('base64url: not the canonical spelling');
  return bytes;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

/** The body inside the signed request statement (spec §3.1). */
export function requestStatementBody(r: RequestToSign, signer: Pick<RelaySigner, 'accountKey' | 'deviceId'>): Uint8Array {
  return encodeCbor([r.method, r.host, r.pathAndQuery, r.bodySha256, u64be(r.timestamp), r.nonce, signer.accountKey, signer.deviceId]);
}

/** The value of the Authorization header for a request (spec §3.2). */
export function authorizationHeader(r: RequestToSign, signer: RelaySigner): string {
  const signature = signer.signStatement(REQUEST_LABEL, requestStatementBody(r, signer));
  return `Parley ${toBase64Url(signer.accountKey)}.${signer.deviceId}.${r.timestamp}.${toBase64Url(r.nonce)}.${toBase64Url(signature)}`;
}

/** `Content-Digest` (RFC 9530) for a body's SHA-256 (spec §3.3). */
export function contentDigest(bodySha256: Uint8Array): string {
  return `sha-256=:${Buffer.from(bodySha256).toString('base64')}:`;
}

/** The `auth` frame answering a websocket challenge (spec §5.1); `extra` adds unsigned fields (e.g. `push`, §5.2.2). */
export function websocketAuthFrame(host: string, challenge: Uint8Array, signer: RelaySigner, extra: Record<string, unknown> = {}): string {
  const body = encodeCbor([host, challenge, signer.accountKey, signer.deviceId]);
  return JSON.stringify({
    type: 'auth',
    account: toBase64Url(signer.accountKey),
    deviceId: signer.deviceId,
    signature: toBase64Url(signer.signStatement(WEBSOCKET_LABEL, body)),
    ...extra,
  });
}
