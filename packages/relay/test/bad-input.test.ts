// Every kind of bad input gets a clear status and a stable code, never a
// 500 or a crash: malformed JSON and CBOR, wrong types, oversize bodies,
// bad and missing signatures, stale timestamps, replays, unknown devices.
// spec/09-relay.md §9.
import { encodeCertificate, encodeKemPreKey, encodeSignedPreKey, utf8 } from '@parley/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOST,
  type TestDevice,
  type TestRelay,
  authorizationHeader,
  envelopeFor,
  inject,
  json,
  makeDevice,
  register,
  signRequest,
  testRelay,
  toBase64Url,
} from './support.ts';

let relay: TestRelay;
let alice: TestDevice;
let bob: TestDevice;
beforeAll(async () => {
  relay = await testRelay({ limits: { maxRequestBytes: 64 * 1024 }, rateLimits: { requestsPerMinutePerIp: 1_000_000 } });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
});
afterAll(() => relay.close());

const raw = (headers: Record<string, string>, payload?: string, method: 'POST' | 'GET' | 'PUT' = 'POST', url = '/v1/messages') =>
  relay.app.inject({ method, url, headers: { host: HOST, ...headers }, ...(payload !== undefined ? { payload } : {}) });

/** A correctly signed request with an arbitrary body string. */
const signedRaw = (body: string, contentType = 'application/json', url = '/v1/messages', method: 'POST' | 'PUT' = 'POST') => {
  const { authorization } = signRequest(alice.signer, { method, url, body }, relay.app.relay.now());
  return raw({ authorization, 'content-type': contentType }, body, method, url);
};

function expectRefused(r: { statusCode: number; body: string }, status: number, code: string) {
  expect(r.statusCode, r.body).toBe(status);
  const body = json<{ code: string; statusCode: number; message: string }>(r);
  expect(body.code).toBe(code);
  expect(body.statusCode).toBe(status);
  expect(typeof body.message).toBe('string');
}

describe('authentication failures', () => {
  const valid = () => ({ method: 'GET' as const, url: '/v1/keys' });

  it('no Authorization header', async () => {
    expectRefused(await raw({}, undefined, 'GET', '/v1/keys'), 401, 'AUTH_REQUIRED');
  });

  it('an Authorization header in another format', async () => {
    for (const header of ['Bearer abc', 'Parley x.y.z', `Parley ${alice.id}.1.123.short.sig`, `Parley ${alice.id}.99999999999.1.a.b`]) {
      expectRefused(await raw({ authorization: header }, undefined, 'GET', '/v1/keys'), 401, 'AUTH_MALFORMED');
    }
  });

  it('a bad signature', async () => {
    const { authorization } = signRequest(alice.signer, valid(), relay.app.relay.now());
    const tampered = authorization.slice(0, -4) + (authorization.endsWith('AAAA') ? 'BBBA' : 'AAAA');
    expectRefused(await raw({ authorization: tampered }, undefined, 'GET', '/v1/keys'), 401, 'AUTH_BAD_SIGNATURE');
  });

  it('a signature over another path, method, host or body', async () => {
    const { authorization } = signRequest(alice.signer, { method: 'GET', url: '/v1/messages' }, relay.app.relay.now());
    expectRefused(await raw({ authorization }, undefined, 'GET', '/v1/keys'), 401, 'AUTH_BAD_SIGNATURE');
    const other = signRequest(alice.signer, valid(), relay.app.relay.now()).authorization;
    expectRefused(await raw({ authorization: other, host: 'evil.example' }, undefined, 'GET', '/v1/keys'), 401, 'AUTH_BAD_SIGNATURE');
    const signedBody = signRequest(alice.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [1] } }, relay.app.relay.now());
    const r = await raw(
      { authorization: signedBody.authorization, 'content-type': 'application/json' },
      '{"seqs":[2]}',
      'POST',
      '/v1/messages/ack',
    );
    expectRefused(r, 401, 'AUTH_BAD_SIGNATURE');
  });

  it('a stale or future timestamp, with the server time to correct the clock', async () => {
    for (const skew of [-301_000, 301_000]) {
      const { authorization } = signRequest(alice.signer, { ...valid(), timestamp: relay.app.relay.now() + skew });
      const r = await raw({ authorization }, undefined, 'GET', '/v1/keys');
      expectRefused(r, 401, 'AUTH_STALE_TIMESTAMP');
      expect(typeof json<{ details: { serverTime: number } }>(r).details.serverTime).toBe('number');
    }
  });

  it('a replayed request', async () => {
    const { authorization } = signRequest(alice.signer, valid(), relay.app.relay.now());
    expect((await raw({ authorization }, undefined, 'GET', '/v1/keys')).statusCode).toBe(200);
    expectRefused(await raw({ authorization }, undefined, 'GET', '/v1/keys'), 401, 'AUTH_REPLAYED');
  });

  it('an unknown device or account', async () => {
    const stranger = makeDevice();
    expectRefused(await inject(relay.app, stranger.signer, valid()), 401, 'AUTH_UNKNOWN_DEVICE');
    const ghostDevice = { ...alice.signer, deviceId: 7 };
    expectRefused(await inject(relay.app, ghostDevice, valid()), 401, 'AUTH_UNKNOWN_DEVICE');
    const ghostAccount = {
      accountKey: stranger.account.publicKey,
      deviceId: 0,
      signStatement: stranger.account.signStatement.bind(stranger.account),
    };
    expectRefused(
      await inject(relay.app, ghostAccount, {
        method: 'DELETE',
        url: `/v1/accounts/${stranger.id}/devices/1?certificateHash=${'A'.repeat(43)}`,
      }),
      401,
      'AUTH_UNKNOWN_DEVICE',
    );
  });
});

