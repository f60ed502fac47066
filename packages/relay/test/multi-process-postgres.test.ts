// Several relay processes on one PostgreSQL database (issue 15): three real
// relay processes (src/main.ts, as `npm start` runs it) share one schema.
// What one process promises must hold for the deployment as a whole:
//  - kill -9 of one process mid-stream loses no acknowledged envelope, and a
//    sender that retries its unanswered sends on another process stores
//    each of them once (spec/09-relay.md §7.1, §7.3);
//  - a signed request accepted by one process is a replay on another
//    (§3.3: the replay records live in the database);
//  - a rate budget spent on one process is spent on all (§8: stored
//    buckets when the storage is shared).
// Bounded: a few hundred small sends, one kill, loopback only.
//
// Needs PARLEY_TEST_POSTGRES_URL; skipped without it, except under CI=true
// (as storage-postgres.test.ts).
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { type CborValue, defaultProvider, encodeCbor, utf8 } from '@parley/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  TestRelayClient,
  type TestDevice,
  authorizationHeader,
  contentDigest,
  fromBase64Url,
  isRelayError,
  makeDevice,
  preKeysOf,
  toBase64Url,
  websocketAuthFrame,
} from './support.ts';
import { type RelayProcess as Relay, relayProcesses } from './support/relay-process.ts';
import { testPostgresUrl } from './support/backends.ts';

const PG_URL = testPostgresUrl('the multi-process tests');

/** Small budgets, so that spending one across processes takes a handful of requests. */
const BUNDLE_FETCHES_PER_MINUTE = 4;
const RECIPIENT_BYTES_PER_MINUTE = 64 * 1024;
const ATTACHMENTS_PER_HOUR = 3;

const schema = `parley_mp_${randomBytes(6).toString('hex')}`;
const processes = relayProcesses('mp', {
  PARLEY_DATABASE_URL: PG_URL,
  PARLEY_DATABASE_SCHEMA: schema,
  PARLEY_REQUESTS_PER_MINUTE_PER_IP: '1000000',
  PARLEY_BUNDLE_FETCHES_PER_MINUTE_PER_ACCOUNT: String(BUNDLE_FETCHES_PER_MINUTE),
  PARLEY_MESSAGE_BYTES_PER_MINUTE_PER_RECIPIENT: String(RECIPIENT_BYTES_PER_MINUTE),
  PARLEY_ATTACHMENTS_PER_HOUR_PER_DEVICE: String(ATTACHMENTS_PER_HOUR),
});

