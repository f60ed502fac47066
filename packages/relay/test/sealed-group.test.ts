// Sealed group sends at the relay (spec/12-sealed-sender.md §5.2, §10): one
// unauthenticated request carries the group payload once and, per recipient
// device, its account's delivery token and its seal of the key wrap. The
// payload is stored once; every device gets [2, 7, seal, payload]; the whole
// request is all or nothing; retries are idempotent; acknowledgement and TTL
// work per row and take the payload with the last row. On SQLite and, with
// PARLEY_TEST_POSTGRES_URL, on PostgreSQL.
import { certificateHash, defaultProvider, seal } from '@parley/core';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_GROUP_SEAL_BYTES, TOKEN_LIFETIME_MS } from '../src/limits/sealed.ts';
import {
  type Grant,
  type TestDevice,
  type TestRelay,
  grant,
  inject,
  json,
  makeDevice,
  register,
  testRelay,
  toBase64Url,
} from './support.ts';
import { type StorageBackend, storageBackends } from './support/backends.ts';

const provider = defaultProvider();
const PG_URL = process.env.PARLEY_TEST_POSTGRES_URL;
if (!PG_URL && process.env['CI'] === 'true') throw new Error('CI=true but PARLEY_TEST_POSTGRES_URL is not set');
const BACKENDS = storageBackends('parley_sg', { poolSize: 2 });

interface Scene {
  relay: TestRelay;
  alice: TestDevice;
  /** Bob has two devices, Carol one. */
  bob: TestDevice;
  bob2: TestDevice;
  carol: TestDevice;
  tokens: Map<TestDevice['account'], Grant>;
}

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function scene(backend: StorageBackend): Promise<Scene> {
  const { open, drop } = backend.database();
  const relay = await testRelay({}, { storage: await open(), clock: true });
  cleanup = async () => {
    await relay.close();
    await drop();
  };
  const alice = makeDevice(undefined, 3);
  const bob = makeDevice();
  const bob2 = makeDevice(bob.account, 2);
  const carol = makeDevice();
  for (const d of [alice, bob, bob2, carol]) await register(relay.app, d);
  const tokens = new Map<TestDevice['account'], Grant>();
  for (const owner of [bob, carol]) {
    const g = grant(owner);
    tokens.set(owner.account, g);
    const r = await inject(relay.app, owner.signer, {
      method: 'PUT',
      url: '/v2/tokens',
      json: { tokens: [{ hash: toBase64Url(g.hash), expiresAt: relay.clock.now + TOKEN_LIFETIME_MS, scope: 'contact' }] },
    });
    expect(r.statusCode, r.body).toBe(200);
  }
  return { relay, alice, bob, bob2, carol, tokens };
}

/** What Alice's client builds: the payload once, and per device a seal of the wrap under its account's token. */
function groupSend(s: Scene, to: TestDevice[], text: string, tokens = s.tokens) {
  const { payload, wrap } = seal.sealGroupPayload(new TextEncoder().encode(text), provider);
  const messages = to.map((d) => {
    const g = tokens.get(d.account) as Grant;
    const envelope = seal.sealToContact(
      {
        recipientIdentityKey: d.device.certificate.identityKey,
        recipientCertificateHash: certificateHash(d.device.certificate),
        senderIdentityPrivateKey: s.alice.device.identityKeyPair.privateKey,
        senderDeviceId: s.alice.device.deviceId,
        tokenHash: g.hash,
        frankingTag: null,
        message: wrap,
      },
      provider,
    );
    return { account: d.id, deviceId: d.device.deviceId, id: 'g1', token: toBase64Url(g.token), envelope: toBase64Url(envelope) };
  });
  return { payload: toBase64Url(payload), messages };
}

const send = (s: Scene, body: unknown) => inject(s.relay.app, null, { method: 'POST', url: '/v2/sealed', json: body });

type Inbox = { messages: { seq: number; id: string; envelope: string; sender: { account: string; deviceId: number } }[] };
const inbox = async (s: Scene, d: TestDevice) => json<Inbox>(await inject(s.relay.app, d.signer, { method: 'GET', url: '/v1/messages' }));
const ack = (s: Scene, d: TestDevice, seqs: number[]) =>
  inject(s.relay.app, d.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs } });
const stats = (s: Scene) => s.relay.app.relay.storage.stats();

/** Opens what a device received: the seal (Alice as the only candidate), then the payload. */
function openDelivered(s: Scene, d: TestDevice, envelope: string, g: Grant): string {
  const framed = seal.decodeSealedGroupEnvelope(Buffer.from(envelope, 'base64url'));
  const opened = seal.openContactSeal(
    {
      seal: framed.seal,
      recipientIdentityPrivateKey: d.device.identityKeyPair.privateKey,
      recipientCertificateHash: certificateHash(d.device.certificate),
      tokenHash: g.hash,
      frankingTag: null,
      candidates: [{ deviceId: s.alice.device.deviceId, identityKey: s.alice.device.certificate.identityKey }],
    },
    provider,
  );
  return new TextDecoder().decode(seal.openGroupPayload(opened.message, framed.payload, provider));
}

