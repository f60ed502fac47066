// PARLEY_CORS_ORIGINS: preflights and CORS headers for listed origins only,
// and the websocket's Origin checked against the same list. spec/09-relay.md §4.7.
// (A page in Chromium using the relay from another origin: test/packaging.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { listeningRelay, testRelay } from './support.ts';

const PAGE = 'https://chat.example.com';
const OTHER = 'https://evil.example.net';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function relay(corsOrigins: string[]) {
  const r = await testRelay({ corsOrigins });
  closers.push(() => r.close());
  return r.app;
}

const preflight = (origin: string) => ({
  method: 'OPTIONS' as const,
  url: '/v1/messages',
  headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
});

/**
 * The first thing the server answers an upgrade from `origin` (undefined: no Origin header): 'open',
 * or the HTTP status of a refusal, after which the server must also close the connection (a refused
 * upgrade left open would hold up the relay's shutdown).
 */
function upgrade(url: string, origin: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/v1/websocket`, origin ? { origin } : {});
    socket.on('open', () => {
      socket.close();
      resolve('open');
    });
    socket.on('unexpected-response', (request, response) => {
      const timer = setTimeout(() => reject(new Error('the relay left a refused upgrade open')), 5000);
      response.resume();
      request.socket?.once('close', () => {
        clearTimeout(timer);
        resolve(String(response.statusCode));
      });
    });
    socket.on('error', () => {});
  });
}

describe('CORS', () => {
  it('answers the preflight of a listed origin and puts the headers on every response', async () => {
    const app = await relay([PAGE]);
    const pre = await app.inject(preflight(PAGE));
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(PAGE);
    expect(String(pre.headers['access-control-allow-methods'])).toContain('PATCH');
    // Everything the reference client sends (spec/09-relay.md §3): without one, every browser request fails its preflight.
    for (const header of ['authorization', 'content-digest', 'parley-certificate', 'content-type', 'range']) {
      expect(String(pre.headers['access-control-allow-headers']).toLowerCase()).toContain(header);
    }
    expect(pre.headers['access-control-allow-credentials']).toBeUndefined();

    const refused = await app.inject({ method: 'GET', url: '/v1/keys', headers: { origin: PAGE } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['access-control-allow-origin']).toBe(PAGE);
    expect(String(refused.headers['access-control-expose-headers']).toLowerCase()).toContain('retry-after');
  });

  it('gives an unlisted origin no CORS headers', async () => {
    const app = await relay([PAGE]);
    const pre = await app.inject(preflight(OTHER));
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const get = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: OTHER } });
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows none by default (no preflight route, no headers)', async () => {
    const app = await relay([]);
    expect((await app.inject(preflight(PAGE))).statusCode).toBe(404);
    expect(
      (await app.inject({ method: 'GET', url: '/healthz', headers: { origin: PAGE } })).headers['access-control-allow-origin'],
    ).toBeUndefined();
  });

  it('* allows any origin', async () => {
    const app = await relay(['*']);
    expect((await app.inject(preflight(OTHER))).headers['access-control-allow-origin']).toBe(OTHER);
  });
});

describe('websocket Origin', () => {
  it('opens for a listed origin, the relay itself and native clients; refuses other browser origins with 403', async () => {
    const r = await listeningRelay({ corsOrigins: [PAGE] });
    closers.push(() => r.close());
    expect(await upgrade(r.url, PAGE)).toBe('open');
    expect(await upgrade(r.url, undefined)).toBe('open');
    expect(await upgrade(r.url, r.url)).toBe('open');
    expect(await upgrade(r.url, OTHER)).toBe('403');
  });

  it('refuses every foreign browser origin when none is listed', async () => {
    const r = await listeningRelay({});
    closers.push(() => r.close());
    expect(await upgrade(r.url, OTHER)).toBe('403');
    expect(await upgrade(r.url, undefined)).toBe('open');
  });
});
