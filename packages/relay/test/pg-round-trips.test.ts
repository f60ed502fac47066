// PostgreSQL round trips per send (issue 15): what one envelope costs the
// database, counted on the wire by a proxy in front of the server
// (support/pg-wire-counter.ts), from the send to its acknowledgement by the
// recipient's websocket. Every round trip is a wait for the server on a
// loaded primary, so these figures set the PostgreSQL relay's throughput
// per core (spec/15-scale.md §1). Not timed: the counts do not depend on
// the machine.
//
// Sends go one at a time and each waits for its delivery and acknowledgement,
// so nothing is batched by concurrency: these are the figures of a quiet
// relay, the most a send costs.
//
// Needs PARLEY_TEST_POSTGRES_URL; skipped without it, except under CI=true.
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { type CborValue, encodeCbor, fromUtf8, utf8 } from '@parley/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PostgresStorage } from '../src/storage/postgres.ts';
import type { TestMailbox } from './support/test-client.ts';
import { type WireCounter, type WireCounts, startWireCounter } from './support/pg-wire-counter.ts';
import {
  type TestDevice,
  eventually,
  eventuallyAsync,
  fromBase64Url,
  inject,
  listeningRelay,
  makeDevice,
  register,
  toBase64Url,
  websocketAuthFrame,
} from './support.ts';
import { testPostgresUrl } from './support/backends.ts';

const PG_URL = testPostgresUrl('the round-trip tests');

/** Sends per measurement: enough to average out a stray sweep or frank-key query. */
const SENDS = 8;

/**
 * The most a send may cost (per send, all of it: authentication, the rate
 * budget, the store, the wake-up, the recipient's fetch and its
 * acknowledgement). The breakdown is in spec/15-scale.md §1. Before these
 * figures: an HTTP send cost 19 round trips and 7 transactions, a websocket
 * send 15 and 6, a fan-out to three devices 34 and 16; then 5, 4 and 9
 * round trips, the HTTP send and the fan-out with a read of the signer's
 * device row, which the signer cache (storage/postgres.ts SignerCache)
 * now spares after a device's first request.
 *  - HTTP: the send (replay record confirming the signer, locks, reads and
 *    byte-rate take in one flight; envelope rows, idempotency records and
 *    COMMIT in the next, with the wake-up's own unflushed transaction
 *    behind it); the recipient's fetch; its acknowledgement (once BEGIN,
 *    DELETE, COMMIT in one flight; since, the DELETE alone, committed as a
 *    statement of its own). Round trips 4, transactions 4 (one of them the
 *    wake-up's, which waits for no WAL flush), statements 14 (16 with the
 *    acknowledgement's BEGIN and COMMIT, 17 with the signer's row).
 *  - websocket: the same (the socket authenticated once).
 *  - fan-out to three devices: the send once, a fetch and an
 *    acknowledgement per recipient device.
 */
const LIMITS = {
  http: { roundTrips: 4, transactions: 4, writes: 4, statements: 14 },
  websocket: { roundTrips: 4, transactions: 4, writes: 4, statements: 11 },
  fanout3: { roundTrips: 8, transactions: 8, writes: 8, statements: 18 },
};

/**
 * Writes (system calls) on the relay's connections to the server, counted
 * where Node hands a socket's data to the kernel. One per round trip: a
 * flight of statements goes out in one write (storage/postgres.ts
 * `flightWriter`). Before it, node-postgres wrote each statement on its own:
 * an HTTP send took 17 writes, a websocket send 13, a fan-out to three
 * devices 25 (one per statement; with the signer's read, since cached).
 * Each write is a system call for the relay and a packet for
 * the server to read.
 */
function countWrites(port: () => number) {
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (this: Socket, ...args: unknown[]) => unknown>;
  const original = { _write: proto._write, _writev: proto._writev };
  let writes = 0;
  for (const name of ['_write', '_writev'] as const) {
    const inner = original[name];
    proto[name] = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === port()) writes++;
      return inner.apply(this, args);
    };
  }
  return {
    count: () => writes,
    restore: () => Object.assign(proto, original),
  };
}

