// The relay client sends over its authenticated websocket (relay-client/websocket-sends.ts,
// spec/09-relay.md §5.4) against a real relay: no HTTP request while connected, the same answers
// and errors as HTTP, idempotent retries, a connection dropped with frames in flight retried over
// HTTP without loss or duplicates, and HTTP whenever the socket cannot carry the send (not
// connected, a relay whose "ready" offers no sends, a frame over the relay's limit).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Account, PreKeyStore, decodeCbor } from '@parley/core';
import { buildApp } from '@parley/relay';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RelayClient, RelayError, deviceSigner, preKeysOf } from '../src/relay-client/index.ts';

let dataDir: string;
let app: FastifyInstance;
let url: string;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'parley-ws-sends-'));
  app = await buildApp({ config: { dataDir, logLevel: 'silent' }, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterEach(async () => {
  await app.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A `ws` WebSocket that records the binary frames it sends and can rewrite the frames it receives. */
function spySocket(rewrite: (frame: Record<string, unknown>) => Record<string, unknown> = (f) => f) {
  const sockets: Spy[] = [];
  class Spy extends WebSocket {
    readonly binary: Uint8Array[] = [];
    constructor(address: string) {
      super(address);
      sockets.push(this);
      // The receiver sets `onmessage`: an own property in front of ws's, fed with rewritten frames.
      let handler: ((event: { data: unknown }) => void) | null = null;
      Object.defineProperty(this, 'onmessage', {
        get: () => handler,
        set: (h: typeof handler) => {
          handler = h;
        },
      });
      this.on('message', (data, isBinary) => {
        handler?.({ data: isBinary ? data : JSON.stringify(rewrite(JSON.parse(data.toString()))) });
      });
    }
    override send(data: unknown, ...rest: unknown[]): void {
      if (typeof data !== 'string') this.binary.push(new Uint8Array(data as Uint8Array));
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  return { Spy, sockets };
}

/** Counts the client's HTTP sends (POST /v1/messages). */
function countingFetch() {
  const calls = { sends: 0 };
  const f: typeof fetch = (input, init) => {
    const target = input instanceof Request ? input.url : String(input);
    if (init?.method === 'POST' && new URL(target).pathname === '/v1/messages') calls.sends++;
    return fetch(input, init);
  };
  return { f, calls };
}

async function registered(options: Partial<ConstructorParameters<typeof RelayClient>[0]> = {}) {
  const account = Account.generate();
  const device = account.createDevice(1);
  const client = new RelayClient({ baseUrl: url, signer: deviceSigner(device), WebSocket: WebSocket as never, ...options });
  await client.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 })));
  return { account, device, client };
}

async function stored(client: RelayClient): Promise<string[]> {
  const ids: string[] = [];
  let after = 0;
  for (;;) {
    const page = await client.fetchMessages({ limit: 100, after });
    ids.push(...page.messages.map((m) => m.id));
    if (!page.more || page.messages.length === 0) return ids;
    after = (page.messages.at(-1) as { seq: number }).seq;
  }
}

const to = (who: { account: Account }, id: string, envelope: Uint8Array = new Uint8Array([1, 2, 3])) => ({
  accountKey: who.account.publicKey,
  deviceId: 1,
  id,
  envelope,
});

const noop = { onEnvelope: () => {} };

describe('sends over the authenticated websocket', () => {
  it('sends while connected without an HTTP request, answers like HTTP, and a retry with the same id stores nothing new', async () => {
    const { f, calls } = countingFetch();
    const spy = spySocket();
    const alice = await registered({ fetch: f, WebSocket: spy.Spy as never });
    const bob = await registered();
    const receiver = alice.client.connect(noop).start();
    await receiver.whenOpen();
    await expect(alice.client.send([to(bob, 'm-1')])).resolves.toEqual({ accepted: 1 });
    await expect(alice.client.send([to(bob, 'm-1')])).resolves.toEqual({ accepted: 1 });
    expect(calls.sends).toBe(0);
    expect(spy.sockets[0]?.binary.length).toBe(2);
    expect(await stored(bob.client)).toEqual(['m-1']);
    receiver.stop();
  });

  it('refuses with the HTTP path’s error: code, status and details', async () => {
    const alice = await registered();
    const httpOnly = new RelayClient({
      baseUrl: url,
      signer: deviceSigner(alice.device),
      WebSocket: WebSocket as never,
      websocketSends: false,
    });
    const bob = await registered();
    const receiver = alice.client.connect(noop).start();
    await receiver.whenOpen();
    // Device 2 of bob does not exist: MISMATCHED_DEVICES (extra device 2, missing device 1).
    const wrong = [{ accountKey: bob.account.publicKey, deviceId: 2, id: 'x', envelope: new Uint8Array([1]) }];
    const overSocket = await alice.client.send(wrong).catch((e: unknown) => e);
    const overHttp = await httpOnly.send(wrong).catch((e: unknown) => e);
    expect(overSocket).toBeInstanceOf(RelayError);
    expect(overHttp).toBeInstanceOf(RelayError);
    const pick = (e: RelayError) => ({ status: e.status, code: e.code, details: e.details });
    expect(pick(overSocket as RelayError)).toEqual(pick(overHttp as RelayError));
    expect((overSocket as RelayError).code).toBe('MISMATCHED_DEVICES');
    receiver.stop();
  });

  it('carries the franking tag as the sixth field of each element, unchanged', async () => {
    const spy = spySocket();
    const alice = await registered({ WebSocket: spy.Spy as never });
    const bob = await registered();
    const receiver = alice.client.connect(noop).start();
    await receiver.whenOpen();
    const frankingTag = new Uint8Array(32).fill(7);
    await expect(alice.client.send([{ ...to(bob, 'franked'), frankingTag } as never])).resolves.toEqual({ accepted: 1 });
    const frame = decodeCbor(spy.sockets[0]?.binary[0] as Uint8Array, 'send frame', 1 << 20) as unknown[];
    const [element] = frame[3] as unknown[][];
    expect(element).toHaveLength(6);
    expect(element?.[5]).toEqual(frankingTag);
    expect(await stored(bob.client)).toEqual(['franked']);
    receiver.stop();
  });

  it('a connection dropped with frames in flight: every send completes over HTTP, nothing lost or stored twice', async () => {
    const { f, calls } = countingFetch();
    const spy = spySocket();
    const alice = await registered({ fetch: f, WebSocket: spy.Spy as never });
    const bob = await registered();
    const receiver = alice.client.connect(noop, { baseDelayMs: 20, maxDelayMs: 50 }).start();
    await receiver.whenOpen();
    const ids = Array.from({ length: 24 }, (_, i) => `drop-${i}`);
    // 24 frames in flight at once (one envelope each: a frame holds one envelope per device).
    const sends = ids.map((id) => alice.client.send([to(bob, id, new Uint8Array(512).fill(ids.indexOf(id)))]));
    // The socket dies before the relay answers (no close handshake, as a lost network).
    spy.sockets[0]?.terminate();
    const answers = await Promise.all(sends);
    expect(answers).toEqual(ids.map(() => ({ accepted: 1 })));
    // Each frame the relay had not answered went again over HTTP with the same id.
    expect(calls.sends).toBeGreaterThan(0);
    const got = await stored(bob.client);
    expect(got.length).toBe(ids.length);
    expect(new Set(got)).toEqual(new Set(ids));
    // After the reconnect the socket carries sends again, numbered from 1 on the new connection.
    await receiver.whenOpen();
    const before = calls.sends;
    await expect(alice.client.send([to(bob, 'after-reconnect')])).resolves.toEqual({ accepted: 1 });
    expect(calls.sends).toBe(before);
    const second = spy.sockets.at(-1) as InstanceType<typeof spy.Spy>;
    expect((decodeCbor(second.binary[0] as Uint8Array, 'send frame', 1 << 20) as unknown[])[1]).toBe(1);
    receiver.stop();
  });

  it('after a RATE_LIMITED for the frame rate, sends go over HTTP for retryAfterSeconds: the relay never closes it for not backing off', async () => {
    await app.close();
    app = await buildApp({ config: { dataDir, logLevel: 'silent', rateLimits: { websocketSendsPerMinutePerDevice: 2 } }, logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const { f, calls } = countingFetch();
    const spy = spySocket();
    const alice = await registered({ fetch: f, WebSocket: spy.Spy as never });
    const bob = await registered();
    const receiver = alice.client.connect(noop).start();
    await receiver.whenOpen();
    await alice.client.send([to(bob, 'r-1')]);
    await alice.client.send([to(bob, 'r-2')]);
    const refused = await alice.client.send([to(bob, 'r-3')]).catch((e: unknown) => e);
    expect((refused as RelayError).code).toBe('RATE_LIMITED');
    expect(calls.sends).toBe(0);
    // 2 x maxInFlight (64) refusals in a row would close the socket: these go over HTTP instead.
    const more = Array.from({ length: 70 }, (_, i) => `h-${i}`);
    for (const id of more) await alice.client.send([to(bob, id)]);
    expect(calls.sends).toBe(more.length);
    expect(spy.sockets[0]?.binary.length).toBe(3);
    expect(spy.sockets).toHaveLength(1);
    expect(receiver.state).toBe('open');
    expect(new Set(await stored(bob.client))).toEqual(new Set(['r-1', 'r-2', ...more]));
    receiver.stop();
  });

  it('falls back to HTTP: not connected, a frame over the relay’s limit, a TTL a frame cannot carry, a relay whose "ready" offers no sends', async () => {
    const { f, calls } = countingFetch();
    // A relay from before websocket sends: its "ready" names no send limits.
    const old = spySocket(({ sends: _dropped, ...rest }) => rest);
    const alice = await registered({ fetch: f, WebSocket: old.Spy as never });
    const bob = await registered();
    await alice.client.send([to(bob, 'not-connected')]);
    expect(calls.sends).toBe(1);
    const receiver = alice.client.connect(noop).start();
    await receiver.whenOpen();
    await alice.client.send([to(bob, 'old-relay')]);
    expect(calls.sends).toBe(2);
    // Never a binary frame to such a relay (it would close the socket with 4003).
    expect(old.sockets[0]?.binary).toEqual([]);
    expect(receiver.state).toBe('open');
    receiver.stop();

    const spy = spySocket();
    const carol = await registered({ fetch: f, WebSocket: spy.Spy as never });
    const r2 = carol.client.connect(noop).start();
    await r2.whenOpen();
    // 70 KiB does not fit the relay's 64 KiB frame: HTTP, and the socket stays open.
    await carol.client.send([to(bob, 'large', new Uint8Array(70 * 1024))]);
    expect(calls.sends).toBe(3);
    // A TTL a frame cannot carry: HTTP, which answers with its own refusal; the socket stays open.
    const refused = await carol.client.send([to(bob, 'ttl-0')], { ttlSeconds: 0 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RelayError);
    expect(calls.sends).toBe(4);
    expect(spy.sockets[0]?.binary).toEqual([]);
    expect(r2.state).toBe('open');
    r2.stop();
    expect(new Set(await stored(bob.client))).toEqual(new Set(['not-connected', 'old-relay', 'large']));
  });
});
