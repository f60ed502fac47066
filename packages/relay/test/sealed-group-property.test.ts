// POST /v2/sealed with a payload (spec/12-sealed-sender.md §10) under
// hostile bodies: a valid sealed group send to three devices of two
// accounts, mutated (fields dropped, replaced by other JSON types or edge
// values, elements duplicated, tokens swapped between accounts, payload and
// seals empty, non-canonical, one byte over their bounds). Every answer is
// a typed 4xx or a 200, never a 5xx; a refused request stores nothing at
// all (all or nothing, the payload included); an accepted one gives each
// named device exactly one [2, 7, seal, payload] row whose payload is the
// one sent. Bounded: 120 runs against one in-process relay on SQLite.
import { certificateHash, defaultProvider, seal } from '@parley/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_GROUP_SEAL_BYTES, TOKEN_LIFETIME_MS } from '../src/limits/sealed.ts';
import { type TestDevice, type TestRelay, inject, json, makeDevice, register, testRelay, toBase64Url } from './support.ts';

const provider = defaultProvider();
type Body = Record<string, unknown> & { messages: Record<string, unknown>[] };

let relay: TestRelay;
let alice: TestDevice;
let bob: TestDevice;
let bob2: TestDevice;
let carol: TestDevice;
const tokens = new Map<string, Uint8Array>();
let n = 0;

beforeAll(async () => {
  relay = await testRelay({}, { clock: true });
  alice = makeDevice(undefined, 3);
  bob = makeDevice();
  bob2 = makeDevice(bob.account, 2);
  carol = makeDevice();
  for (const d of [alice, bob, bob2, carol]) await register(relay.app, d);
  for (const owner of [bob, carol]) {
    const token = seal.newDeliveryToken(provider);
    tokens.set(owner.id, token);
    const hash = seal.deliveryTokenHash(owner.account.publicKey, token, provider);
    const r = await inject(relay.app, owner.signer, {
      method: 'PUT',
      url: '/v2/tokens',
      json: { tokens: [{ hash: toBase64Url(hash), expiresAt: relay.clock.now + TOKEN_LIFETIME_MS, scope: 'contact' }] },
    });
    expect(r.statusCode, r.body).toBe(200);
  }
});
afterAll(() => relay.close());

/** A valid sealed group send from Alice to Bob's two devices and Carol's one, with a fresh client id. */
function validBody(): Body {
  const id = `p${++n}`;
  const { payload, wrap } = seal.sealGroupPayload(new TextEncoder().encode(`hello ${n}`), provider);
  const messages = [bob, bob2, carol].map((d) => {
    const token = tokens.get(d.id) as Uint8Array;
    const envelope = seal.sealToContact(
      {
        recipientIdentityKey: d.device.certificate.identityKey,
        recipientCertificateHash: certificateHash(d.device.certificate),
        senderIdentityPrivateKey: alice.device.identityKeyPair.privateKey,
        senderDeviceId: alice.device.deviceId,
        tokenHash: seal.deliveryTokenHash(d.account.publicKey, token, provider),
        frankingTag: null,
        message: wrap,
      },
      provider,
    );
    return { account: d.id, deviceId: d.device.deviceId, id, token: toBase64Url(token), envelope: toBase64Url(envelope) };
  });
  return { payload: toBase64Url(payload), messages };
}

const b64 = (n: number) => toBase64Url(new Uint8Array(n).fill(7));
/** Edge and wrong-type values for any field. */
const hostileValue = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    0,
    -1,
    2 ** 31,
    2 ** 53,
    1.5,
    '',
    'A',
    'AB=',
    'AQ', // non-canonical base64url of one byte ("AQ" is canonical; "AR" is not)
    'AR',
    true,
    [],
    {},
    b64(32),
    b64(33),
    b64(MAX_GROUP_SEAL_BYTES + 1),
    b64(15),
  ),
  fc.json({ maxDepth: 2 }).map((s) => JSON.parse(s) as unknown),
);

type Mutation = (b: Body) => unknown;
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // A top-level field dropped or replaced.
  fc
    .tuple(fc.constantFrom('payload', 'messages', 'ttlSeconds', 'extra'), fc.option(hostileValue, { nil: undefined }))
    .map(([key, value]) => (b: Body) => {
      const out: Record<string, unknown> = { ...b };
      if (value === undefined) delete out[key];
      else out[key] = value;
      return out;
    }),
  // One element's field dropped or replaced.
  fc
    .tuple(
      fc.nat(2),
      fc.constantFrom('account', 'deviceId', 'id', 'token', 'envelope', 'certificateHash', 'frankingTag', 'extra'),
      fc.option(hostileValue, { nil: undefined }),
    )
    .map(([i, key, value]) => (b: Body) => {
      const messages = b.messages.map((m) => ({ ...m }));
      // An earlier mutation may have cut the list: the index wraps (an empty list has no element to change).
      if (messages.length === 0) return b;
      const m = messages[i % messages.length] as Record<string, unknown>;
      if (value === undefined) delete m[key];
      else m[key] = value;
      return { ...b, messages };
    }),
  // An element duplicated, or the elements cut to a strict subset of Bob's devices.
  fc
    .nat(2)
    .map((i) => (b: Body) => (b.messages.length === 0 ? b : { ...b, messages: [...b.messages, b.messages[i % b.messages.length]] })),
  fc.constant((b: Body) => ({ ...b, messages: b.messages.slice(1) })),
  // Tokens swapped between the accounts (each valid, for the other account).
  fc.constant((b: Body) => ({
    ...b,
    messages: b.messages.map((m) => ({ ...m, token: toBase64Url(tokens.get(m['account'] === bob.id ? carol.id : bob.id) as Uint8Array) })),
  })),
  // The payload cut short, emptied or grown past the relay's envelope bound.
  fc
    .constantFrom(0, 2, 15, 16)
    .map((len) => (b: Body) => (typeof b.payload === 'string' ? { ...b, payload: b.payload.slice(0, len) } : b)),
  fc.constant((b: Body) => ({ ...b, payload: b64(relay.app.relay.config.limits.maxEnvelopeBytes + 1) })),
);

