/**
 * What a storage hands over at commit for live push (spec/09-relay.md §5.2.1), on SQLite and, with
 * PARLEY_TEST_POSTGRES_URL, PostgreSQL: for plain sends, fan-outs and sealed group sends, the
 * handed rows are exactly the records a read returns afterwards, in seq order, each with the
 * newest unexpired row of its mailbox before it; a retry wakes without rows; a refused or rolled
 * back send hands nothing.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { testPostgresUrl } from './support/backends.ts';
import type {
  CommittedMessage,
  DeviceAddress,
  DeviceRecord,
  MailboxesCommitted,
  RelayStorage,
  StoredMessage,
} from '../src/storage/types.ts';

const PG_URL = testPostgresUrl('the committed-rows hand-off');
const admin = PG_URL ? new pg.Pool({ connectionString: PG_URL, max: 1 }) : undefined;
afterAll(() => admin?.end());

interface Opened {
  readonly storage: RelayStorage;
  readonly drop: () => Promise<void>;
}

const backends: { name: string; open: (listener: MailboxesCommitted) => Promise<Opened> }[] = [
  {
    name: 'sqlite',
    open: async (onMailboxesCommitted) => ({
      storage: new SqliteStorage({ path: ':memory:', onMailboxesCommitted }),
      drop: async () => {},
    }),
  },
  ...(PG_URL
    ? [
        {
          name: 'postgres',
          open: async (onMailboxesCommitted: MailboxesCommitted) => {
            const { PostgresStorage } = await import('../src/storage/postgres.ts');
            const schema = `parley_livest_${randomBytes(6).toString('hex')}`;
            const storage = await PostgresStorage.open({ connectionString: PG_URL, schema, poolSize: 2, onMailboxesCommitted });
            return { storage, drop: async () => void (await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)) };
          },
        },
      ]
    : []),
];

const fill = (tag: number, length = 32) => new Uint8Array(length).fill(tag);
let nextAccount = 1;

function device(accountKey: Uint8Array, deviceId: number): DeviceRecord {
  return {
    accountKey,
    deviceId,
    certificate: Uint8Array.of(0xce, deviceId, ...accountKey.subarray(0, 4)),
    certificateHash: fill(deviceId * 16 + 1),
    signingKey: fill(0x50 + deviceId),
    registeredAt: 1000,
  };
}

/** A record in a comparable form (bytes as hex, whatever their class). */
function plain(m: StoredMessage) {
  const hex = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString('hex'));
  return {
    seq: m.seq,
    sender: { account: hex(m.sender.accountKey), deviceId: m.sender.deviceId },
    clientId: m.clientId,
    serverTimestamp: m.serverTimestamp,
    expiresAt: m.expiresAt,
    envelope: hex(m.envelope),
    delivery: hex(m.delivery),
  };
}

const same = (a: DeviceAddress, b: DeviceAddress) =>
  a.deviceId === b.deviceId && Buffer.from(a.accountKey).equals(Buffer.from(b.accountKey));

