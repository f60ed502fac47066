// The client's relay encodings, checked against the spec's worked example
// (spec/09-relay.md §3.4) and against Node's own base64url.
import { readFileSync } from 'node:fs';
import { Account, Ed25519KeyPair, defaultProvider, fromHex, toHex, utf8 } from '@parley/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REQUEST_LABEL,
  WEBSOCKET_LABEL,
  accountSigner,
  authorizationHeader,
  backoffDelay,
  fromBase64Url,
  requestStatementBody,
  toBase64Url,
  websocketStatementBody,
} from '../src/relay-client/index.ts';

interface AuthVector {
  accountSeed: string;
  deviceSigningSeed: string;
  account: string;
  method: string;
  host: string;
  pathAndQuery: string;
  body: string;
  timestamp: number;
  nonce: string;
  signedBody: string;
  authorization: string;
  accountSignature: string;
  websocketChallenge: string;
  websocketSignedBody: string;
  websocketSignature: string;
}
// The same file the relay's test reads; the spec quotes it.
const V = JSON.parse(readFileSync(new URL('../../relay/test/fixtures/auth-vector.json', import.meta.url), 'utf8')) as AuthVector;

describe('spec/09-relay.md §3.4 worked example (client side)', () => {
  const account = Account.fromSeed(fromHex(V.accountSeed));
  const signing = Ed25519KeyPair.fromSeed(fromHex(V.deviceSigningSeed));
  const device = { accountKey: account.publicKey, deviceId: 1, signStatement: (l: string, b: Uint8Array) => signing.sign(encode(l, b)) };
  const request = {
    method: V.method,
    host: V.host,
    pathAndQuery: V.pathAndQuery,
    bodySha256: defaultProvider().backend.sha256(utf8(V.body)),
    timestamp: V.timestamp,
    nonce: fromHex(V.nonce),
  };

  it('builds the same signed body and Authorization header', () => {
    expect(toHex(requestStatementBody(request, device))).toBe(V.signedBody);
    expect(authorizationHeader(request, device)).toBe(V.authorization);
  });

  it('the account signer signs the same statement with device id 0', () => {
    const header = authorizationHeader(request, accountSigner(account));
    expect(header.split('.').at(-1)).toBe(V.accountSignature);
    expect(header.split('.')[1]).toBe('0');
  });

  it('builds the same websocket statement', () => {
    const body = websocketStatementBody(V.host, fromHex(V.websocketChallenge), device);
    expect(toHex(body)).toBe(V.websocketSignedBody);
    expect(toBase64Url(device.signStatement(WEBSOCKET_LABEL, body))).toBe(V.websocketSignature);
  });

  it('labels are the spec labels', () => {
    expect(REQUEST_LABEL).toBe('Parley v1 relay request');
    expect(WEBSOCKET_LABEL).toBe('Parley v1 relay websocket');
  });
});

// CBOR([label, bstr(body)]) without importing core's encoder into the check.
function encode(label: string, body: Uint8Array): Uint8Array {
  const l = utf8(label);
  const head =
    body.length < 24 ? [0x40 | body.length] : body.length < 256 ? [0x58, body.length] : [0x59, body.length >> 8, body.length & 0xff];
  const text = l.length < 24 ? [0x60 | l.length] : [0x78, l.length];
  return Uint8Array.from([0x82, ...text, ...l, ...head, ...body]);
}

describe('base64url', () => {
  it('round-trips and matches Node for every byte string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = toBase64Url(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64url'));
        expect(fromBase64Url(text)).toEqual(bytes);
      }),
    );
  });

  it('rejects padding, foreign characters and non-canonical trailing bits', () => {
    for (const bad of ['AA==', 'A', 'AB', 'A+', 'A/', 'é']) expect(() => fromBase64Url(bad)).toThrow(TypeError);
  });
});

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    expect(backoffDelay(1, 100, 1000, () => 0.999)).toBe(99);
    expect(backoffDelay(4, 100, 1000, () => 0.999)).toBe(799);
    expect(backoffDelay(20, 100, 1000, () => 0.999)).toBe(999);
    expect(backoffDelay(3, 100, 1000, () => 0)).toBe(0);
  });
});
