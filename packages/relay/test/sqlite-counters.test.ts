// The SQLite backend keeps its mailbox counters in memory (storage/sqlite-counters.ts,
// spec/09-relay.md §8.3). Whatever writes run, together in one group commit or not, refused,
// aborted after their writes, or lost with a failed commit, the counters must equal a recount
// of the rows by SQL after every step, and again after the relay reopens the database. So must
// each mailbox's newest seq that live push reads from memory (storage/sqlite-newest.ts).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DEVICE_PURGE_CHUNK_ROWS, purgeMailboxes, registerDevice, removeDevice } from '../src/storage/rules/devices.ts';
import { sweep } from '../src/storage/rules/housekeeping.ts';
import { ackMessages, storeFanout, storeMessages, storeSealedGroup } from '../src/storage/rules/messages.ts';
import type { StorageDriver, WriteQueries } from '../src/storage/rules/queries.ts';
import { type Rule, abort } from '../src/storage/rules/step.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress, DeviceRecord, StoreMessagesInput } from '../src/storage/types.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A failed commit, for real: the batch's outer transaction (write-batcher.ts, the only
 * better-sqlite3 transaction opened outside another one after the migrations) throws after its
 * writes ran, so better-sqlite3 rolls the whole transaction back, as when COMMIT itself fails.
 */
let failCommits = 0;
const originalTransaction = Database.prototype.transaction;
vi.spyOn(Database.prototype, 'transaction').mockImplementation(function (this: Database.Database, fn) {
  const outer = !this.inTransaction;
  return originalTransaction.call(this, (...args: unknown[]) => {
    const result = (fn as (...a: unknown[]) => unknown)(...args);
    if (outer && failCommits > 0) {
      failCommits--;
      throw new Error('injected commit failure');
    }
    return result;
  }) as never;
});
afterEach(() => {
  failCommits = 0;
});

/** Accounts and their device counts; account 3's devices also send to themselves. */
const DEVICES = [1, 2, 3, 2];
const SHORT_TTL = 50;
const LONG_TTL = 1_000_000;

const accountKey = (a: number) => new Uint8Array(32).fill(0x40 + a);
const tokenHash = (t: number) => new Uint8Array(32).fill(0xa0 + t);
const ALL: DeviceAddress[] = DEVICES.flatMap((n, a) =>
  Array.from({ length: n }, (_, i) => ({ accountKey: accountKey(a), deviceId: i + 1 })),
);

const certHash = (d: DeviceAddress, version: number) => {
  const h = new Uint8Array(32).fill(version);
  h[0] = d.accountKey[0] as number;
  h[1] = d.deviceId;
  return h;
};

function record(d: DeviceAddress, version: number): DeviceRecord {
  return {
    ...d,
    certificate: Uint8Array.of(0xce, d.deviceId, version),
    certificateHash: certHash(d, version),
    signingKey: new Uint8Array(32).fill(0x50 + d.deviceId),
    registeredAt: 1,
  };
}

const key = (id: number, tag: number) => ({ id, encoded: Uint8Array.of(0x4b, id, tag) });

// ---- the steps

const ttl = fc.constantFrom(SHORT_TTL, LONG_TTL);
const size = fc.integer({ min: 1, max: 300 });
/** Mailbox limits: mostly roomy, sometimes tight enough to refuse or to purge expired envelopes first. */
const limits = fc.record({
  maxQueuedMessages: fc.constantFrom(2, 5, 100),
  perSender: fc.option(fc.constantFrom(1, 3), { nil: undefined }),
});

