// Issue 12 finding 1: an unauthenticated client must not make the relay read
// or parse a large body. Each attack declares a body of nearly 8 MiB (under
// the old global limit), sends only its first part, and waits for the
// answer: the relay must refuse from the headers alone, before the rest of
// the body exists. Meanwhile a signed client sends and fetches as usual.
// spec/09-relay.md §3.3, §8.1.
import { defaultProvider, encodeCertificate, utf8 } from '@parley/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRE_AUTH_BODY_BYTES } from '../../src/front-door/body-limits.ts';
import {
  HOST,
  type TestDevice,
  contentDigest,
  inject,
  listeningRelay,
  makeDevice,
  register,
  signRequest,
  toBase64Url,
} from '../support.ts';
import { type RawConnection, head, rawConnect } from './raw-http.ts';

let relay: Awaited<ReturnType<typeof listeningRelay>>;
let alice: TestDevice;
let bob: TestDevice;

beforeAll(async () => {
  relay = await listeningRelay();
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
});
afterAll(() => relay.close());

/** Just under the 8 MiB the old relay accepted on every JSON route. */
const DECLARED = 8 * 1024 * 1024 - 1;
/** What the attacker actually sends of it: nested arrays, the costliest JSON to parse. */
const PREFIX = Buffer.from('['.repeat(64 * 1024));

/** Opens a request declaring DECLARED body bytes, sends PREFIX of them, and returns the connection. */
async function partialPost(path: string, headers: Record<string, string>): Promise<RawConnection> {
  const c = await rawConnect(relay.url);
  c.write(head('POST', path, { host: HOST, 'content-type': 'application/json', 'content-length': DECLARED, ...headers }));
  c.write(PREFIX);
  return c;
}

/** A real signature by a registered device, over a body the attacker then does not send. */
function signedFor(path: string, declaredBody: Uint8Array) {
  return signRequest(alice.signer, { method: 'POST', url: path, body: declaredBody }, Date.now()).authorization;
}

async function legitimateRound(n: number): Promise<number> {
  const client = relay.client(alice.signer);
  for (let i = 0; i < n; i++) {
    await client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: `legit-${Date.now()}-${i}`, envelope: utf8(`hello ${i}`) }]);
  }
  const fetched = await relay.client(bob.signer).fetchMessages({ limit: 500 });
  return fetched.messages.length;
}

