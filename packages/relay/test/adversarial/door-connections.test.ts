// Issue 12 finding 2: one client must not exhaust the relay's connections or
// hold them open by being slow. Attackers connect from other loopback
// addresses (127.0.0.2, ...) than the legitimate client (127.0.0.1), so
// per-address caps apply to them alone; deadlines are configured short so
// the test stays bounded. spec/09-relay.md §8.2.
import { defaultProvider, utf8 } from '@parley/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HOST, type TestDevice, contentDigest, listeningRelay, makeDevice, register, signRequest } from '../support.ts';
import { type RawConnection, head, rawConnect } from './raw-http.ts';

const PER_ADDRESS = 20;
const TOTAL = 120;

let relay: Awaited<ReturnType<typeof listeningRelay>>;
let alice: TestDevice;
let bob: TestDevice;

beforeAll(async () => {
  relay = await listeningRelay({
    headersTimeoutSeconds: 1,
    requestTimeoutSeconds: 2,
    idleTimeoutSeconds: 3,
    keepAliveTimeoutSeconds: 2,
    websocketAuthTimeoutSeconds: 1,
    limits: { maxConnections: TOTAL, maxConnectionsPerAddress: PER_ADDRESS },
    // The per-IP request budget is not what is under test here.
    rateLimits: { requestsPerMinutePerIp: 100_000 },
  });
  alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
});
afterAll(() => relay.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits (at most 3 s) for the relay to accept and shed what the kernel already connected. */
async function settle(done: () => boolean): Promise<void> {
  for (const until = Date.now() + 3000; !done() && Date.now() < until; ) await sleep(50);
}
const stillOpen = (cs: RawConnection[]) => cs.filter((c) => !c.socket.destroyed && !c.socket.readableEnded).length;

/** Connections that send a request line and Host, and never finish their headers. */
async function headerOnlyFlood(from: string, n: number): Promise<RawConnection[]> {
  const out: RawConnection[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const c = await rawConnect(relay.url, from);
      c.write(`GET /healthz HTTP/1.1\r\nHost: ${HOST}\r\n`);
      out.push(c);
    } catch {
      // Refused at the cap: that is the point.
    }
  }
  return out;
}

/** What a legitimate signed client gets: sends that are stored, and probes that answer. */
async function legitimate(n: number): Promise<{ sent: number; healthy: boolean }> {
  const client = relay.client(alice.signer);
  let sent = 0;
  for (let i = 0; i < n; i++) {
    await client.send([{ accountKey: bob.account.publicKey, deviceId: 1, id: `c-${Date.now()}-${i}`, envelope: utf8(`m${i}`) }]);
    sent++;
  }
  const health = await fetch(`${relay.url}/healthz`);
  return { sent, healthy: health.status === 200 };
}

describe('finding 2: connection exhaustion and slow clients', () => {
  it('caps the connections of one address, and a signed client is served meanwhile', async () => {
    const flood = await headerOnlyFlood('127.0.0.2', 5 * PER_ADDRESS);
    await settle(() => stillOpen(flood) <= PER_ADDRESS);
    const served = await legitimate(10);
    expect(stillOpen(flood)).toBeLessThanOrEqual(PER_ADDRESS);
    expect(served).toEqual({ sent: 10, healthy: true });
    for (const c of flood) c.destroy();
  });

  it('caps connections in total across many addresses, never displacing an authenticated connection', async () => {
    // An authenticated keep-alive connection first: the flood must not take it away.
    const keeper = await rawConnect(relay.url);
    const signedGet = () => {
      const { authorization } = signRequest(alice.signer, { method: 'GET', url: '/v1/keys' }, Date.now());
      return head('GET', '/v1/keys', { host: HOST, authorization });
    };
    keeper.write(signedGet());
    expect(await keeper.status()).toBe(200);

    const floods = await Promise.all(Array.from({ length: 8 }, (_, i) => headerOnlyFlood(`127.0.0.${10 + i}`, PER_ADDRESS)));
    const flood = floods.flat();
    await settle(() => stillOpen(flood) <= TOTAL);
    expect(stillOpen(flood)).toBeLessThanOrEqual(TOTAL);
    expect(keeper.socket.destroyed).toBe(false);
    // A new connection from a legitimate client still gets in, and the old authenticated one still works.
    expect((await legitimate(5)).sent).toBe(5);
    const before = keeper.received().length;
    keeper.write(signedGet());
    await sleep(200);
    expect(keeper.received().slice(before)).toMatch(/^HTTP\/1\.1 200/);
    keeper.destroy();
    for (const c of flood) c.destroy();
  });

  it('closes connections that trickle their headers or their body', async () => {
    const slowHeaders = await Promise.all(Array.from({ length: 5 }, () => rawConnect(relay.url, '127.0.0.3')));
    const body = utf8(JSON.stringify({ seqs: [1, 2, 3] }));
    const slowBodies = await Promise.all(Array.from({ length: 5 }, () => rawConnect(relay.url, '127.0.0.4')));
    for (const c of slowBodies) {
      const { authorization } = signRequest(alice.signer, { method: 'POST', url: '/v1/messages/ack', body }, Date.now());
      const digest = contentDigest(defaultProvider().backend.sha256(body));
      c.write(
        head('POST', '/v1/messages/ack', {
          host: HOST,
          authorization,
          'content-type': 'application/json',
          'content-digest': digest,
          'content-length': body.length,
        }),
      );
    }
    const line = `GET /healthz HTTP/1.1\r\nHost: ${HOST}\r\nX-Pad: ${'a'.repeat(200)}`;
    // One byte every 100 ms, for at most 6 s: the relay must close them well before.
    const deadline = Date.now() + 6000;
    for (let i = 0; Date.now() < deadline; i++) {
      for (const c of slowHeaders) c.write(line[i % line.length] as string);
      for (const c of slowBodies) c.write(Buffer.from([body[i % (body.length - 1)] as number]));
      if (stillOpen(slowHeaders) + stillOpen(slowBodies) === 0) break;
      await sleep(100);
    }
    expect(stillOpen(slowHeaders)).toBe(0);
    expect(stillOpen(slowBodies)).toBe(0);
    expect((await legitimate(3)).sent).toBe(3);
  });

  it('closes a websocket that does not authenticate within the deadline', async () => {
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/websocket`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    const code = await Promise.race([closed, sleep(4000).then(() => 'still open')]);
    ws.terminate();
    expect(code).toBe(4008);
  });
});