const op = fc.oneof(
  fc.record({
    kind: fc.constant('send' as const),
    from: fc.nat(ALL.length - 1),
    to: fc.nat(DEVICES.length - 1),
    size,
    ttl,
    limits,
    again: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('fanout' as const),
    from: fc.nat(ALL.length - 1),
    to: fc.uniqueArray(fc.nat(DEVICES.length - 1), { minLength: 1, maxLength: 3 }),
    size,
    ttl,
    limits,
  }),
  fc.record({
    kind: fc.constant('sealed' as const),
    token: fc.nat(2),
    to: fc.uniqueArray(fc.nat(DEVICES.length - 1), { minLength: 1, maxLength: 3 }),
    size,
    seal: fc.integer({ min: 1, max: 40 }),
    ttl,
    limits,
  }),
  // `newest`: only the mailbox's newest row, older ones stay (what the pump's previous seq must notice).
  fc.record({
    kind: fc.constant('ack' as const),
    device: fc.nat(ALL.length - 1),
    own: fc.nat(4),
    foreign: fc.nat(2),
    newest: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('sweep' as const) }),
  // `chunk`: the rows the removal deletes in its own write (DEVICE_PURGE_CHUNK_ROWS; smaller ones
  // leave these small mailboxes being purged, as a full one is).
  fc.record({
    kind: fc.constant('remove' as const),
    device: fc.nat(ALL.length - 1),
    chunk: fc.constantFrom(1, 1, 1, 2, DEVICE_PURGE_CHUNK_ROWS),
    // Rows stored for the device by the same write first, so the mailbox is larger than the chunk.
    flood: fc.integer({ min: 2, max: 8 }),
  }),
  // Several rows for one device in one send: a mailbox larger than a removal's chunk.
  fc.record({
    kind: fc.constant('flood' as const),
    from: fc.nat(ALL.length - 1),
    device: fc.nat(ALL.length - 1),
    rows: fc.integer({ min: 3, max: 8 }),
    size,
  }),
  // One bounded purge write of the removed devices' mailboxes (what sweeper.ts purgeRemoved runs).
  fc.record({ kind: fc.constant('purge' as const), limit: fc.integer({ min: 1, max: 3 }) }),
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

/** One step: ops submitted together (one group commit), each possibly aborted after its writes, the commit possibly failing. */
const step = fc.record({
  ops: fc.array(fc.record({ op, aborted: fc.integer({ min: 0, max: 9 }).map((x) => x < 2) }), { minLength: 1, maxLength: 3 }),
  failCommit: fc.integer({ min: 0, max: 19 }).map((x) => x < 2),
  tick: fc.integer({ min: 0, max: 40 }),
  // Removed devices come back after this step, or stay removed (their mailboxes being purged meanwhile).
  register: fc.integer({ min: 0, max: 9 }).map((x) => x < 4),
  // Closed and opened again after the step (mid-purge, often): the counters come from the rows.
  reopen: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
});

interface World {
  storage: SqliteStorage;
  driver: StorageDriver;
  readonly reader: Database.Database;
  readonly versions: number[];
  now: number;
  nextId: number;
  lastId: Map<string, string>;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

async function openWorld(dir: string): Promise<World> {
  const storage = new SqliteStorage({ path: join(dir, 'relay.sqlite') });
  const versions = ALL.map(() => 1);
  for (const d of ALL) {
    await storage.registerDevice({
      device: record(d, 1),
      keys: { signedPreKey: key(1, 1), lastResortKemPreKey: key(1, 2) },
      maxDevicesPerAccount: 5,
      preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
    });
  }
  const reader = new Database(join(dir, 'relay.sqlite'), { readonly: true });
  const driver = (storage as unknown as { driver: StorageDriver }).driver;
  return { storage, driver, reader, versions, now: 1000, nextId: 0, lastId: new Map() };
}

/** Every device of account `a` except `sender`. */
const devicesOf = (a: number, sender?: DeviceAddress) =>
  ALL.filter(
    (d) => d.accountKey[0] === 0x40 + a && !(sender && d.accountKey[0] === sender.accountKey[0] && d.deviceId === sender.deviceId),
  );

function limitsOf(l: { maxQueuedMessages: number; perSender: number | undefined }) {
  return {
    maxQueuedMessages: l.maxQueuedMessages,
    maxQueuedBytes: 1 << 20,
    ...(l.perSender === undefined ? {} : { maxQueuedMessagesPerSender: l.perSender }),
  };
}

/** The rule an op runs (what the storage's method runs), built before the batch. */
async function ruleOf(w: World, o: Op): Promise<(q: WriteQueries) => Rule<unknown>> {
  const now = w.now;
  switch (o.kind) {
    case 'send': {
      const sender = ALL[o.from] as DeviceAddress;
      const pair = `${o.from}>${o.to}`;
      // `again`: the same client id as this pair's last send (an idempotent retry stores nothing new).
      const clientId = (o.again && w.lastId.get(pair)) || `m${w.nextId++}`;
      w.lastId.set(pair, clientId);
      const input: StoreMessagesInput = {
        sender,
        envelopes: devicesOf(o.to, sender).map((r) => ({ recipient: r, clientId, envelope: new Uint8Array(o.size).fill(7) })),
        now,
        expiresAt: now + o.ttl,
        ...limitsOf(o.limits),
      };
      return (q) => storeMessages(q, input);
    }
    case 'fanout': {
      const sender = ALL[o.from] as DeviceAddress;
      const recipients = o.to.flatMap((a) => devicesOf(a, sender)).map((recipient) => ({ recipient }));
      const input = {
        sender,
        clientId: `f${w.nextId++}`,
        envelope: new Uint8Array(o.size).fill(8),
        recipients,
        now,
        expiresAt: now + o.ttl,
        ...limitsOf(o.limits),
      };
      return (q) => storeFanout(q, input);
    }
    case 'sealed': {
      const sender = { accountKey: tokenHash(o.token), deviceId: 0 };
      const clientId = `s${w.nextId++}`;
      const accounts = o.to.map((a) => ({
        sender,
        envelopes: devicesOf(a).map((r) => ({ recipient: r, clientId, envelope: new Uint8Array(o.seal).fill(9) })),
      }));
      const input = { payload: new Uint8Array(o.size).fill(10), accounts, now, expiresAt: now + o.ttl, ...limitsOf(o.limits) };
      return (q) => storeSealedGroup(q, input);
    }
    case 'ack': {
      const device = ALL[o.device] as DeviceAddress;
      const queued = (await w.storage.fetchMessages(device, 0, 100, 0)).map((m) => m.seq);
      const own = o.newest ? queued.slice(-1) : queued.slice(0, o.own);
      // Someone else's seqs: never deleted by this device's acknowledgement.
      const other = ALL[(o.device + 1) % ALL.length] as DeviceAddress;
      const foreign = (await w.storage.fetchMessages(other, 0, 100, 0)).slice(0, o.foreign).map((m) => m.seq);
      return (q) => ackMessages(q, device, [...own, ...foreign]);
    }
    case 'sweep':
      return (q) => sweep(q, now);
    case 'remove': {
      const device = ALL[o.device] as DeviceAddress;
      const hash = certHash(device, w.versions[o.device] as number);
      const from = ALL[(o.device + 1) % ALL.length] as DeviceAddress;
      const input: StoreMessagesInput = {
        sender: from,
        envelopes: Array.from({ length: o.flood }, (_, i) => ({
          recipient: device,
          clientId: `x${w.nextId + i}`,
          envelope: new Uint8Array(20 + i).fill(12),
        })),
        now,
        expiresAt: now + LONG_TTL,
        maxQueuedMessages: 100,
        maxQueuedBytes: 1 << 20,
      };
      w.nextId += o.flood;
      return function* (q) {
        // The device may be gone already (removed by an earlier op): its mailbox takes nothing then.
        if (o.flood > 0) yield* storeMessages(q, input);
        return yield* removeDevice(q, device, hash, now, o.chunk);
      };
    }
    case 'flood': {
      const sender = ALL[o.from] as DeviceAddress;
      const recipient = ALL[o.device] as DeviceAddress;
      const base = w.nextId;
      w.nextId += o.rows;
      const input: StoreMessagesInput = {
        sender,
        envelopes: Array.from({ length: o.rows }, (_, i) => ({
          recipient,
          clientId: `r${base + i}`,
          envelope: new Uint8Array(o.size).fill(11),
        })),
        now,
        expiresAt: now + LONG_TTL,
        maxQueuedMessages: 100,
        maxQueuedBytes: 1 << 20,
      };
      return (q) => storeMessages(q, input);
    }
    case 'purge':
      return (q) => purgeMailboxes(q, o.limit);
  }
}

/**
 * Puts back every removed device under a new certificate (revoked ones cannot come back). A
 * registration deletes at most one more row of the id's old mailbox (a small bound, so purges
 * last across steps) and is refused while rows are left; a device it creates has no row.
 */
async function reRegister(w: World): Promise<number> {
  let purging = 0;
  for (const [i, d] of ALL.entries()) {
    if (await w.storage.getDevice(d)) continue;
    const version = (w.versions[i] as number) + 1;
    const input = {
      device: record(d, version),
      keys: { signedPreKey: key(1, 1), lastResortKemPreKey: key(1, 2) },
      maxDevicesPerAccount: 5,
      preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
    };
    const result = await w.driver.transact((q) => registerDevice(q, input, 1));
    if (result.status === 'purging') {
      purging++;
      expect(await w.storage.fetchMessages(d, 0, 1000, 0), 'a purging mailbox still holds rows').not.toEqual([]);
      continue;
    }
    expect(result.status).toBe('created');
    w.versions[i] = version;
    // No row queued for the device this id named before reaches the new one.
    expect(await w.storage.fetchMessages(d, 0, 1000, 0)).toEqual([]);
  }
  return purging;
}

/** Closes the storage and opens the database again (the counters rebuilt from the rows). */
async function reopenWorld(w: World, dir: string): Promise<void> {
  await w.storage.close();
  w.storage = new SqliteStorage({ path: join(dir, 'relay.sqlite') });
  w.driver = (w.storage as unknown as { driver: StorageDriver }).driver;
}

/** The rows' own count: per mailbox and sender account, messages and bytes. */
function recount(db: Database.Database) {
  return db
    .prepare<[], { recipient: string; deviceId: number; sender: string; messages: number; bytes: number }>(
      `SELECT lower(hex(recipient_account)) AS recipient, recipient_device AS deviceId, lower(hex(sender_account)) AS sender,
         COUNT(*) AS messages, SUM(length(envelope) + payload_bytes) AS bytes
       FROM messages GROUP BY recipient_account, recipient_device, sender_account ORDER BY 1, 2, 3`,
    )
    .all();
}

function inMemory(storage: SqliteStorage) {
  return [...storage.counters.shares()]
    .map((s) => ({ recipient: hex(s.recipient), deviceId: s.deviceId, sender: hex(s.sender), messages: s.messages, bytes: s.bytes }))
    .sort((a, b) => a.recipient.localeCompare(b.recipient) || a.deviceId - b.deviceId || a.sender.localeCompare(b.sender));
}

/** What live push's previous seq must be: the SQL answer, newest unexpired seq of the mailbox. */
function expectNewest(storage: SqliteStorage, reader: Database.Database, now: number, where: string, mailboxes = ALL): void {
  const query = reader.prepare<[Buffer, number, number], { seq: number }>(
    'SELECT MAX(seq) AS seq FROM messages WHERE recipient_account = ? AND recipient_device = ? AND expires_at > ?',
  );
  // Now; later, when the short-lived rows have expired (an entry for an expired row must not answer);
  // earlier, as a clock stepped back would ask (an entry for a row swept or purged must be gone).
  for (const at of [now, now + SHORT_TTL, now - SHORT_TTL]) {
    for (const d of mailboxes) {
      const account = Buffer.from(d.accountKey);
      const sql = query.get(account, d.deviceId, at)?.seq ?? 0;
      expect(storage.newest.previousSeq(account, d.deviceId, at), `${where}: newest seq of ${hex(account)}/${d.deviceId} at ${at}`).toBe(
        sql,
      );
    }
  }
}

/**
 * The sweep's queue (storage/sqlite-expiry.ts): every mailbox holding rows has a bound at or
 * before its soonest expiry (else the sweep could miss its expired rows), and the heap stays
 * within its bound; seqs (storage/sqlite-seqs.ts): the reservation on disk covers every row.
 */
function expectExpiryBounds(storage: SqliteStorage, reader: Database.Database, where: string): void {
  const rows = reader
    .prepare<[], { account: Buffer; device: number; soonest: number }>(
      'SELECT recipient_account AS account, recipient_device AS device, MIN(expires_at) AS soonest FROM messages GROUP BY 1, 2',
    )
    .all();
  for (const r of rows) {
    const key = `${r.device}:${r.account.toString('latin1')}`;
    expect(storage.expiry.soonest(key), `${where}: expiry bound of ${r.account.toString('hex')}/${r.device}`).toBeLessThanOrEqual(
      r.soonest,
    );
  }
  expect(storage.expiry.heapSize, `${where}: expiry heap`).toBeLessThanOrEqual(2 * storage.expiry.size + 1025);
  const { reserved } = reader.prepare<[], { reserved: number }>('SELECT reserved FROM message_seq').get() as { reserved: number };
  const { max } = reader.prepare<[], { max: number | null }>('SELECT MAX(seq) AS max FROM messages').get() as { max: number | null };
  expect(reserved, `${where}: seq reservation`).toBeGreaterThanOrEqual(max ?? 0);
}

async function expectExact(w: World, where: string): Promise<void> {
  expectNewest(w.storage, w.reader, w.now, where);
  expectExpiryBounds(w.storage, w.reader, where);
  const rows = recount(w.reader);
  // Bounded by the rows: an entry only for a mailbox that holds rows (none left behind by an ack, sweep, purge or removal).
  const holding = new Set(rows.map((r) => `${r.recipient}/${r.deviceId}`)).size;
  expect(w.storage.newest.size, `${where}: newest entries`).toBeLessThanOrEqual(holding);
  expect(inMemory(w.storage), where).toEqual(rows);
  const stats = await w.storage.stats();
  expect({ messages: stats.queuedMessages, bytes: stats.queuedBytes }, where).toEqual({
    messages: rows.reduce((n, r) => n + r.messages, 0),
    bytes: rows.reduce((n, r) => n + r.bytes, 0),
  });
}

describe('SQLite mailbox counters in memory', () => {
  it('equal a recount by SQL after every step: sends, fan-outs, sealed groups, acks, sweeps, purges, removals, aborts, failed commits', async () => {
    const outcomes = { stored: 0, refused: 0, aborted: 0, failed: 0, acked: 0, swept: 0, newestKept: 0, purging: 0, reopenedMidPurge: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 15 }), async (steps) => {
        const dir = mkdtempSync(join(tmpdir(), 'parley-counters-'));
        dirs.push(dir);
        const w = await openWorld(dir);
        let open = true;
        const purgeRecords = () => (w.reader.prepare('SELECT COUNT(*) AS n FROM purging_mailboxes').get() as { n: number }).n;
        try {
          // Every run starts mid-purge, reopened: device 0 removed with a mailbox larger than the
          // removal's chunk. The random steps then purge, sweep, register and reopen around it.
          await w.driver.transact(await ruleOf(w, { kind: 'remove', device: 0, chunk: 1, flood: 5 }));
          await expectExact(w, 'removed, purging');
          expect(purgeRecords()).toBe(1);
          await reopenWorld(w, dir);
          await expectExact(w, 'reopened mid-purge');
          outcomes.reopenedMidPurge++;
          for (const [n, s] of steps.entries()) {
            w.now += s.tick;
            const rules = [];
            for (const { op: o, aborted } of s.ops) rules.push({ rule: await ruleOf(w, o), aborted, kind: o.kind });
            failCommits = s.failCommit ? 1 : 0;
            // Submitted in one turn: one group commit, each in its own savepoint.
            const settled = await Promise.allSettled(
              rules.map(({ rule, aborted }) =>
                w.driver.transact(function* (q) {
                  const result = yield* rule(q);
                  // After its writes: the savepoint rolls back, the answer is the result.
                  return aborted ? abort(result) : result;
                }),
              ),
            );
            failCommits = 0;
            for (const [i, r] of settled.entries()) {
              if (r.status === 'rejected') {
                expect(String(r.reason)).toContain('injected commit failure');
                outcomes.failed++;
              } else if (rules[i]?.aborted) outcomes.aborted++;
              else if ((r.value as { status?: string }).status === 'stored') outcomes.stored++;
              else if (typeof r.value === 'object' && r.value !== null && 'status' in r.value) outcomes.refused++;
              else if (rules[i]?.kind === 'sweep' && (r.value as { messages: number }).messages > 0) outcomes.swept++;
              else if (rules[i]?.kind === 'ack' && (r.value as number) > 0) outcomes.acked++;
            }
            await expectExact(w, `step ${n}`);
            if (w.storage.newest.size > 0) outcomes.newestKept++;
            if (s.register) {
              outcomes.purging += await reRegister(w);
              await expectExact(w, `step ${n}, registered again`);
            }
            if (s.reopen) {
              if (purgeRecords() > 0) outcomes.reopenedMidPurge++;
              await reopenWorld(w, dir);
              await expectExact(w, `step ${n}, reopened`);
            }
          }
          // The purges end: bounded writes until none is left, then every id can be registered.
          for (let more = true; more; ) more = (await w.storage.purgeRemovedMailboxes()).more;
          expect(await reRegister(w)).toBe(0);
          await expectExact(w, 'purged');
          // Then every run drains: the short-lived envelopes expire and are swept, the rest are
          // acknowledged, and the counters come back to nothing.
          w.now += SHORT_TTL;
          const drained = await w.storage.sweep(w.now);
          if (drained.messages > 0) outcomes.swept++;
          await expectExact(w, 'after the final sweep');
          // Complete: one sweep (far below its bounds here) left no expired row in any mailbox.
          const expired = w.reader.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM messages WHERE expires_at <= ?');
          expect(expired.get(w.now)?.n, 'expired rows after the final sweep').toBe(0);
          for (const d of ALL) {
            const seqs = (await w.storage.fetchMessages(d, 0, 1000, 0)).map((m) => m.seq);
            if ((await w.storage.ackMessages(d, seqs)) > 0) outcomes.acked++;
          }
          await expectExact(w, 'drained');
          expect(inMemory(w.storage)).toEqual([]);
          expect(await w.storage.stats()).toMatchObject({ queuedMessages: 0, queuedBytes: 0 });
          // The rows are the truth: opened again, the counters are rebuilt to the same values.
          const kept = inMemory(w.storage);
          open = false;
          await w.storage.close();
          const again = new SqliteStorage({ path: join(dir, 'relay.sqlite') });
          expect(inMemory(again)).toEqual(kept);
          expectNewest(again, w.reader, w.now, 'reopened');
          expectExpiryBounds(again, w.reader, 'reopened');
          await again.close();
        } finally {
          w.reader.close();
          if (open) await w.storage.close();
        }
      }),
      // No shrinking: each run opens a database on disk; the failing step is in the message.
      { numRuns: 20, endOnFailure: true },
    );
    // The runs went through every kind of path, else the property proves little.
    expect(outcomes.stored).toBeGreaterThan(20);
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.aborted).toBeGreaterThan(5);
    expect(outcomes.failed).toBeGreaterThan(0);
    expect(outcomes.acked).toBeGreaterThan(0);
    expect(outcomes.swept).toBeGreaterThan(0);
    expect(outcomes.purging).toBeGreaterThan(0);
    // The start of every run, and some random reopens.
    expect(outcomes.reopenedMidPurge).toBeGreaterThanOrEqual(20);
    // Memory answered, not only SQL: the newest seqs were kept between steps.
    expect(outcomes.newestKept).toBeGreaterThan(10);
  }, 60_000);

  it('are rebuilt exactly after a kill -9 mid-load, and the mailbox limit counts what is there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-counters-kill-'));
    dirs.push(dir);
    const path = join(dir, 'relay.sqlite');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/counters-load.ts', import.meta.url)), path],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the load never got going: ${out}`)), 20_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('loaded')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.on('exit', (code) => reject(new Error(`the load exited (${code}): ${out}`)));
    });
    // Mid-commit or between commits, wherever it is: no shutdown, no write-back of anything.
    await new Promise((r) => setTimeout(r, 150));
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await exited;

    const storage = new SqliteStorage({ path });
    const reader = new Database(path, { readonly: true });
    try {
      const rows = recount(reader);
      expect(rows.length).toBeGreaterThan(0);
      expect(inMemory(storage)).toEqual(rows);
      // Live push's previous seq after the kill: memory starts empty, every answer is SQL's.
      const mailboxes = rows.map((r) => ({ accountKey: Buffer.from(r.recipient, 'hex'), deviceId: r.deviceId }));
      expectNewest(storage, reader, 1000, 'after kill -9', mailboxes);
      expect(storage.newest.size).toBe(0);

      // The limits read the rebuilt counters: a mailbox at its limit refuses, one more slot stores.
      const sender: DeviceAddress = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };
      const mailbox: DeviceAddress = { accountKey: new Uint8Array(32).fill(2), deviceId: 1 };
      const queued = rows.filter((r) => r.recipient === hex(mailbox.accountKey) && r.deviceId === 1).reduce((n, r) => n + r.messages, 0);
      expect(queued).toBeGreaterThan(0);
      const send = (clientId: string, maxQueuedMessages: number) =>
        storage.storeMessages({
          sender,
          envelopes: [1, 2].map((deviceId) => ({ recipient: { ...mailbox, deviceId }, clientId, envelope: Uint8Array.of(1) })),
          now: 1000,
          expiresAt: 2_000_000,
          maxQueuedMessages,
          maxQueuedBytes: 1 << 30,
        });
      // `now` is before every expiry the load wrote, so nothing is purged: the count is exactly what is queued.
      const otherQueued = rows
        .filter((r) => r.recipient === hex(mailbox.accountKey) && r.deviceId === 2)
        .reduce((n, r) => n + r.messages, 0);
      const limit = Math.max(queued, otherQueued);
      expect((await send('at-limit', limit)).status).toBe('mailbox-full');
      expect((await send('one-more', limit + 1)).status).toBe('stored');
      expect(inMemory(storage)).toEqual(recount(reader));
      // The stored rows filled memory again, and it still answers what SQL answers.
      expect(storage.newest.size).toBeGreaterThan(0);
      expectNewest(storage, reader, 1000, 'after a send', mailboxes);
    } finally {
      reader.close();
      await storage.close();
    }
  }, 40_000);
});