/** One HTTP request with exactly these headers and body (Host included): a captured request, sent again. */
function rawRequest(url: string, method: string, path: string, headers: Record<string, string>, body: Uint8Array) {
  return new Promise<{ status: number; json: { code?: string } }>((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(parts).toString() || '{}') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const client = (relay: Relay, d: TestDevice) => new TestRelayClient({ baseUrl: relay.url, signer: d.signer, retries: 0 });
const register = (relay: Relay, d: TestDevice) => client(relay, d).registerDevice(d.device.certificate, preKeysOf(d.prekeys));

/** Every envelope in `d`'s mailbox, paged through on `relay`. */
const mailbox = (relay: Relay, d: TestDevice) => client(relay, d).fetchAllMessageIds();

/**
 * `d`'s authenticated websocket on `relay`, sending binary send frames (spec/09-relay.md §5.4): each
 * `send` resolves 'sent' or the error code of its answer, or null when the socket closed unanswered.
 */
async function frameSender(relay: Relay, d: TestDevice) {
  const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/websocket`);
  const pending = new Map<number, (answer: string | null) => void>();
  let counter = 0;
  ws.on('error', () => {}); // a killed relay: 'close' follows and settles what is pending
  ws.on('close', () => {
    for (const settle of pending.values()) settle(null);
    pending.clear();
  });
  await new Promise<void>((resolve, reject) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const frame = JSON.parse(data.toString()) as { type: string; challenge?: string; counter?: number; error?: { code: string } };
      if (frame.type === 'challenge') {
        ws.send(websocketAuthFrame(new URL(relay.url).host, fromBase64Url(frame.challenge as string), d.signer));
      } else if (frame.type === 'ready') resolve();
      else if (frame.type === 'sent' || frame.type === 'send-failed') {
        pending.get(frame.counter as number)?.(frame.type === 'sent' ? 'sent' : (frame.error?.code ?? 'send-failed'));
        pending.delete(frame.counter as number);
      }
    });
    ws.once('close', () => reject(new Error('websocket closed before ready')));
  });
  return {
    send(elements: CborValue[]): Promise<string | null> {
      if (ws.readyState !== WebSocket.OPEN) return Promise.resolve(null);
      const n = ++counter;
      return new Promise((resolve) => {
        pending.set(n, resolve);
        ws.send(encodeCbor(['send', n, null, elements]), { binary: true });
      });
    },
    close: () => ws.close(),
  };
}

describe.skipIf(!PG_URL)('three relay processes on one PostgreSQL database', () => {
  let relays: Relay[] = [];

  beforeAll(async () => {
    // The first process creates and migrates the schema; the others then open it (they would wait on the migration lock anyway).
    const first = await processes.start();
    relays = [first, ...(await Promise.all([processes.start(), processes.start()]))];
  }, 60_000);

  afterAll(async () => {
    processes.dispose();
    if (PG_URL) {
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });

  it('kill -9 of one process: no acknowledged envelope lost, none stored twice after the senders (HTTP and send frames) fail over', async () => {
    const [a, b, c] = relays as [Relay, Relay, Relay];
    const bob = makeDevice();
    // Four sender accounts: the per-recipient byte budget is per (sender, recipient) account pair.
    const senders = Array.from({ length: 4 }, () => makeDevice());
    // Three more send frames over their websockets (the fast path, §5.4), one per process; a frame
    // holds one envelope per device, so one here (every envelope goes to bob).
    const frameSenders = Array.from({ length: 3 }, () => makeDevice());
    for (const d of [bob, ...senders, ...frameSenders]) await register(a, d);

    const KILL_AFTER = 90;
    const STOP_AFTER = 180;
    const acknowledged: string[] = [];
    let retriedElsewhere = 0;
    let framesRetriedElsewhere = 0;
    let killed = false;
    const envelope = new Uint8Array(64).fill(7);
    const worker = async (w: number) => {
      const sender = senders[w % senders.length] as TestDevice;
      // Workers are spread over the three processes; c is the one killed.
      let via = client(relays[w % 3] as Relay, sender);
      for (let i = 0; acknowledged.length < STOP_AFTER; i++) {
        const id = `w${w}-${i}`;
        const out = [{ accountKey: bob.account.publicKey, deviceId: 1, id, envelope }];
        try {
          await via.send(out);
        } catch (e) {
          if (!isRelayError(e, 'NETWORK')) throw e; // an answer, not a lost process: the test fails
          // No answer (the process died with the send in flight): the client retries the same id elsewhere.
          via = client(a, sender);
          await via.send(out);
          retriedElsewhere++;
        }
        acknowledged.push(id);
        if (acknowledged.length >= KILL_AFTER && !killed) {
          killed = true;
          c.child.kill('SIGKILL');
        }
      }
    };
    const frameWorker = async (w: number) => {
      const sender = frameSenders[w] as TestDevice;
      let socket = await frameSender(relays[w] as Relay, sender);
      for (let i = 0; acknowledged.length < STOP_AFTER; i++) {
        const ids = [`f${w}-${i}`];
        const frame = ids.map((id): CborValue => [bob.account.publicKey, 1, id, envelope, null]);
        let answer = await socket.send(frame);
        if (answer === null) {
          // No answer (the process died with the frame in flight): the same ids again, on a live process.
          socket = await frameSender(a, sender);
          answer = await socket.send(frame);
          retriedElsewhere++;
          framesRetriedElsewhere++;
        }
        expect(answer).toBe('sent');
        acknowledged.push(...ids);
      }
      socket.close();
    };
    await Promise.all([...Array.from({ length: 12 }, (_, w) => worker(w)), ...frameSenders.map((_, w) => frameWorker(w))]);
    expect(killed).toBe(true);
    expect(c.child.signalCode ?? (await new Promise((r) => c.child.once('exit', (_code, signal) => r(signal))))).toBe('SIGKILL');
    // The workers that used c failed over (otherwise the kill tested nothing).
    expect(retriedElsewhere).toBeGreaterThan(0);
    // The frame sender on c found its socket gone after the kill and sent its frame again on a.
    expect(framesRetriedElsewhere).toBeGreaterThan(0);

    const stored = await mailbox(b, bob);
    const lost = acknowledged.filter((id) => !stored.includes(id));
    const counts = new Map<string, number>();
    for (const id of stored) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    expect(lost).toEqual([]);
    expect(twice).toEqual([]);
    // Nothing appears that nobody sent (an unanswered send may be stored; it is then in `acknowledged` via its retry).
    expect(stored.filter((id) => !acknowledged.includes(id))).toEqual([]);
  }, 60_000);

  it('a signed request accepted by one process is refused as a replay by another', async () => {
    const [a, b] = relays as [Relay, Relay];
    const alice = makeDevice();
    const carol = makeDevice();
    for (const d of [alice, carol]) await register(a, d);

    // Behind a load balancer every process answers to one public host; the signature covers it.
    const host = 'relay.example';
    const body = utf8(
      JSON.stringify({
        messages: [{ account: toBase64Url(carol.account.publicKey), deviceId: 1, id: 'once', envelope: toBase64Url(new Uint8Array(32)) }],
      }),
    );
    const sha256 = defaultProvider().backend.sha256(body);
    const headers = {
      host,
      'content-type': 'application/json',
      'content-digest': contentDigest(sha256),
      authorization: authorizationHeader(
        { method: 'POST', host, pathAndQuery: '/v1/messages', bodySha256: sha256, timestamp: Date.now(), nonce: randomBytes(16) },
        alice.signer,
      ),
    };
    const first = await rawRequest(a.url, 'POST', '/v1/messages', headers, body);
    expect(first.status).toBe(200);
    const replayed = await rawRequest(b.url, 'POST', '/v1/messages', headers, body);
    expect(replayed.status).toBe(401);
    expect(replayed.json.code).toBe('AUTH_REPLAYED');
  }, 30_000);

  it('rate budgets are shared: what one process spent, another refuses', async () => {
    const [a, b] = relays as [Relay, Relay];
    const alice = makeDevice();
    const carol = makeDevice();
    for (const d of [alice, carol]) await register(a, d);
    const expectRateLimited = async (p: Promise<unknown>) => {
      const e = await p.then(
        () => null,
        (error: unknown) => error,
      );
      expect(isRelayError(e, 'RATE_LIMITED'), `expected RATE_LIMITED, got ${String(e)}`).toBe(true);
    };

    // Bundle fetches per requesting account: half on a, half on b, then one more anywhere is refused.
    for (let i = 0; i < BUNDLE_FETCHES_PER_MINUTE; i++) await client(i % 2 ? b : a, alice).fetchBundles(carol.account.publicKey, 1);
    await expectRateLimited(client(b, alice).fetchBundles(carol.account.publicKey, 1));
    await expectRateLimited(client(a, alice).fetchBundles(carol.account.publicKey, 1));

    // Envelope bytes towards one recipient account: 40 KiB through a, then 40 KiB through b is over the 64 KiB minute.
    const big = (id: string) => [{ accountKey: carol.account.publicKey, deviceId: 1, id, envelope: new Uint8Array(40 * 1024).fill(1) }];
    await client(a, alice).send(big('bytes-1'));
    await expectRateLimited(client(b, alice).send(big('bytes-2')));

    // Attachment uploads started per device.
    for (let i = 0; i < ATTACHMENTS_PER_HOUR; i++) await client(i % 2 ? b : a, alice).createAttachment(1000);
    await expectRateLimited(client(b, alice).createAttachment(1000));
  }, 30_000);
});