describe('the bounds of a sealed group payload', () => {
  const send = (body: unknown) => inject(relay.app, null, { method: 'POST', url: '/v2/sealed', json: body });

  it('a payload shorter than an AEAD tag (no receiver can open it) is refused before any token is spent, storing nothing', async () => {
    for (const len of [1, 12, 15]) {
      const before = await relay.app.relay.storage.stats();
      const r = await send({ ...validBody(), payload: b64(len) });
      expect({ status: r.statusCode, code: json<{ code?: string }>(r).code }, `payload of ${len} bytes`).toEqual({
        status: 400,
        code: 'MALFORMED',
      });
      expect(await relay.app.relay.storage.stats()).toEqual(before);
    }
  });

  it('the largest message encrypted once (maxEnvelopeBytes + the AEAD tag) is accepted, one byte more is 413', async () => {
    const max = relay.app.relay.config.limits.maxEnvelopeBytes + 16;
    const over = await send({ ...validBody(), payload: b64(max + 1) });
    expect({ status: over.statusCode, code: json<{ code?: string }>(over).code }).toEqual({ status: 413, code: 'OVERSIZED' });
    const body = { ...validBody(), payload: b64(max) };
    const ok = await send(body);
    expect(ok.statusCode, ok.body).toBe(200);
    for (const d of [bob, bob2, carol]) {
      const got = json<{ messages: { seq: number; envelope: string }[] }>(
        await inject(relay.app, d.signer, { method: 'GET', url: '/v1/messages' }),
      );
      // What the device receives decodes with core's own bound.
      for (const m of got.messages) expect(seal.decodeSealedGroupEnvelope(Buffer.from(m.envelope, 'base64url')).payload.length).toBe(max);
      await inject(relay.app, d.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: got.messages.map((m) => m.seq) } });
    }
  });
});

function isMutable(b: unknown): b is Body {
  if (typeof b !== 'object' || b === null) return false;
  const messages = (b as Body).messages as unknown;
  return Array.isArray(messages) && messages.every((m) => typeof m === 'object' && m !== null && !Array.isArray(m));
}

describe('sealed group sends under hostile bodies', () => {
  it('never a 5xx; a refusal stores nothing; an acceptance stores one row per device with the payload sent', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 2 }), async (ms) => {
        const valid = validBody();
        const body = ms.reduce<unknown>(
          // A mutation reads the elements: after one that left non-objects there (a hostile `messages`, a duplicated
          // index past the end), the body is sent as it is.
          (b, m) => (isMutable(b) ? m(b) : b),
          valid,
        );
        const before = await relay.app.relay.storage.stats();
        const r = await inject(relay.app, null, { method: 'POST', url: '/v2/sealed', json: body });
        expect(r.statusCode, r.body).toBeLessThan(500);
        const answer = json<{ code?: string; accepted?: number }>(r);
        const after = await relay.app.relay.storage.stats();
        if (r.statusCode !== 200) {
          expect(typeof answer.code, r.body).toBe('string');
          expect(after, `refused with ${answer.code} but stored`).toEqual(before);
          return;
        }
        // Accepted: each named device got exactly one row, and it opens to the framing with the payload sent.
        // Without a payload the body is a per-account sealed send (spec 12 §5.2): each row is its element's envelope.
        const sent = body as Body;
        const payload = typeof sent.payload === 'string' ? Buffer.from(sent.payload, 'base64url') : undefined;
        for (const d of [bob, bob2, carol]) {
          const named = sent.messages.filter((m) => m['account'] === d.id && m['deviceId'] === d.device.deviceId);
          const got = json<{ messages: { seq: number; envelope: string }[] }>(
            await inject(relay.app, d.signer, { method: 'GET', url: '/v1/messages' }),
          ).messages;
          expect(got.length).toBe(named.length);
          if (payload) {
            for (const m of got) {
              const framed = seal.decodeSealedGroupEnvelope(Buffer.from(m.envelope, 'base64url'));
              expect(Buffer.from(framed.payload).equals(payload)).toBe(true);
            }
          } else {
            expect(got.map((m) => m.envelope).sort()).toEqual(named.map((m) => m['envelope']).sort());
          }
          if (got.length > 0) {
            const acked = await inject(relay.app, d.signer, {
              method: 'POST',
              url: '/v1/messages/ack',
              json: { seqs: got.map((m) => m.seq) },
            });
            expect(acked.statusCode).toBeLessThan(300);
          }
        }
        expect((await relay.app.relay.storage.stats()).queuedMessages).toBe(0);
      }),
      { numRuns: 120 },
    );
  });
});