describe.skipIf(!PG_URL)('PostgreSQL round trips per send', () => {
  const schema = `parley_rt_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  let proxy: WireCounter;
  let proxyPort = -1;
  const writes = countWrites(() => proxyPort);
  let relay: Awaited<ReturnType<typeof listeningRelay>>;
  let alice: TestDevice;
  let bob: TestDevice;
  let carol: TestDevice;
  let carol2: TestDevice;
  const mailboxes: TestMailbox[] = [];
  const received = new Map<string, string[]>();

  beforeAll(async () => {
    proxy = await startWireCounter(PG_URL as string);
    proxyPort = Number(new URL(proxy.url).port);
    const storage = await PostgresStorage.open({ connectionString: proxy.url, schema, poolSize: 4 });
    // No sweep inside a measurement (it runs every minute, and a loaded machine can stretch the test past one).
    relay = await listeningRelay({ sweepIntervalSeconds: 3600 }, { storage });
    alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    carol = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
    carol2 = makeDevice(carol.account, 2, { oneTimePreKeys: 1, kemPreKeys: 1 });
    for (const d of [alice, bob, carol, carol2]) await register(relay.app, d);
    for (const d of [bob, carol, carol2]) {
      const key = `${d.id}:${d.device.deviceId}`;
      received.set(key, []);
      const mailbox = relay
        .client(d.signer)
        .connect({ onEnvelope: (e) => void received.get(key)?.push(`${e.id}=${fromUtf8(e.envelope)}`) })
        .start();
      mailboxes.push(mailbox);
      await mailbox.whenOpen();
    }
  }, 30_000);

  afterAll(async () => {
    writes.restore();
    for (const m of mailboxes) m.stop();
    await relay?.close();
    await proxy?.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  const inbox = (d: TestDevice) => received.get(`${d.id}:${d.device.deviceId}`) as string[];
  const queued = async () => Number((await admin.query(`SELECT count(*) AS n FROM ${schema}.messages`)).rows[0].n);

  /**
   * Runs `send(i)` SENDS times, each followed by its deliveries and their
   * acknowledgements (the mailbox table empty again, every request
   * answered). Returns the median per send of each count (a minute's sweep
   * or a frank-key refresh landing in one send does not move it), and the
   * round trips by kind, averaged.
   */
  async function perSend(recipients: TestDevice[], send: (i: number) => Promise<void>) {
    await eventuallyAsync(async () => (await queued()) === 0);
    await eventually(() => proxy.outstanding() === 0);
    proxy.reset();
    const samples: { roundTrips: number; statements: number; transactions: number; writes: number }[] = [];
    for (let i = 0; i < SENDS; i++) {
      const at = {
        roundTrips: proxy.counts.roundTrips,
        statements: proxy.counts.statements,
        transactions: proxy.counts.transactions,
        writes: writes.count(),
      };
      const before = recipients.map((d) => inbox(d).length);
      await send(i);
      await eventually(() => recipients.every((d, k) => inbox(d).length > (before[k] as number)));
      await eventuallyAsync(async () => (await queued()) === 0);
      await eventually(() => proxy.outstanding() === 0);
      samples.push({
        roundTrips: proxy.counts.roundTrips - at.roundTrips,
        statements: proxy.counts.statements - at.statements,
        transactions: proxy.counts.transactions - at.transactions,
        writes: writes.count() - at.writes,
      });
    }
    const median = (pick: (s: (typeof samples)[number]) => number) => {
      const sorted = samples.map(pick).sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)] as number;
    };
    const c: WireCounts = proxy.counts;
    const out = {
      roundTrips: median((s) => s.roundTrips),
      statements: median((s) => s.statements),
      transactions: median((s) => s.transactions),
      writes: median((s) => s.writes),
      each: samples.map((s) => s.roundTrips),
      kinds: Object.fromEntries([...c.kinds].map(([k, n]) => [k, n / SENDS])),
    };
    if (process.env.PARLEY_PRINT_ROUND_TRIPS) console.log(JSON.stringify(out, null, 2));
    return out;
  }

  it('an HTTP send to one device: at most the pinned round trips and transactions, delivered exactly', async () => {
    const tag = randomBytes(3).toString('hex');
    const costs = await perSend([bob], async (i) => {
      await relay
        .client(alice.signer)
        .send([{ accountKey: bob.account.publicKey, deviceId: 1, id: `h-${tag}-${i}`, envelope: utf8(`http ${i}`) }]);
    });
    expect(inbox(bob).filter((m) => m.startsWith(`h-${tag}`))).toEqual(Array.from({ length: SENDS }, (_, i) => `h-${tag}-${i}=http ${i}`));
    expect(costs.roundTrips).toBeLessThanOrEqual(LIMITS.http.roundTrips);
    expect(costs.transactions).toBeLessThanOrEqual(LIMITS.http.transactions);
    expect(costs.writes).toBeLessThanOrEqual(LIMITS.http.writes);
    expect(costs.statements).toBeLessThanOrEqual(LIMITS.http.statements);
  }, 30_000);

  it('a send frame on the authenticated websocket: at most the pinned round trips and transactions', async () => {
    const tag = randomBytes(3).toString('hex');
    const socket = await authenticatedSocket(relay.url, alice);
    try {
      const costs = await perSend([bob], async (i) => {
        const element: CborValue = [bob.account.publicKey, 1, `w-${tag}-${i}`, utf8(`ws ${i}`), null];
        socket.ws.send(encodeCbor(['send', i + 1, null, [element]]), { binary: true });
        await eventually(() => socket.frames.some((f) => f.type === 'sent' && f.counter === i + 1));
      });
      expect(inbox(bob).filter((m) => m.startsWith(`w-${tag}`))).toEqual(Array.from({ length: SENDS }, (_, i) => `w-${tag}-${i}=ws ${i}`));
      expect(costs.roundTrips).toBeLessThanOrEqual(LIMITS.websocket.roundTrips);
      expect(costs.transactions).toBeLessThanOrEqual(LIMITS.websocket.transactions);
      expect(costs.writes).toBeLessThanOrEqual(LIMITS.websocket.writes);
      expect(costs.statements).toBeLessThanOrEqual(LIMITS.websocket.statements);
    } finally {
      socket.ws.close();
    }
  }, 30_000);

  it('a group fan-out to three devices (two accounts), stored once: at most the pinned round trips', async () => {
    const tag = randomBytes(3).toString('hex');
    const group = [bob, carol, carol2];
    const costs = await perSend(group, async (i) => {
      const r = await inject(relay.app, alice.signer, {
        method: 'POST',
        url: '/v1/messages/fanout',
        json: {
          id: `f-${tag}-${i}`,
          envelope: toBase64Url(utf8(`group ${i}`)),
          recipients: group.map((d) => ({ account: d.id, deviceId: d.device.deviceId })),
        },
      });
      expect(r.statusCode).toBe(200);
    });
    for (const d of group) {
      expect(inbox(d).filter((m) => m.startsWith(`f-${tag}`))).toEqual(Array.from({ length: SENDS }, (_, i) => `f-${tag}-${i}=group ${i}`));
    }
    expect(costs.roundTrips).toBeLessThanOrEqual(LIMITS.fanout3.roundTrips);
    expect(costs.transactions).toBeLessThanOrEqual(LIMITS.fanout3.transactions);
    expect(costs.writes).toBeLessThanOrEqual(LIMITS.fanout3.writes);
    expect(costs.statements).toBeLessThanOrEqual(LIMITS.fanout3.statements);
  }, 30_000);
});

interface Frame {
  readonly type: string;
  readonly counter?: number;
  readonly challenge?: string;
}

/** A raw websocket of `d`, authenticated (challenge-response, spec/09-relay.md §5.1), for send frames. */
async function authenticatedSocket(url: string, d: TestDevice) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/websocket`);
  const frames: Frame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame));
  await new Promise((resolve) => ws.on('open', resolve));
  await eventually(() => frames.some((f) => f.type === 'challenge'));
  const challenge = frames.find((f) => f.type === 'challenge')?.challenge as string;
  ws.send(websocketAuthFrame(new URL(url).host, fromBase64Url(challenge), d.signer));
  await eventually(() => frames.some((f) => f.type === 'ready'));
  return { ws, frames };
}
