// Sealed sender at the relay: delivery tokens (register, revoke, flag,
// expiry), POST /v2/sealed without authentication, budgets, the strangers
// path, and the relay's blindness: every table and every debug log line is
// searched for the sender. spec/12-sealed-sender.md §5-§7.
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { certificateHash, defaultProvider, encodeCertificate, seal, toHex, utf8 } from '@parley/core';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, loggerOptions } from '../src/app.ts';
import { withDefaults } from '../src/config.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { MAX_TOKENS_PER_REQUEST, TOKEN_LIFETIME_MS } from '../src/limits/sealed.ts';
import { type Grant, HOST, type TestDevice, envelopeFor, grant, inject, json, makeDevice, register, toBase64Url } from './support.ts';

const provider = defaultProvider();
const DAY = 86_400_000;

interface World {
  app: FastifyInstance;
  clock: { now: number };
  logs: string[];
  dbPath: string;
  close(): Promise<void>;
}

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

/** A relay on a SQLite file, its log captured at debug level. */
async function start(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-sealed-'));
  const dbPath = join(dir, 'relay.sqlite');
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const clock = { now: Date.now() };
  const config = withDefaults({ dataDir: dir, logLevel: 'debug' });
  const app = await buildApp({
    config: { dataDir: dir, logLevel: 'debug' },
    storage: new SqliteStorage({ path: dbPath }),
    now: () => clock.now,
    logger: { ...(loggerOptions(config) as object), level: 'debug', stream } as never,
  });
  await app.ready();
  world = {
    app,
    clock,
    logs,
    dbPath,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

async function registerTokens(w: World, recipient: TestDevice, grants: Grant[], expiresAt = w.clock.now + TOKEN_LIFETIME_MS) {
  return inject(w.app, recipient.signer, {
    method: 'PUT',
    url: '/v2/tokens',
    json: { tokens: grants.map((g) => ({ hash: toBase64Url(g.hash), expiresAt, scope: 'contact' })) },
  });
}

function sealFor(from: TestDevice, to: TestDevice, g: Grant, body: string): Uint8Array {
  return seal.sealToContact(
    {
      recipientIdentityKey: to.device.certificate.identityKey,
      recipientCertificateHash: certificateHash(to.device.certificate),
      senderIdentityPrivateKey: from.device.identityKeyPair.privateKey,
      senderDeviceId: from.device.deviceId,
      tokenHash: g.hash,
      frankingTag: null,
      message: utf8(body),
    },
    provider,
  );
}

/** An unauthenticated sealed send: no signer, no Authorization header. */
function sendSealed(w: World, messages: { to: TestDevice; g: Grant; id: string; envelope: Uint8Array }[]) {
  return inject(w.app, null, {
    method: 'POST',
    url: '/v2/sealed',
    json: {
      messages: messages.map((m) => ({
        account: m.to.id,
        deviceId: m.to.device.deviceId,
        id: m.id,
        token: toBase64Url(m.g.token),
        envelope: toBase64Url(m.envelope),
      })),
    },
  });
}

type Inbox = { messages: { seq: number; id: string; envelope: string; sender: { account: string; deviceId: number } }[] };
const inbox = async (w: World, d: TestDevice) => json<Inbox>(await inject(w.app, d.signer, { method: 'GET', url: '/v1/messages' }));

/** Every row of every table: its table name and its values, blobs as hex. */
function dumpDatabase(path: string): { table: string; row: string; values: Record<string, string> }[] {
  const db = new Database(path, { readonly: true });
  try {
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    const out: { table: string; row: string; values: Record<string, string> }[] = [];
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        const values = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : String(v)]));
        out.push({ table: name, row: `${name}:${JSON.stringify(values)}`, values });
      }
    }
    return out;
  } finally {
    db.close();
  }
}