describe.each(BACKENDS)('sealed group sends ($name)', (backend) => {
  it('stores the payload once, delivers [seal, payload] to every device, and a replay stores nothing', async () => {
    const s = await scene(backend);
    const body = groupSend(s, [s.bob, s.bob2, s.carol], 'hello group');
    const r = await send(s, body);
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r)).toEqual({ accepted: 3 });
    expect((await stats(s)).payloads).toBe(1);
    for (const d of [s.bob, s.bob2, s.carol]) {
      const got = (await inbox(s, d)).messages;
      expect(got).toHaveLength(1);
      const g = s.tokens.get(d.account) as Grant;
      expect(got[0]?.sender).toEqual({ account: toBase64Url(g.hash), deviceId: 0 });
      expect(openDelivered(s, d, got[0]?.envelope ?? '', g)).toBe('hello group');
    }
    // The same request again (a retry after a lost answer): idempotent per (token hash, device, id).
    const again = await send(s, body);
    expect(again.statusCode, again.body).toBe(200);
    expect((await stats(s)).payloads).toBe(1);
    expect((await stats(s)).queuedMessages).toBe(3);
    // A retry re-sealed (seals are randomised) with the same ids is still one copy per device.
    expect((await send(s, groupSend(s, [s.bob, s.bob2, s.carol], 'hello group'))).statusCode).toBe(200);
    expect((await stats(s)).queuedMessages).toBe(3);
    expect((await stats(s)).payloads).toBe(1);
  });

  it('each device acknowledges its own row; the payload goes with the last one', async () => {
    const s = await scene(backend);
    expect((await send(s, groupSend(s, [s.bob, s.bob2, s.carol], 'ack me'))).statusCode).toBe(200);
    for (const [i, d] of [s.bob, s.bob2, s.carol].entries()) {
      const [m] = (await inbox(s, d)).messages;
      expect((await ack(s, d, [m?.seq ?? -1])).statusCode).toBe(204);
      expect((await inbox(s, d)).messages).toHaveLength(0);
      expect((await stats(s)).payloads).toBe(i < 2 ? 1 : 0);
    }
    // The other devices still had theirs until they acknowledged: nothing is left now.
    expect((await stats(s)).queuedMessages).toBe(0);
  });

  it('a row expires after the request’s TTL, and the sweep takes the payload', async () => {
    const s = await scene(backend);
    const r = await send(s, { ...groupSend(s, [s.bob, s.bob2, s.carol], 'short-lived'), ttlSeconds: 60 });
    expect(r.statusCode, r.body).toBe(200);
    s.relay.clock.now += 61_000;
    expect((await inbox(s, s.carol)).messages).toHaveLength(0);
    await s.relay.app.relay.storage.sweep(s.relay.clock.now);
    expect((await stats(s)).payloads).toBe(0);
    expect((await stats(s)).queuedMessages).toBe(0);
  });

  it('a revoked or unknown token anywhere in the list refuses the whole request: nothing stored for anyone', async () => {
    const s = await scene(backend);
    const carolToken = s.tokens.get(s.carol.account) as Grant;
    const revoke = await inject(s.relay.app, s.carol.signer, {
      method: 'DELETE',
      url: '/v2/tokens',
      json: { hashes: [toBase64Url(carolToken.hash)] },
    });
    expect(json(revoke)).toEqual({ revoked: 1 });
    const revoked = await send(s, groupSend(s, [s.bob, s.bob2, s.carol], 'x'));
    expect(revoked.statusCode).toBe(403);
    expect(json(revoked).code).toBe('TOKEN_INVALID');
    const unknown = new Map(s.tokens);
    unknown.set(s.carol.account, grant(s.carol));
    const r = await send(s, groupSend(s, [s.bob, s.bob2, s.carol], 'x', unknown));
    expect(json(r).code).toBe('TOKEN_INVALID');
    expect((await stats(s)).payloads).toBe(0);
    expect((await inbox(s, s.bob)).messages).toHaveLength(0);
  });

  it('a device-list mismatch for one account refuses the whole request, the other accounts included', async () => {
    const s = await scene(backend);
    // Bob's second device left out.
    const r = await send(s, groupSend(s, [s.bob, s.carol], 'x'));
    expect(r.statusCode).toBe(409);
    expect(json<{ details: { mismatches: unknown[] } }>(r).details.mismatches).toEqual([
      { account: s.bob.id, missingDevices: [2], extraDevices: [] },
    ]);
    expect((await inbox(s, s.carol)).messages).toHaveLength(0);
    expect((await stats(s)).payloads).toBe(0);
  });

  it('bounds the per-device seal: a large envelope beside a payload is refused before any token is spent', async () => {
    const s = await scene(backend);
    const body = groupSend(s, [s.bob, s.bob2, s.carol], 'x');
    const big = {
      ...body,
      messages: body.messages.map((m, i) => (i === 0 ? { ...m, envelope: toBase64Url(new Uint8Array(MAX_GROUP_SEAL_BYTES + 1)) } : m)),
    };
    const r = await send(s, big);
    expect(r.statusCode).toBe(413);
    expect((await stats(s)).payloads).toBe(0);
    // The token's budget is untouched: the honest request still goes.
    expect((await send(s, body)).statusCode).toBe(200);
  });

  it('franks the group message’s tag for every device with no sender named, and delivers it with the envelope', async () => {
    const s = await scene(backend);
    const tag = new Uint8Array(32).fill(7);
    const body = groupSend(s, [s.bob, s.bob2, s.carol], 'tagged');
    const r = await send(s, { ...body, messages: body.messages.map((m) => ({ ...m, frankingTag: toBase64Url(tag) })) });
    expect(r.statusCode, r.body).toBe(200);
    const ids = new Set<string>();
    for (const d of [s.bob, s.bob2, s.carol]) {
      const [m] = (await inbox(s, d)).messages as (Inbox['messages'][number] & {
        delivery?: { frankingTag: string; envelopeId: string };
      })[];
      expect(m?.delivery?.frankingTag).toBe(toBase64Url(tag));
      ids.add(m?.delivery?.envelopeId ?? '');
    }
    // One envelope id per device: each delivery is its own franked envelope.
    expect(ids.size).toBe(3);
  });
});