describe('finding 1: large bodies before authentication', () => {
  it('a registration with its full prekey pools authenticates from its headers and fits its route', async () => {
    // 1000 one-time X25519 and 100 ML-KEM keys: the largest registration the schema allows, about 225 KB.
    const big = makeDevice(undefined, 1, { oneTimePreKeys: 1000, kemPreKeys: 100 });
    const r = await register(relay.app, big);
    expect(r.statusCode).toBe(200);
  });

  it('a registration whose body carries another certificate than its header is refused', async () => {
    const carol = makeDevice(undefined, 1, { oneTimePreKeys: 0, kemPreKeys: 0 });
    const mallory = makeDevice(undefined, 1, { oneTimePreKeys: 0, kemPreKeys: 0 });
    const error = await register(relay.app, carol, {
      'parley-certificate': toBase64Url(encodeCertificate(mallory.device.certificate)),
    }).catch((e: Error) => e.message);
    // Mallory's certificate does not name Carol's account, so it fails before the body is read.
    expect(error).toMatch(/registration failed: 400 .*BAD_CERTIFICATE/);
    const swapped = await register(
      relay.app,
      carol,
      {
        'parley-certificate': toBase64Url(encodeCertificate(carol.device.certificate)),
        // The body then names another certificate of the same account and device id.
      },
      { certificate: toBase64Url(encodeCertificate(carol.account.createDevice(1).certificate)) },
    ).catch((e: Error) => e.message);
    expect(swapped).toMatch(/registration failed: 400 .*BAD_CERTIFICATE/);
  });

  it('a malformed Content-Digest is 400 MALFORMED', async () => {
    for (const digest of ['sha-256=:abc:', 'md5', `sha-256=:${'A'.repeat(43)}=:, sha-256=:${'A'.repeat(43)}=:`]) {
      const r = await inject(relay.app, alice.signer, {
        method: 'POST',
        url: '/v1/messages/ack',
        json: { seqs: [1] },
        headers: { 'content-digest': digest },
      });
      expect([digest, r.statusCode, JSON.parse(r.body).code]).toEqual([digest, 400, 'MALFORMED']);
    }
  });

  it('refuses each unauthenticated large body from its headers, before the body is sent, while a signed client is served', async () => {
    const forgedDigest = contentDigest(defaultProvider().backend.sha256(utf8('{"messages":[]}')));
    const bogusSignature = `Parley ${alice.id}.1.${Date.now()}.${'A'.repeat(22)}.${'B'.repeat(85)}A`;
    const attacks = await Promise.all([
      // No Authorization at all.
      partialPost('/v1/messages', {}),
      partialPost('/v1/devices', {}),
      // A well-formed header whose signature does not verify, with a declared digest.
      partialPost('/v1/messages', { authorization: bogusSignature, 'content-digest': forgedDigest }),
      // A registered device's header without Content-Digest: the body would be needed, and it is too big to read first.
      partialPost('/v1/messages', { authorization: signedFor('/v1/messages', utf8('x')) }),
      // A registration whose certificate is only in the body: the same.
      partialPost('/v1/devices', { authorization: signedFor('/v1/devices', utf8('x')) }),
    ]);
    const served = await legitimateRound(20);
    const statuses = await Promise.all(attacks.map((c) => c.status(5000)));
    for (const c of attacks) c.destroy();
    // 401 from the header, or 413 from the route's limit: either way, answered with most of the body never sent.
    for (const s of statuses) expect([401, 413]).toContain(s);
    expect(statuses.slice(3)).toEqual([413, 413]);
    expect(served).toBeGreaterThanOrEqual(20);
  });

  it("bounds a signed body by its route's own limit, before reading it", async () => {
    // A valid signature and digest for an acknowledgement route, declaring far more than an ack can need.
    const body = utf8('{"seqs":[1]}');
    const { authorization } = signRequest(alice.signer, { method: 'POST', url: '/v1/messages/ack', body }, Date.now());
    const c = await partialPost('/v1/messages/ack', {
      authorization,
      'content-digest': contentDigest(defaultProvider().backend.sha256(body)),
    });
    expect(await c.status(5000)).toBe(413);
    c.destroy();
  });

  it('reads a chunked body (no length to check first) no further than the pre-authentication limit', async () => {
    const c = await rawConnect(relay.url);
    c.write(
      head('POST', '/v1/messages', {
        host: HOST,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        authorization: signedFor('/v1/messages', utf8('x')),
      }),
    );
    const chunk = Buffer.from('['.repeat(1024));
    // Twice the limit, in 1 KiB chunks; the relay must answer 413 without waiting for the end.
    for (let i = 0; i < (2 * PRE_AUTH_BODY_BYTES) / 1024; i++) c.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`);
    expect(await c.status(5000)).toBe(413);
    c.destroy();
  });

  it('refuses a body that does not match its signed digest, before parsing it', async () => {
    const signedBody = utf8(JSON.stringify({ seqs: [1] }));
    const sentBody = utf8(JSON.stringify({ seqs: [2] }));
    const { authorization } = signRequest(alice.signer, { method: 'POST', url: '/v1/messages/ack', body: signedBody }, Date.now());
    const c = await rawConnect(relay.url);
    c.write(
      head('POST', '/v1/messages/ack', {
        host: HOST,
        'content-type': 'application/json',
        'content-length': sentBody.length,
        authorization,
        'content-digest': contentDigest(defaultProvider().backend.sha256(signedBody)),
      }),
    );
    c.write(Buffer.from(sentBody));
    expect(await c.status(5000)).toBe(401);
    expect(c.received()).toContain('AUTH_BAD_SIGNATURE');
    c.destroy();
  });
});