describe.each(backends)('committed rows handed for live push ($name)', (backend) => {
  let opened: Opened;
  let s: RelayStorage;
  const commits: { devices: readonly DeviceAddress[]; rows: readonly CommittedMessage[] }[] = [];
  let alice: DeviceAddress;
  let bob1: DeviceAddress;
  let bob2: DeviceAddress;

  beforeEach(async () => {
    commits.length = 0;
    opened = await backend.open((devices, rows) => commits.push({ devices, rows }));
    s = opened.storage;
    const a = fill(nextAccount++ & 0xff);
    const b = fill(nextAccount++ & 0xff);
    alice = { accountKey: a, deviceId: 1 };
    bob1 = { accountKey: b, deviceId: 1 };
    bob2 = { accountKey: b, deviceId: 2 };
    for (const d of [alice, bob1, bob2]) {
      await s.registerDevice({
        device: device(d.accountKey, d.deviceId),
        keys: { signedPreKey: { id: 1, encoded: Uint8Array.of(1) }, lastResortKemPreKey: { id: 1, encoded: Uint8Array.of(2) } },
        maxDevicesPerAccount: 3,
        preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
      });
    }
    commits.length = 0;
  });
  afterEach(async () => {
    await s.close();
    await opened.drop();
  });

  const limits = { maxQueuedMessages: 100, maxQueuedBytes: 1 << 20 };
  const send = (id: string, now = 1000, expiresAt = 100_000, delivery?: Uint8Array) =>
    s.storeMessages({
      sender: alice,
      envelopes: [bob1, bob2].map((r) => ({
        recipient: r,
        clientId: id,
        envelope: new TextEncoder().encode(`${id}->${r.deviceId}`),
        ...(delivery ? { delivery } : {}),
      })),
      now,
      expiresAt,
      ...limits,
    });

  /** Every handed row equals the record a read returns for its mailbox. */
  async function expectHandedAsRead(now = 1000): Promise<CommittedMessage[]> {
    const rows = commits.flatMap((c) => c.rows);
    for (const d of [bob1, bob2]) {
      const handed = rows.filter((r) => same(r.recipient, d)).map((r) => plain(r.message));
      const read = (await s.fetchMessages(d, 0, 100, now)).map(plain);
      expect(handed).toEqual(read);
    }
    return rows;
  }

  /** The time and limits of a send that fits. */
  const fits = { now: 1000, expiresAt: 100_000, ...limits };
  /** A store went through, and handed `count` rows, each as a read returns it. */
  async function expectStoredAndHanded(r: { status: string }, count: number) {
    expect(r.status).toBe('stored');
    expect(await expectHandedAsRead()).toHaveLength(count);
  }

  it('plain sends: the rows a read returns, in seq order, each after the previous row of its mailbox', async () => {
    expect((await send('m1', 1000, 100_000, Uint8Array.of(7, 7))).status).toBe('stored');
    expect((await send('m2')).status).toBe('stored');
    const rows = await expectHandedAsRead();
    expect(commits).toHaveLength(2);
    expect(commits[0]?.devices).toHaveLength(2);
    const bob1Rows = rows.filter((r) => same(r.recipient, bob1));
    expect(bob1Rows.map((r) => r.previousSeq)).toEqual([0, bob1Rows[0]?.message.seq]);
    const seqs = rows.map((r) => r.message.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('fan-out: one payload, a row per recipient as a read returns it', async () => {
    const r = await s.storeFanout({
      sender: alice,
      clientId: 'f1',
      envelope: fill(0xf0, 100),
      recipients: [{ recipient: bob1 }, { recipient: bob2, delivery: Uint8Array.of(9) }],
      ...fits,
    });
    await expectStoredAndHanded(r, 2);
  });

  it('sealed group send: each row holds [seal, payload] exactly as read back', async () => {
    const tokenHash = fill(0x77);
    const r = await s.storeSealedGroup({
      payload: fill(0xab, 80),
      accounts: [
        {
          sender: { accountKey: tokenHash, deviceId: 0 },
          envelopes: [bob1, bob2].map((d) => ({ recipient: d, clientId: 'g1', envelope: fill(0x10 + d.deviceId, 40) })),
        },
      ],
      ...fits,
    });
    await expectStoredAndHanded(r, 2);
  });

  it('previousSeq passes over expired rows; a retry wakes without rows; a refused send hands nothing', async () => {
    await send('long', 1000, 100_000);
    await send('short', 1000, 1500);
    const long = commits[0]?.rows.find((r) => same(r.recipient, bob1));
    commits.length = 0;
    // At 2000 the newest row has expired: the next row's previous row is the one before it.
    await send('later', 2000, 100_000);
    expect(commits[0]?.rows.find((r) => same(r.recipient, bob1))?.previousSeq).toBe(long?.message.seq);
    commits.length = 0;

    // A retry stores nothing new and wakes both devices, without rows: their pumps read.
    expect(await send('later', 2000, 100_000)).toMatchObject({ status: 'stored', stored: 0 });
    expect(commits).toHaveLength(1);
    expect(commits[0]?.devices).toHaveLength(2);
    expect(commits[0]?.rows).toEqual([]);
    commits.length = 0;

    // Refused (mailbox full): rolled back, nothing handed.
    const full = await s.storeMessages({
      sender: alice,
      envelopes: [bob1, bob2].map((d) => ({ recipient: d, clientId: 'x', envelope: fill(1, 10) })),
      now: 2000,
      expiresAt: 100_000,
      maxQueuedMessages: 1,
      maxQueuedBytes: 1 << 20,
    });
    expect(full.status).toBe('mailbox-full');
    expect(commits).toEqual([]);
  });
});
