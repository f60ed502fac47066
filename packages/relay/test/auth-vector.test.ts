// The worked example of spec/09-relay.md §3.4, byte for byte: the relay's
// canonical encoding produces these bytes, and the relay accepts exactly
// this Authorization header. packages/client has the same test for its
// independent encoder.
import { readFileSync } from 'node:fs';
import { Account, DeviceIdentity, Ed25519KeyPair, PreKeyStore, X25519KeyPair, defaultProvider, toHex, utf8 } from '@parley/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestSignedBody, requestSignedBytes, websocketSignedBody, websocketSignedBytes } from '../src/auth/canonical.ts';
import { toBase64Url } from '../src/http/encoding.ts';
import {
  type TestRelay,
  authorizationHeader,
  deviceSigner,
  register,
  requestStatementBody,
  testRelay,
  websocketAuthFrame,
} from './support.ts';

/** The example, also used by packages/client/test/relay-signing.test.ts. */
interface AuthVector {
  accountSeed: string;
  deviceSigningSeed: string;
  account: string;
  deviceId: number;
  method: string;
  host: string;
  pathAndQuery: string;
  body: string;
  bodySha256: string;
  timestamp: number;
  nonce: string;
  signedBody: string;
  signedBytesHeader: string;
  authorization: string;
  accountSignature: string;
  websocketChallenge: string;
  websocketSignedBody: string;
  websocketSignature: string;
}
const VECTOR = JSON.parse(readFileSync(new URL('./fixtures/auth-vector.json', import.meta.url), 'utf8')) as AuthVector;

const fromHex = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const account = Account.fromSeed(fromHex(VECTOR.accountSeed));
const signing = Ed25519KeyPair.fromSeed(fromHex(VECTOR.deviceSigningSeed));
const fields = {
  method: VECTOR.method,
  host: VECTOR.host,
  pathAndQuery: VECTOR.pathAndQuery,
  bodySha256: defaultProvider().backend.sha256(utf8(VECTOR.body)),
  timestamp: VECTOR.timestamp,
  nonce: fromHex(VECTOR.nonce),
  accountKey: account.publicKey,
  deviceId: 1,
};

describe('spec/09-relay.md §3.4 worked example', () => {
  it('encodes the signed request bytes exactly', () => {
    expect(toBase64Url(account.publicKey)).toBe(VECTOR.account);
    expect(toHex(fields.bodySha256)).toBe(VECTOR.bodySha256);
    expect(toHex(requestSignedBody(fields))).toBe(VECTOR.signedBody);
    expect(toHex(requestSignedBytes(fields))).toBe(VECTOR.signedBytesHeader + VECTOR.signedBody);
    const signature = signing.sign(requestSignedBytes(fields));
    expect(`Parley ${VECTOR.account}.1.${VECTOR.timestamp}.${toBase64Url(fields.nonce)}.${toBase64Url(signature)}`).toBe(
      VECTOR.authorization,
    );
  });

  it('encodes the websocket auth bytes exactly', () => {
    const ws = { host: VECTOR.host, challenge: fromHex(VECTOR.websocketChallenge), accountKey: account.publicKey, deviceId: 1 };
    expect(toHex(websocketSignedBody(ws))).toBe(VECTOR.websocketSignedBody);
    expect(toBase64Url(signing.sign(websocketSignedBytes(ws)))).toBe(VECTOR.websocketSignature);
  });

  it('the account key signs the same statement with device id 0', () => {
    expect(toBase64Url(account.signStatement('Parley v1 relay request', requestSignedBody({ ...fields, deviceId: 0 })))).toBe(
      VECTOR.accountSignature,
    );
  });
});

describe("the tests' own signing helper (support/signing.ts) matches the example", () => {
  const device = DeviceIdentity.fromParts(
    account.certify(1, signing.publicKey, X25519KeyPair.fromPrivateKey(new Uint8Array(32).fill(3)).publicKey),
    signing,
    X25519KeyPair.fromPrivateKey(new Uint8Array(32).fill(3)),
  );

  it('builds the same statement and Authorization header', () => {
    expect(toHex(requestStatementBody(fields, fields))).toBe(VECTOR.signedBody);
    expect(authorizationHeader(fields, deviceSigner(device))).toBe(VECTOR.authorization);
  });

  it('signs the same websocket auth frame', () => {
    const frame = JSON.parse(websocketAuthFrame(VECTOR.host, fromHex(VECTOR.websocketChallenge), deviceSigner(device)));
    expect(frame).toEqual({ type: 'auth', account: VECTOR.account, deviceId: 1, signature: VECTOR.websocketSignature });
  });
});

describe('the relay accepts the example request', () => {
  let relay: TestRelay;
  beforeAll(async () => {
    relay = await testRelay({}, { clock: true });
    relay.clock.now = VECTOR.timestamp;
    const certificate = account.certify(1, signing.publicKey, X25519KeyPair.fromPrivateKey(new Uint8Array(32).fill(3)).publicKey);
    const device = DeviceIdentity.fromParts(certificate, signing, X25519KeyPair.fromPrivateKey(new Uint8Array(32).fill(3)));
    const prekeys = PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 });
    await register(relay.app, { account, device, prekeys, signer: deviceSigner(device), id: VECTOR.account });
  });
  afterAll(() => relay.close());

  it('verbatim', async () => {
    const r = await relay.app.inject({
      method: 'POST',
      url: VECTOR.pathAndQuery,
      headers: { host: VECTOR.host, authorization: VECTOR.authorization, 'content-type': 'application/json' },
      payload: VECTOR.body,
    });
    expect(r.statusCode, r.body).toBe(204);
  });
});
