/**
 * Live push through the real relay on loopback (spec/09-relay.md §5.2.1), on SQLite and, with
 * PARLEY_TEST_POSTGRES_URL, on PostgreSQL: the relay opens its storage from its configuration
 * (as `parley-relay` does), so the commit → hub → pump hand-off of app.ts is the one under test.
 * A connected device that has drained its backlog gets live sends without any mailbox read, and a
 * device still gets everything, in order, across reconnects and a backlog larger than its window.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../src/app.ts';
import type { RelayConfigOverrides } from '../src/config.ts';
import { type ReceivedEnvelope, type TestDevice, TestRelayClient, eventually, listenLocally, makeDevice, register } from './support.ts';
import type { RelaySigner } from './support/signing.ts';
import { testPostgresUrl } from './support/backends.ts';

const PG_URL = testPostgresUrl('live push through the relay');
const admin = PG_URL ? new pg.Pool({ connectionString: PG_URL, max: 1 }) : undefined;
afterAll(() => admin?.end());

interface Backend {
  readonly name: string;
  /** Config for a relay on a fresh database; `drop` removes it. */
  make(): { config: RelayConfigOverrides; drop: () => Promise<void> };
}

const backends: Backend[] = [
  { name: 'sqlite', make: () => ({ config: {}, drop: async () => {} }) },
  ...(PG_URL
    ? [
        {
          name: 'postgres',
          make: () => {
            const schema = `parley_live_${randomBytes(6).toString('hex')}`;
            return {
              config: { databaseUrl: PG_URL, databaseSchema: schema },
              drop: async () => void (await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)),
            };
          },
        },
      ]
    : []),
];

interface Relay {
  readonly app: FastifyInstance;
  readonly url: string;
  client(signer: RelaySigner): TestRelayClient;
  close(): Promise<void>;
}