describe('sealed sends', () => {
  it('delivers a sealed envelope that the recipient opens, and stores and logs nothing about the sender', async () => {
    const w = await start();
    const alice = makeDevice(undefined, 7);
    const bob = makeDevice();
    await register(w.app, alice);
    await register(w.app, bob);
    const g = grant(bob);
    expect((await registerTokens(w, bob, [g])).statusCode).toBe(200);
    const before = new Set(dumpDatabase(w.dbPath).map((x) => x.row));
    const sealed = sealFor(alice, bob, g, 'inner message');
    const r = await sendSealed(w, [{ to: bob, g, id: 'm1', envelope: sealed }]);
    expect(r.statusCode, r.body).toBe(200);
    // An exact retry is idempotent by (token hash, device, id).
    expect((await sendSealed(w, [{ to: bob, g, id: 'm1', envelope: sealed }])).statusCode).toBe(200);

    const got = (await inbox(w, bob)).messages;
    expect(got).toHaveLength(1);
    expect(got[0]?.sender).toEqual({ account: toBase64Url(g.hash), deviceId: 0 });
    const opened = seal.openContactSeal({
      seal: Buffer.from(got[0]?.envelope ?? '', 'base64url'),
      recipientIdentityPrivateKey: bob.device.identityKeyPair.privateKey,
      recipientCertificateHash: certificateHash(bob.device.certificate),
      tokenHash: g.hash,
      frankingTag: null,
      candidates: [{ deviceId: 7, identityKey: alice.device.certificate.identityKey }],
    });
    expect(new TextDecoder().decode(opened.message)).toBe('inner message');

    // What would name Alice: her account key, device keys, certificate and its hash, in hex and base64url.
    const cert = encodeCertificate(alice.device.certificate);
    const secrets = [
      alice.account.publicKey,
      alice.device.certificate.signingKey,
      alice.device.certificate.identityKey,
      cert,
      certificateHash(alice.device.certificate),
      provider.backend.sha256(alice.account.publicKey),
    ];
    const after = dumpDatabase(w.dbPath);
    // Every row the sealed sends added or changed (in any table) is free of Alice.
    const added = after.filter((x) => !before.has(x.row));
    expect(added.some((x) => x.table === 'messages')).toBe(true);
    for (const x of added) {
      for (const s of secrets) {
        expect(x.row.includes(toHex(s)) || x.row.includes(toBase64Url(s)), `${x.table} names the sender`).toBe(false);
      }
    }
    // Alice is registered, so her keys are in the identified tables, and only there.
    const identified = new Set(['devices', 'one_time_prekeys', 'kem_prekeys', 'device_lists', 'seen_requests', 'seen_request_slots']);
    for (const x of after) {
      if (identified.has(x.table)) continue;
      for (const s of secrets) expect(x.row.includes(toHex(s)), `${x.table} names the sender`).toBe(false);
    }
    // The sealed row: the sender slot holds the token hash and device 0, never Alice's device id 7.
    const row = after.find((x) => x.table === 'messages')?.values;
    expect(row?.['sender_account']).toBe(toHex(g.hash));
    expect(row?.['sender_device']).toBe('0');

    // Control: the same scan finds Alice in the rows of an identified (v1) send, so it can fail.
    const beforeV1 = new Set(after.map((x) => x.row));
    await inject(w.app, alice.signer, { method: 'POST', url: '/v1/messages', json: { messages: [envelopeFor(bob, 'v1')] } });
    const v1Rows = dumpDatabase(w.dbPath).filter((x) => !beforeV1.has(x.row));
    expect(v1Rows.some((x) => x.row.includes(toHex(alice.account.publicKey)))).toBe(true);
    await w.app.close();
    // The log at debug level: route, status and timing only.
    expect(w.logs.length).toBeGreaterThan(0);
    expect(w.logs.some((l) => l.includes('/v2/sealed'))).toBe(true);
    for (const line of w.logs) {
      for (const s of [...secrets, g.token, g.hash]) {
        expect(line.includes(toHex(s)), line).toBe(false);
        expect(line.includes(toBase64Url(s)), line).toBe(false);
      }
    }
    w.close = async () => {
      rmSync(join(w.dbPath, '..'), { recursive: true, force: true });
    };
  });

  it('refuses an unknown, a revoked and an expired token with one code, and stores nothing', async () => {
    const w = await start();
    const alice = makeDevice();
    const bob = makeDevice();
    await register(w.app, alice);
    await register(w.app, bob);
    const g = grant(bob);
    const unknown = await sendSealed(w, [{ to: bob, g, id: 'u', envelope: sealFor(alice, bob, g, 'x') }]);
    expect(unknown.statusCode).toBe(403);
    expect(json(unknown).code).toBe('TOKEN_INVALID');

    await registerTokens(w, bob, [g]);
    expect((await sendSealed(w, [{ to: bob, g, id: 'ok', envelope: sealFor(alice, bob, g, 'x') }])).statusCode).toBe(200);
    // Someone else's account cannot revoke Bob's token.
    const mallory = makeDevice();
    await register(w.app, mallory);
    const notMine = await inject(w.app, mallory.signer, { method: 'DELETE', url: '/v2/tokens', json: { hashes: [toBase64Url(g.hash)] } });
    expect(json(notMine)).toEqual({ revoked: 0 });
    const revoke = await inject(w.app, bob.signer, { method: 'DELETE', url: '/v2/tokens', json: { hashes: [toBase64Url(g.hash)] } });
    expect(json(revoke)).toEqual({ revoked: 1 });
    const revoked = await sendSealed(w, [{ to: bob, g, id: 'r', envelope: sealFor(alice, bob, g, 'x') }]);
    expect(revoked.statusCode).toBe(403);
    expect(json(revoked).code).toBe('TOKEN_INVALID');

    // Expiry, then the refresh the recipient's client makes: a new token, registered, works.
    const g2 = grant(bob);
    await registerTokens(w, bob, [g2], w.clock.now + DAY);
    w.clock.now += DAY + 1;
    const expired = await sendSealed(w, [{ to: bob, g: g2, id: 'e', envelope: sealFor(alice, bob, g2, 'x') }]);
    expect(json(expired).code).toBe('TOKEN_INVALID');
    const g3 = grant(bob);
    await registerTokens(w, bob, [g3]);
    expect((await sendSealed(w, [{ to: bob, g: g3, id: 'f', envelope: sealFor(alice, bob, g3, 'x') }])).statusCode).toBe(200);
    expect((await inbox(w, bob)).messages.map((m) => m.id)).toEqual(['ok', 'f']);
  });

  it('a token is bound to its recipient account: presented for another account it is invalid', async () => {
    const w = await start();
    const alice = makeDevice();
    const bob = makeDevice();
    const carol = makeDevice();
    for (const d of [alice, bob, carol]) await register(w.app, d);
    const g = grant(bob);
    await registerTokens(w, bob, [g]);
    const r = await sendSealed(w, [{ to: carol, g, id: 'x', envelope: sealFor(alice, carol, g, 'x') }]);
    expect(json(r).code).toBe('TOKEN_INVALID');
  });

  it('checks the device list per recipient account, as the v1 send does', async () => {
    const w = await start();
    const alice = makeDevice();
    const bob = makeDevice();
    const bob2 = makeDevice(bob.account, 2);
    for (const d of [alice, bob, bob2]) await register(w.app, d);
    const g = grant(bob);
    await registerTokens(w, bob, [g]);
    const r = await sendSealed(w, [{ to: bob, g, id: 'x', envelope: sealFor(alice, bob, g, 'x') }]);
    expect(r.statusCode).toBe(409);
    expect(json<{ details: { mismatches: unknown[] } }>(r).details.mismatches).toEqual([
      { account: bob.id, missingDevices: [2], extraDevices: [] },
    ]);
  });

  it('registers and revokes the most tokens one request may carry', async () => {
    const w = await start();
    const bob = makeDevice();
    await register(w.app, bob);
    const many = Array.from({ length: MAX_TOKENS_PER_REQUEST }, () => grant(bob));
    const r = await registerTokens(w, bob, many);
    expect(r.statusCode, r.body).toBe(200);
    expect(json(r)).toEqual({ live: MAX_TOKENS_PER_REQUEST });
    const revoke = await inject(w.app, bob.signer, {
      method: 'DELETE',
      url: '/v2/tokens',
      json: { hashes: many.map((g) => toBase64Url(g.hash)) },
    });
    expect(json(revoke)).toEqual({ revoked: MAX_TOKENS_PER_REQUEST });
    const tooMany = await registerTokens(w, bob, [...many, grant(bob)]);
    expect(tooMany.statusCode).toBe(400);
  });

  it('three flags revoke a token; each halves its budget first', async () => {
    const w = await start();
    const bob = makeDevice();
    await register(w.app, bob);
    const g = grant(bob);
    await registerTokens(w, bob, [g]);
    const flag = () =>
      inject(w.app, bob.signer, { method: 'POST', url: '/v2/tokens/flag', json: { hash: toBase64Url(g.hash), reason: 'spam' } });
    expect(json(await flag())).toEqual({ status: 'flagged' });
    expect(json(await flag())).toEqual({ status: 'flagged' });
    expect(json(await flag())).toEqual({ status: 'revoked' });
    expect((await flag()).statusCode).toBe(404);
  });

  it('the strangers path: an identified first message goes through, within the day budgets', async () => {
    const w = await start();
    const alice = makeDevice();
    const bob = makeDevice();
    await register(w.app, alice);
    await register(w.app, bob);
    const r = await inject(w.app, alice.signer, { method: 'POST', url: '/v2/messages', json: { messages: [envelopeFor(bob, 'hello')] } });
    expect(r.statusCode, r.body).toBe(200);
    const got = (await inbox(w, bob)).messages;
    expect(got[0]?.sender).toEqual({ account: alice.id, deviceId: 1 });
  });

  it('refuses a sealed send without a token field, and accepts no Authorization pretence', async () => {
    const w = await start();
    const bob = makeDevice();
    await register(w.app, bob);
    const r = await inject(w.app, null, {
      method: 'POST',
      url: '/v2/sealed',
      json: { messages: [{ account: bob.id, deviceId: 1, id: 'x', envelope: 'AAAA' }] },
      headers: { host: HOST },
    });
    expect(r.statusCode).toBe(400);
  });
});
