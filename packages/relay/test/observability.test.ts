// Logs, metrics, health: structured logs never carry bodies, keys or
// account ids; metrics count traffic without naming anyone; readiness
// follows shutdown. spec/09-relay.md §6; packages/relay/README.md.
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, loggerOptions } from '../src/app.ts';
import { withDefaults } from '../src/config.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { type TestDevice, envelopeFor, inject, makeDevice, register, toBase64Url } from './support.ts';

const lines: string[] = [];
let app: FastifyInstance;
let dir: string;
let alice: TestDevice;
let bob: TestDevice;
const SECRET_LOOKING = 'plaintext-would-never-be-here-but-envelope-bytes-must-not-be-logged';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'parley-obs-'));
  const config = withDefaults({ dataDir: dir, logLevel: 'trace' });
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  app = await buildApp({
    config,
    storage: new SqliteStorage({ path: ':memory:' }),
    logger: { ...(loggerOptions(config) as object), stream },
  });
  await app.ready();
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(app, alice);
  await register(app, bob);
  await inject(app, alice.signer, { method: 'POST', url: '/v1/messages', json: { messages: [envelopeFor(bob, 'm1', SECRET_LOOKING)] } });
  await inject(app, alice.signer, { method: 'GET', url: `/v1/keys/${bob.id}/1` });
  await inject(app, alice.signer, {
    method: 'POST',
    url: '/v1/messages',
    json: { messages: [{ ...envelopeFor(bob, 'm2'), deviceId: 5 }] },
  });
  await app.inject({ method: 'GET', url: '/v1/keys', headers: { authorization: 'Parley nonsense' } });
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('logs', () => {
  it('are structured JSON, one request per line at debug level', () => {
    expect(lines.length).toBeGreaterThan(3);
    const entries = lines.map((l) => JSON.parse(l) as { msg?: string; route?: string });
    expect(entries.some((e) => e.msg === 'request completed' && e.route === '/v1/messages')).toBe(true);
  });

  it('never contain envelopes, keys, account ids, signatures or bodies', () => {
    const all = lines.join('\n');
    const forbidden = [
      toBase64Url(new TextEncoder().encode(SECRET_LOOKING)),
      SECRET_LOOKING,
      alice.id,
      bob.id,
      toBase64Url(alice.device.certificate.signingKey),
      'Parley ',
    ];
    for (const f of forbidden) expect(all).not.toContain(f);
  });
});

describe('metrics', () => {
  it('count accepted envelopes, refusals, handed-out prekeys and requests by route pattern', async () => {
    const text = (await app.inject({ url: '/metrics' })).body;
    expect(text).toMatch(/^parley_relay_envelopes_accepted_total 1$/m);
    expect(text).toMatch(/^parley_relay_sends_rejected_total\{code="MISMATCHED_DEVICES"\} 1$/m);
    expect(text).toMatch(/^parley_relay_prekeys_handed_out_total\{kind="one_time"\} 1$/m);
    expect(text).toMatch(/^parley_relay_auth_failures_total\{code="AUTH_MALFORMED"\} 1$/m);
    expect(text).toMatch(/parley_relay_http_request_duration_seconds_count\{route="\/v1\/messages",method="POST",status="200"\} 1/);
    expect(text).toMatch(/^parley_relay_storage\{kind="queued_messages"\} 1$/m);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toContain(alice.id);
    expect(text).not.toContain(bob.id);
  });
});

describe('health', () => {
  it('is live and ready, and not ready once shutdown starts', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    app.relay.closing = true;
    const r = await app.inject({ url: '/readyz' });
    app.relay.closing = false;
    expect(r.statusCode).toBe(503);
    expect(r.json().code).toBe('UNAVAILABLE');
  });

  it('a plain GET on the websocket route is 426', async () => {
    const r = await app.inject({ url: '/v1/websocket' });
    expect(r.statusCode).toBe(426);
    expect(r.json().code).toBe('UPGRADE_REQUIRED');
  });
});
