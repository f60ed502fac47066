// Issue 12 finding 7, the front-door items: each is a request a hostile or
// careless client can send, answered with the right status and code, and
// none of them costs the relay a log line at error level. Every case runs
// against a real relay on loopback. spec/09-relay.md §3.3, §4.5, §4.6, §8, §9.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limits as coreLimits, utf8 } from '@parley/core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildApp } from '../../src/app.ts';
import type { RelayConfigOverrides } from '../../src/config.ts';
import { SqliteStorage } from '../../src/storage/sqlite.ts';
import { HOST, type TestDevice, inject, json, listenLocally, makeDevice, register, signRequest, toBase64Url } from '../support.ts';
import { head, rawConnect } from './raw-http.ts';

interface LoggedRelay {
  app: FastifyInstance;
  url: string;
  /** Every log line the relay wrote, parsed. */
  logs: { level: number; msg?: string }[];
  close(): Promise<void>;
}

/** A listening relay that logs at debug into memory, so a test can see what an attacker makes it write. */
async function loggedRelay(config: RelayConfigOverrides = {}): Promise<LoggedRelay> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-door-'));
  const logs: { level: number; msg?: string }[] = [];
  const app = await buildApp({
    config: { dataDir: dir, ...config },
    storage: new SqliteStorage({ path: ':memory:' }),
    logger: { level: 'debug', stream: { write: (line: string) => logs.push(JSON.parse(line)) } },
  });
  const url = await listenLocally(app);
  return {
    app,
    url,
    logs,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const ERROR = 50;

let relay: LoggedRelay;
let alice: TestDevice;
let bob: TestDevice;

beforeAll(async () => {
  relay = await loggedRelay({ limits: { maxEnvelopeBytes: 2048 } });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
});
afterAll(() => relay.close());

const send = (bytes: number, id: string) =>
  inject(relay.app, alice.signer, {
    method: 'POST',
    url: '/v1/messages',
    json: { messages: [{ account: bob.id, deviceId: 1, id, envelope: toBase64Url(new Uint8Array(bytes).fill(7)) }] },
  });

describe('finding 7: front-door edge cases', () => {
  it('an envelope one byte over the configured limit is 413 OVERSIZED, and the configured limit is the one applied', async () => {
    expect((await send(2048, 'at-limit')).statusCode).toBe(200);
    const over = await send(2049, 'over-limit');
    expect(over.statusCode).toBe(413);
    expect(json(over)['code']).toBe('OVERSIZED');
    // Above core's default: a relay configured for larger envelopes takes them.
    const big = await loggedRelay({ limits: { maxEnvelopeBytes: coreLimits.MAX_MESSAGE_BYTES + 4096 } });
    try {
      const carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
      const dave = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
      await register(big.app, carol);
      await register(big.app, dave);
      const bigSend = (bytes: number, id: string) =>
        inject(big.app, carol.signer, {
          method: 'POST',
          url: '/v1/messages',
          json: { messages: [{ account: dave.id, deviceId: 1, id, envelope: toBase64Url(new Uint8Array(bytes)) }] },
        });
      expect((await bigSend(coreLimits.MAX_MESSAGE_BYTES + 4096, 'big')).statusCode).toBe(200);
      const tooBig = await bigSend(coreLimits.MAX_MESSAGE_BYTES + 4097, 'too-big');
      expect([tooBig.statusCode, json(tooBig)['code']]).toEqual([413, 'OVERSIZED']);
    } finally {
      await big.close();
    }
  });

  it('a body of another media type than the route takes is 415, UTF-16 JSON included', async () => {
    const ack = { method: 'POST' as const, url: '/v1/messages/ack', json: { seqs: [1] } };
    const asText = await inject(relay.app, alice.signer, { ...ack, contentType: 'text/plain' });
    expect([asText.statusCode, json(asText)['code']]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const utf16 = await inject(relay.app, alice.signer, { ...ack, contentType: 'application/json; charset=utf-16' });
    expect(utf16.statusCode).toBe(415);
    const utf8Json = await inject(relay.app, alice.signer, { ...ack, contentType: 'application/json; charset=utf-8' });
    expect(utf8Json.statusCode).toBe(204);

    const created = await inject(relay.app, alice.signer, { method: 'POST', url: '/v1/attachments', json: { size: 10 } });
    const id = json<{ id: string }>(created).id;
    const jsonChunk = await inject(relay.app, alice.signer, {
      method: 'PATCH',
      url: `/v1/attachments/${id}?offset=0`,
      body: '{"not":"octets"}',
      contentType: 'application/json',
      unsignedBody: true,
    });
    expect([jsonChunk.statusCode, json(jsonChunk)['code']]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
  });

  it('an auth timestamp of 0 is AUTH_STALE_TIMESTAMP, with the server time to correct by', async () => {
    const r = await inject(relay.app, alice.signer, { method: 'GET', url: '/v1/keys', timestamp: 0 });
    expect([r.statusCode, json(r)['code']]).toEqual([401, 'AUTH_STALE_TIMESTAMP']);
    expect(typeof (json(r)['details'] as { serverTime?: unknown }).serverTime).toBe('number');
  });

  it('a request with two Authorization headers is refused, whichever comes first', async () => {
    const good = signRequest(alice.signer, { method: 'GET', url: '/v1/keys' }, Date.now()).authorization;
    const other = signRequest(bob.signer, { method: 'GET', url: '/v1/keys' }, Date.now()).authorization;
    const c = await rawConnect(relay.url);
    c.write(`GET /v1/keys HTTP/1.1\r\nHost: ${HOST}\r\nAuthorization: ${good}\r\nAuthorization: ${other}\r\n\r\n`);
    expect(await c.status()).toBe(401);
    expect(c.received()).toContain('AUTH_MALFORMED');
    c.destroy();
  });

  it('an oversized websocket frame before authentication closes the socket without an error-level log', async () => {
    const errorsBefore = relay.logs.filter((l) => l.level >= ERROR).length;
    const closes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/websocket`);
      await new Promise((resolve) => ws.on('open', resolve));
      const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
      ws.on('error', () => {});
      ws.send('x'.repeat(128 * 1024));
      closes.push(await closed);
    }
    expect(closes).toEqual([1009, 1009, 1009, 1009, 1009]);
    expect(relay.logs.filter((l) => l.level >= ERROR).length).toBe(errorsBefore);
  });

  it('/metrics answers only loopback clients without a token, and only the token with one', async () => {
    const metrics = async (url: string, headers: Record<string, string> = {}) => {
      const c = await rawConnect(url);
      c.write(head('GET', '/metrics', { host: HOST, ...headers }));
      const status = await c.status();
      c.destroy();
      return status;
    };
    expect(await metrics(relay.url)).toBe(200);
    // Behind a reverse proxy every connection is local; the client the proxy names is not.
    const proxied = await loggedRelay({ trustProxy: true });
    const guarded = await loggedRelay({ metricsToken: 'scrape-secret' });
    try {
      expect(await metrics(proxied.url, { 'x-forwarded-for': '203.0.113.5' })).toBe(404);
      expect(await metrics(proxied.url)).toBe(200);
      expect(await metrics(guarded.url)).toBe(404);
      expect(await metrics(guarded.url, { authorization: 'Bearer wrong' })).toBe(404);
      expect(await metrics(guarded.url, { authorization: 'Bearer scrape-secret' })).toBe(200);
    } finally {
      await proxied.close();
      await guarded.close();
    }
  });

  it('a Range starting at or beyond 2^53 is 416, not the whole blob', async () => {
    const created = await inject(relay.app, alice.signer, { method: 'POST', url: '/v1/attachments', json: { size: 10 } });
    const id = json<{ id: string }>(created).id;
    const upload = await inject(relay.app, alice.signer, {
      method: 'PATCH',
      url: `/v1/attachments/${id}?offset=0`,
      body: utf8('0123456789'),
      unsignedBody: true,
    });
    expect(upload.statusCode).toBe(200);
    for (const range of ['bytes=9007199254740992-', 'bytes=9007199254740993-9007199254740999', 'bytes=99999999999999999999-']) {
      const r = await inject(relay.app, bob.signer, { method: 'GET', url: `/v1/attachments/${id}`, headers: { range } });
      expect([range, r.statusCode]).toEqual([range, 416]);
    }
  });
});
