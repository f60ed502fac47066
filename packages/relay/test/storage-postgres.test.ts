// PostgresStorage: the storage contract on a real PostgreSQL server, plus
// what only a shared database has: several relay processes writing at once,
// and wake-ups that cross between them. spec/09-relay.md §7.3.
//
// Needs a server: PARLEY_TEST_POSTGRES_URL (printed by
// .ci/install-postgres.sh, which .ci/run calls). Without it these tests are
// skipped, except under CI=true, where a missing server is a failure.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { LISTENER_APPLICATION_NAME, PostgresStorage } from '../src/storage/postgres.ts';
import { POSTGRES_SCHEMA_VERSION } from '../src/storage/postgres-schema.ts';
import type { DeviceAddress, DeviceRecord, RegisterInput, StoreMessagesInput } from '../src/storage/types.ts';
import { describeStorageContract } from './storage-contract.ts';
import { testPostgresUrl } from './support/backends.ts';

const URL = testPostgresUrl('the storage tests');

const admin = URL ? new pg.Pool({ connectionString: URL, max: 2 }) : undefined;
afterAll(() => admin?.end());

/** A schema of its own for each test, dropped afterwards. */
function newSchema(): string {
  return `parley_t_${randomBytes(6).toString('hex')}`;
}

async function dropSchema(schema: string): Promise<void> {
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

describe.skipIf(!URL)('PostgreSQL', () => {
  const url = URL as string;

  describeStorageContract(
    'PostgreSQL',
    async () => {
      const schema = newSchema();
      let storage = await PostgresStorage.open({ connectionString: url, schema });
      return {
        get storage() {
          return storage;
        },
        reopen: async () => {
          await storage.close();
          storage = await PostgresStorage.open({ connectionString: url, schema });
          return storage;
        },
        cleanup: async () => {
          await storage.close();
          await dropSchema(schema);
        },
      };
    },
    { durable: true },
  );

  const LIMITS = { maxOneTimePreKeys: 100, maxKemPreKeys: 100 };
  const tag = (b: number, n = 32) => new Uint8Array(n).fill(b);
  function device(accountKey: Uint8Array, deviceId: number): DeviceRecord {
    return {
      accountKey,
      deviceId,
      certificate: Uint8Array.of(0xce, deviceId, ...accountKey.subarray(0, 4)),
      certificateHash: randomBytes(32),
      signingKey: tag(0x50 + deviceId),
      registeredAt: 1,
    };
  }
  const registration = (d: DeviceRecord, maxDevicesPerAccount = 8): RegisterInput => ({
    device: d,
    keys: { signedPreKey: { id: 1, encoded: tag(1, 3) }, lastResortKemPreKey: { id: 1, encoded: tag(2, 3) } },
    maxDevicesPerAccount,
    preKeyLimits: LIMITS,
  });
  const send = (sender: DeviceAddress, recipients: DeviceAddress[], clientId: string): StoreMessagesInput => ({
    sender,
    envelopes: recipients.map((recipient) => ({ recipient, clientId, envelope: new TextEncoder().encode(clientId) })),
    now: 1,
    expiresAt: Number.MAX_SAFE_INTEGER,
    maxQueuedMessages: 1_000_000,
    maxQueuedBytes: 1 << 30,
  });

  /** Two relay processes' storages on one schema, with `fn` run between open and cleanup. */
  async function twoRelays(fn: (a: PostgresStorage, b: PostgresStorage) => Promise<void>): Promise<void> {
    const schema = newSchema();
    const a = await PostgresStorage.open({ connectionString: url, schema, poolSize: 6 });
    const b = await PostgresStorage.open({ connectionString: url, schema, poolSize: 6 });
    try {
      await fn(a, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await dropSchema(schema);
    }
  }

  describe('several relay processes on one database', () => {
    it('keeps per-device order: a reader paging by seq while 12 connections send never skips a message', async () => {
      await twoRelays(async (a, b) => {
        const bob = { accountKey: tag(0xb0), deviceId: 1 };
        const bob2 = { accountKey: tag(0xb0), deviceId: 2 };
        await a.registerDevice(registration(device(bob.accountKey, 1)));
        await a.registerDevice(registration(device(bob.accountKey, 2)));
        const senders = Array.from({ length: 6 }, (_, i) => ({ accountKey: tag(0x10 + i), deviceId: 1 }));
        for (const s of senders) await b.registerDevice(registration(device(s.accountKey, 1)));

        const perSender = 25;
        let sending = true;
        const writes = senders.map(async (s, i) => {
          const storage = i % 2 === 0 ? a : b;
          for (let n = 0; n < perSender; n++) {
            const r = await storage.storeMessages(send(s, [bob, bob2], `${i}-${n}`));
            expect(r).toMatchObject({ status: 'stored', stored: 2 });
          }
        });
        const seen: string[] = [];
        const reader = (async () => {
          // A seq committed behind one already returned would be skipped here for good.
          let after = 0;
          while (sending || seen.length < senders.length * perSender) {
            // Read the flag before the fetch: an empty page whose snapshot was
            // taken while senders were still writing proves nothing (reading it
            // after made the test end one message early under load).
            const wasSending = sending;
            const page = await b.fetchMessages(bob, after, 50, 1);
            for (const m of page) {
              expect(m.seq).toBeGreaterThan(after);
              after = m.seq;
              seen.push(m.clientId);
            }
            if (!wasSending && page.length === 0) break;
          }
        })();
        await Promise.all(writes);
        sending = false;
        await reader;
        expect(seen).toHaveLength(senders.length * perSender);
        expect(new Set(seen).size).toBe(seen.length);
        // Each sender's messages arrive in the order it sent them.
        for (let i = 0; i < senders.length; i++) {
          const mine = seen.filter((id) => id.startsWith(`${i}-`)).map((id) => Number(id.split('-')[1]));
          expect(mine).toEqual([...mine].sort((x, y) => x - y));
        }
        const stats = await a.stats();
        expect(stats.queuedMessages).toBe(2 * senders.length * perSender);
      });
    });

    it('holds the device limit when two processes register new devices at once', async () => {
      await twoRelays(async (a, b) => {
        const account = tag(0xc1);
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).registerDevice(registration(device(account, i + 1), 3))),
        );
        expect(results.filter((r) => r.status === 'created')).toHaveLength(3);
        expect(results.filter((r) => r.status === 'too-many-devices')).toHaveLength(5);
        expect(await a.listDevices(account)).toHaveLength(3);
      });
    });

    it('hands each one-time prekey out once when both processes claim at once', async () => {
      await twoRelays(async (a, b) => {
        const account = tag(0xc2);
        const addr = { accountKey: account, deviceId: 1 };
        await a.registerDevice(registration(device(account, 1)));
        const ids = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, encoded: Uint8Array.of(i + 1) }));
        await a.uploadPreKeys(addr, { oneTimePreKeys: ids }, LIMITS);
        const claims = await Promise.all(
          Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).claimPreKeys({ accountKey: account, deviceId: 1 })),
        );
        const handed = claims.map((c) => c[0]?.oneTimePreKey?.[0]).filter((k) => k !== undefined);
        expect(handed).toHaveLength(20);
        expect(new Set(handed).size).toBe(20);
      });
    });

    it('is idempotent when the same send is retried through both processes at once', async () => {
      await twoRelays(async (a, b) => {
        const bob = { accountKey: tag(0xc3), deviceId: 1 };
        const alice = { accountKey: tag(0xc4), deviceId: 1 };
        await a.registerDevice(registration(device(bob.accountKey, 1)));
        await a.registerDevice(registration(device(alice.accountKey, 1)));
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).storeMessages(send(alice, [bob], 'once'))));
        expect(results.map((r) => (r.status === 'stored' ? r.stored : -1)).sort()).toEqual([0, 0, 0, 0, 0, 1]);
        expect(await a.fetchMessages(bob, 0, 10, 1)).toHaveLength(1);
      });
    });

    it('frees a fan-out payload exactly once when its recipients acknowledge through both processes at once', async () => {
      await twoRelays(async (a, b) => {
        const alice = { accountKey: tag(0xc7), deviceId: 1 };
        const members = Array.from({ length: 24 }, (_, i) => ({ accountKey: tag(0x40 + i), deviceId: 1 }));
        for (const d of [alice, ...members]) await a.registerDevice(registration(device(d.accountKey, 1)));
        const fanout = (clientId: string) => ({
          sender: alice,
          clientId,
          envelope: new TextEncoder().encode(clientId),
          recipients: members.map((recipient) => ({ recipient })),
          now: 1,
          expiresAt: Number.MAX_SAFE_INTEGER,
          maxQueuedMessages: 1_000_000,
          maxQueuedBytes: 1 << 30,
        });
        // Two group messages, acknowledged in opposite orders by half the members: the
        // payload rows are locked in different orders (a deadlock is retried, never surfaced).
        for (const id of ['g1', 'g2']) expect(await (id === 'g1' ? a : b).storeFanout(fanout(id))).toMatchObject({ stored: 24 });
        const acks = members.map(async (m, i) => {
          const seqs = (await a.fetchMessages(m, 0, 10, 1)).map((x) => x.seq);
          return (i % 2 ? a : b).ackMessages(m, i % 4 < 2 ? seqs : [...seqs].reverse());
        });
        expect(await Promise.all(acks)).toEqual(members.map(() => 2));
        expect(await b.stats()).toMatchObject({ payloads: 0, queuedMessages: 0, queuedBytes: 0 });
      });
    });

    it('fan-outs racing device removals on two processes: each is stored or refused whole, and no payload is left behind', async () => {
      await twoRelays(async (a, b) => {
        const alice = { accountKey: tag(0xd0), deviceId: 1 };
        const accounts = Array.from({ length: 6 }, (_, i) => tag(0xd1 + i));
        const devices = accounts.flatMap((accountKey) => [1, 2, 3].map((deviceId) => ({ accountKey, deviceId })));
        const registered = new Map<string, DeviceRecord>();
        await a.registerDevice(registration(device(alice.accountKey, 1)));
        for (const d of devices) {
          const record = device(d.accountKey, d.deviceId);
          registered.set(`${d.accountKey[0]}:${d.deviceId}`, record);
          await a.registerDevice(registration(record));
        }
        const fanout = (clientId: string) => ({
          sender: alice,
          clientId,
          envelope: new TextEncoder().encode(clientId),
          recipients: devices.map((recipient) => ({ recipient })),
          now: 1,
          expiresAt: Number.MAX_SAFE_INTEGER,
          maxQueuedMessages: 1_000_000,
          maxQueuedBytes: 1 << 30,
        });
        // Device 3 of every account goes while group messages naming it are being stored.
        const leaving = devices.filter((d) => d.deviceId === 3);
        const [sends, removals] = await Promise.all([
          Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).storeFanout(fanout(`g${i}`)))),
          Promise.all(
            leaving.map((d, i) =>
              (i % 2 ? b : a).removeDevice(d, (registered.get(`${d.accountKey[0]}:3`) as DeviceRecord).certificateHash, 2),
            ),
          ),
        ]);
        expect(removals).toEqual(leaving.map(() => 'removed'));
        for (const r of sends) expect(['stored', 'mismatched-devices']).toContain(r.status);
        const stored = sends.filter((r) => r.status === 'stored').length;
        expect((await a.stats()).payloads).toBe(stored);
        // The staying devices hold every stored group message; acknowledging them frees every payload.
        for (const d of devices.filter((x) => x.deviceId !== 3)) {
          const held = await b.fetchMessages(d, 0, 100, 1);
          expect(held).toHaveLength(stored);
          expect(
            await (d.deviceId === 1 ? a : b).ackMessages(
              d,
              held.map((m) => m.seq),
            ),
          ).toBe(stored);
        }
        expect(await a.stats()).toMatchObject({ payloads: 0, queuedMessages: 0, queuedBytes: 0 });
      });
    });

    it('a process is not woken by its own sends (its routes wake it), and a retry that stores nothing wakes the others again', async () => {
      await twoRelays(async (a, b) => {
        const bob = { accountKey: tag(0xc7), deviceId: 7 };
        const alice = { accountKey: tag(0xc8), deviceId: 1 };
        await a.registerDevice(registration(device(bob.accountKey, 7)));
        await a.registerDevice(registration(device(alice.accountKey, 1)));
        const byA: unknown[] = [];
        const byB: unknown[] = [];
        const stopA = await a.watchMailboxes((w) => byA.push(w));
        const stopB = await b.watchMailboxes((w) => byB.push(w));
        const wake = [{ accountKey: bob.accountKey, deviceId: 7 }];
        await a.storeMessages(send(alice, [bob], 'once'));
        await vi.waitFor(() => expect(byB).toEqual([wake]));
        // The retry's first answer may have been lost after the commit, with its wake-up.
        expect(await a.storeMessages(send(alice, [bob], 'once'))).toMatchObject({ stored: 0, recipients: wake });
        await vi.waitFor(() => expect(byB).toEqual([wake, wake]));
        // b's own send reaches a, and neither process ever heard itself.
        await b.storeMessages(send(alice, [bob], 'from b'));
        await vi.waitFor(() => expect(byA).toEqual([wake]));
        expect(byB).toHaveLength(2);
        await Promise.all([stopA(), stopB()]);
      });
    });

    it('wakes the other process for a send it did not handle, and wakes everything after losing LISTEN', async () => {
      await twoRelays(async (a, b) => {
        const bob = { accountKey: tag(0xc5), deviceId: 7 };
        const alice = { accountKey: tag(0xc6), deviceId: 1 };
        await a.registerDevice(registration(device(bob.accountKey, 7)));
        await a.registerDevice(registration(device(alice.accountKey, 1)));
        const woken: (readonly DeviceAddress[] | 'all')[] = [];
        let signal: () => void = () => {};
        const next = () => new Promise<void>((resolve) => (signal = resolve));
        const stop = await b.watchMailboxes((w) => {
          woken.push(w);
          signal();
        });
        let arrived = next();
        await a.storeMessages(send(alice, [bob], 'wake'));
        await arrived;
        expect(woken).toEqual([[{ accountKey: bob.accountKey, deviceId: 7 }]]);

        // The server drops the LISTEN connection: wake-ups in between are
        // lost, so the listener reconnects and wakes every local websocket.
        arrived = next();
        const killed = await admin?.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
          LISTENER_APPLICATION_NAME,
        ]);
        expect(killed?.rowCount).toBeGreaterThan(0);
        await arrived;
        expect(woken.at(-1)).toBe('all');
        arrived = next();
        await a.storeMessages(send(alice, [bob], 'after'));
        await arrived;
        expect(woken.at(-1)).toEqual([{ accountKey: bob.accountKey, deviceId: 7 }]);
        await stop();
      });
    }, 30_000);
  });

  describe('schema', () => {
    it('migrates once when several processes open a new database at once', async () => {
      const schema = newSchema();
      const storages = await Promise.all(Array.from({ length: 4 }, () => PostgresStorage.open({ connectionString: url, schema })));
      const { rows } = (await admin?.query(`SELECT version FROM ${schema}.parley_schema`)) as pg.QueryResult;
      expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
      await Promise.all(storages.map((s) => s.close()));
      await dropSchema(schema);
    });

    it('refuses a database written by a newer relay', async () => {
      const schema = newSchema();
      await (await PostgresStorage.open({ connectionString: url, schema })).close();
      await admin?.query(`UPDATE ${schema}.parley_schema SET version = version + 1`);
      await expect(PostgresStorage.open({ connectionString: url, schema })).rejects.toThrow(/newer than this relay/);
      await dropSchema(schema);
    });

    it('refuses a schema name that is not a plain identifier', async () => {
      await expect(PostgresStorage.open({ connectionString: url, schema: 'x; DROP TABLE y' })).rejects.toThrow(/schema name/);
    });
  });
});