async function startRelay(
  backend: Backend,
  limits: RelayConfigOverrides['limits'] = {},
  shared?: { config: RelayConfigOverrides; drop: () => Promise<void> },
): Promise<Relay> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-live-'));
  const db = shared ?? backend.make();
  // No storage passed in: the app opens it and wires its commits to the hub (app.ts).
  const app = await buildApp({ config: { dataDir: dir, logLevel: 'silent', ...db.config, limits }, logger: false });
  const url = await listenLocally(app);
  return {
    app,
    url,
    client: (signer) => new TestRelayClient({ baseUrl: url, signer }),
    async close() {
      await app.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let open: Relay | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

/** Alice and Bob, one device each, registered on `relay`. */
async function aliceAndBob(relay: Relay): Promise<{ alice: TestDevice; bob: TestDevice }> {
  const alice = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  const bob = makeDevice(undefined, 1, { oneTimePreKeys: 1, kemPreKeys: 1 });
  await register(relay.app, alice);
  await register(relay.app, bob);
  return { alice, bob };
}

const text = (e: ReceivedEnvelope) => new TextDecoder().decode(e.envelope);

/** Sends each id as its own envelope, one send after the other (one envelope per device per send). */
function sender(relay: Relay, from: TestDevice, to: TestDevice) {
  const client = relay.client(from.signer);
  const one = (id: string) => client.send([{ accountKey: to.account.publicKey, deviceId: 1, id, envelope: new TextEncoder().encode(id) }]);
  return async (ids: readonly string[]) => {
    for (const id of ids) await one(id);
  };
}

/** A connection that records what it gets; envelopes whose text is in `refuse` are not acknowledged. */
function receiver(relay: Relay, device: TestDevice, refuse = new Set<string>()) {
  const got: ReceivedEnvelope[] = [];
  let drained = false;
  const mailbox = relay
    .client(device.signer)
    .connect({
      onEnvelope: (e) => {
        got.push(e);
        if (refuse.has(text(e))) throw new Error('not acknowledged on purpose');
      },
      onDrained: () => {
        drained = true;
      },
      onError: () => {},
    })
    .start();
  return { got, mailbox, drained: () => drained };
}

const strictlyIncreasing = (seqs: readonly number[]) => seqs.every((s, i) => i === 0 || s > (seqs[i - 1] as number));

describe.each(backends)('live push ($name)', (backend) => {
  it('a connected device gets live sends without a mailbox read once its backlog is drained', async () => {
    const relay = await startRelay(backend);
    open = relay;
    const { alice, bob } = await aliceAndBob(relay);
    const send = sender(relay, alice, bob);
    await send(['b1', 'b2', 'b3']);

    const bobRx = receiver(relay, bob);
    await eventually(() => bobRx.drained() && bobRx.got.length === 3);
    const reads = vi.spyOn(relay.app.relay.storage, 'fetchMessages');
    const live = () => relay.app.relay.metrics.envelopesPushedLive.get();
    const liveBefore = (await live()).values[0]?.value ?? 0;

    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(`l${i}`);
      await send([`l${i}`]);
    }
    // Concurrent sends too: several writes in one group commit, several commits in flight.
    const concurrent = Array.from({ length: 8 }, (_, i) => `c${i}`);
    ids.push(...concurrent);
    await Promise.all(concurrent.map((id) => send([id])));

    await eventually(() => bobRx.got.length === 3 + ids.length);
    expect(bobRx.got.slice(3).map(text).sort()).toEqual([...ids].sort());
    expect(strictlyIncreasing(bobRx.got.map((e) => e.seq))).toBe(true);
    expect(reads).not.toHaveBeenCalled();
    expect(((await live()).values[0]?.value ?? 0) - liveBefore).toBe(ids.length);
    bobRx.mailbox.stop();
  });

  it('delivers everything in order across reconnects and a backlog larger than the window', async () => {
    const relay = await startRelay(backend, { maxInFlightPerConnection: 3 });
    open = relay;
    const { alice, bob } = await aliceAndBob(relay);
    const send = sender(relay, alice, bob);
    const all: string[] = [];
    const sendAll = async (ids: string[]) => {
      all.push(...ids);
      await send(ids);
    };
    await sendAll(Array.from({ length: 10 }, (_, i) => `backlog${i}`));

    // First connection: live sends arrive while the backlog is still being pushed 3 at a time;
    // two envelopes are left unacknowledged, and the connection goes before the end.
    const first = receiver(relay, bob, new Set(['backlog4', 'live1']));
    const during = sendAll(['live0', 'live1', 'live2']);
    await eventually(() => first.got.length >= 5);
    await during;
    await eventually(() => first.got.some((e) => text(e) === 'live2'));
    first.mailbox.stop();
    await eventually(() => first.mailbox.state === 'stopped');
    await sendAll(['offline0', 'offline1']);

    // Second connection: the unacknowledged ones again, then the rest, then live ones.
    const second = receiver(relay, bob);
    await eventually(() => second.drained());
    await sendAll(['after0', 'after1']);
    await eventually(() => second.got.some((e) => text(e) === 'after1'));
    second.mailbox.stop();

    for (const c of [first, second]) expect(strictlyIncreasing(c.got.map((e) => e.seq))).toBe(true);
    // Every envelope arrived, in send order (the order of their seqs), and nothing is left stored.
    const delivered = [...first.got, ...second.got].map(text);
    expect(new Set(delivered)).toEqual(new Set(all));
    expect(first.got.map(text)).toEqual(all.slice(0, first.got.length));
    // The second gets those two again, and more whose acknowledgement the first did not get in before it closed.
    const positions = second.got.map((e) => all.indexOf(text(e)));
    expect(strictlyIncreasing(positions)).toBe(true);
    expect(second.got.map(text)).toEqual(expect.arrayContaining(['backlog4', 'live1', 'offline0', 'offline1', 'after0', 'after1']));
    expect((await relay.client(bob.signer).fetchMessages()).messages).toEqual([]);
  });

  it.runIf(backend.name === 'postgres')(
    'two relay processes on one database: sends through both reach a device on one, in order, none lost',
    async () => {
      // Two relays on one schema: B's sends reach A's device by NOTIFY (without rows), A's by hand-off.
      const db = backend.make();
      const a = await startRelay(backend, { maxInFlightPerConnection: 4 }, { config: db.config, drop: async () => {} });
      open = a;
      const b = await startRelay(backend, {}, { config: db.config, drop: db.drop });
      try {
        const { alice, bob } = await aliceAndBob(a);
        const viaA = sender(a, alice, bob);
        const viaB = sender(b, alice, bob);
        const bobRx = receiver(a, bob);
        await eventually(() => bobRx.drained());
        const ids: string[] = [];
        // Interleaved and concurrent: commits of both processes land between each other's.
        await Promise.all(
          Array.from({ length: 6 }, async (_, round) => {
            for (let i = 0; i < 5; i++) {
              const [x, y] = [`a${round}.${i}`, `b${round}.${i}`];
              ids.push(x, y);
              await Promise.all([viaA([x]), viaB([y])]);
            }
          }),
        );
        await eventually(() => new Set(bobRx.got.map(text)).size === ids.length, 10_000);
        expect(strictlyIncreasing(bobRx.got.map((e) => e.seq))).toBe(true);
        expect(new Set(bobRx.got.map(text))).toEqual(new Set(ids));
        bobRx.mailbox.stop();
      } finally {
        await b.close();
      }
    },
  );
});