describe('malformed bodies', () => {
  it('malformed JSON', async () => {
    for (const body of ['{', '{"messages": [}', 'null x', '\u0000']) expectRefused(await signedRaw(body), 400, 'MALFORMED');
  });

  it('an empty JSON body', async () => {
    expectRefused(await signedRaw(''), 400, 'MALFORMED');
  });

  it('JSON prototype poisoning', async () => {
    expectRefused(await signedRaw('{"__proto__": {"admin": true}, "messages": []}'), 400, 'MALFORMED');
  });

  it('wrong types and unknown fields', async () => {
    const cases: unknown[] = [
      { messages: 'nope' },
      { messages: [] },
      { messages: [{ ...envelopeFor(bob, 'a'), deviceId: '1' }] },
      { messages: [{ ...envelopeFor(bob, 'a'), deviceId: 0 }] },
      { messages: [{ ...envelopeFor(bob, 'a'), id: 'spaces are not allowed' }] },
      { messages: [{ ...envelopeFor(bob, 'a'), envelope: 'not base64!' }] },
      { messages: [{ ...envelopeFor(bob, 'a'), account: 'short' }] },
      { messages: [envelopeFor(bob, 'a')], extra: true },
      { messages: [envelopeFor(bob, 'a')], ttlSeconds: 1.5 },
      [1, 2, 3],
    ];
    for (const body of cases)
      expectRefused(await inject(relay.app, alice.signer, { method: 'POST', url: '/v1/messages', json: body }), 400, 'VALIDATION_FAILED');
  });

  it('non-canonical base64url', async () => {
    // 'AB' and 'AA' differ only in trailing bits: only the canonical one is accepted.
    const r = await inject(relay.app, alice.signer, {
      method: 'POST',
      url: '/v1/messages',
      json: { messages: [{ ...envelopeFor(bob, 'a'), envelope: 'AB' }] },
    });
    expectRefused(r, 400, 'MALFORMED');
  });

  it('malformed CBOR in a certificate or prekey', async () => {
    const d = makeDevice(undefined, 1, { oneTimePreKeys: 0, kemPreKeys: 0 });
    const good = {
      certificate: toBase64Url(encodeCertificate(d.device.certificate)),
      signedPreKey: toBase64Url(encodeSignedPreKey(d.prekeys.currentSignedPreKey())),
      lastResortKemPreKey: toBase64Url(encodeKemPreKey(d.prekeys.lastResortKemPreKey())),
    };
    const badCert = await inject(relay.app, d.signer, {
      method: 'PUT',
      url: '/v1/devices',
      json: { ...good, certificate: toBase64Url(utf8('not cbor')) },
    });
    expect(badCert.statusCode).toBe(400);
    expect(['MALFORMED', 'BAD_CERTIFICATE']).toContain(json(badCert).code);
    const truncated = await inject(relay.app, d.signer, {
      method: 'PUT',
      url: '/v1/devices',
      json: { ...good, signedPreKey: good.signedPreKey.slice(0, 20) },
    });
    expectRefused(truncated, 400, 'MALFORMED');
    const oneTime = await inject(relay.app, alice.signer, {
      method: 'PUT',
      url: '/v1/keys',
      json: { oneTimePreKeys: [toBase64Url(Uint8Array.of(0x82, 0x01))] },
    });
    expectRefused(oneTime, 400, 'MALFORMED');
  });

  it('an oversize body', async () => {
    const big = JSON.stringify({ messages: [{ ...envelopeFor(bob, 'a'), envelope: 'A'.repeat(100_000) }] });
    expectRefused(await signedRaw(big), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('an unsupported media type', async () => {
    expectRefused(await signedRaw('messages=1', 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('bad path parameters and queries', async () => {
    expectRefused(await inject(relay.app, alice.signer, { method: 'GET', url: '/v1/keys/not-an-account/1' }), 400, 'VALIDATION_FAILED');
    expectRefused(await inject(relay.app, alice.signer, { method: 'GET', url: `/v1/keys/${bob.id}/0` }), 400, 'VALIDATION_FAILED');
    expectRefused(await inject(relay.app, alice.signer, { method: 'GET', url: '/v1/messages?limit=abc' }), 400, 'VALIDATION_FAILED');
    expectRefused(await inject(relay.app, alice.signer, { method: 'GET', url: '/v1/messages?limit=100000' }), 400, 'VALIDATION_FAILED');
    expectRefused(await inject(relay.app, alice.signer, { method: 'GET', url: '/v1/messages?bogus=1' }), 400, 'VALIDATION_FAILED');
  });

  it('unknown routes', async () => {
    expectRefused(await raw({}, undefined, 'GET', '/v2/anything'), 404, 'NOT_FOUND');
  });
});

describe('fuzzed input never produces a 5xx', () => {
  it('arbitrary JSON bodies to every JSON route', async () => {
    const routes: ['POST' | 'PUT', string][] = [
      ['POST', '/v1/messages'],
      ['PUT', '/v1/keys'],
      ['PUT', '/v1/devices'],
      ['POST', '/v1/messages/ack'],
      ['POST', '/v1/attachments'],
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.json(), async ([method, url], body) => {
        // Some bodies are valid ({} is an empty prekey upload); none may break the relay.
        const r = await signedRaw(body, 'application/json', url, method);
        expect(r.statusCode, r.body).toBeLessThan(500);
        if (r.statusCode !== 204) expect(typeof json(r)).toBe('object');
      }),
      { numRuns: 150 },
    );
  });

  it('arbitrary Authorization headers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (header) => {
        const r = await raw({ authorization: `Parley ${header}` }, undefined, 'GET', '/v1/keys').catch(() => ({
          statusCode: 400,
          body: '{}',
        }));
        expect(r.statusCode).toBeGreaterThanOrEqual(400);
        expect(r.statusCode).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
  });

  it('signed requests built by the client verify (sanity for the fuzz above)', async () => {
    const header = authorizationHeader(
      {
        method: 'GET',
        host: HOST,
        pathAndQuery: '/v1/keys',
        bodySha256: relay.app.relay.provider.backend.sha256(new Uint8Array(0)),
        timestamp: relay.app.relay.now(),
        nonce: new Uint8Array(16).fill(3),
      },
      alice.signer,
    );
    expect((await raw({ authorization: header }, undefined, 'GET', '/v1/keys')).statusCode).toBe(200);
  });
});
