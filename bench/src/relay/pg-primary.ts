/**
 * What one PostgreSQL primary carries for the relay, without the relay's
 * HTTP, signatures and JSON in the way (issue 15, spec/15-scale.md §3.2):
 * closed-loop workers drive `PostgresStorage` directly with the database
 * work of one HTTP send each: the signer's device row (read once, then
 * held as the relay's signer cache holds it and confirmed by the replay
 * record), the send (replay record, byte-rate take, locks, checks,
 * envelope, notify: one transaction),
 * the recipient's fetch and its acknowledgement. Run with 0 and with N
 * LISTEN connections (N relay processes), it shows the write rate and what
 * LISTEN/NOTIFY costs as processes are added.
 *
 *   PARLEY_BENCH_POSTGRES_URL=postgres://… node --import tsx bench/src/relay/pg-primary.ts \
 *     [--seconds 8] [--workers 32] [--listeners 0,3,12] [--json]
 *   … pg-primary.ts --commit-ceiling [--seconds 4] [--workers 32]: durable commits/s with and without NOTIFY
 *
 * Each run has its own schema (dropped afterwards). Loopback only; bounded
 * by --seconds per listener count.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DeviceAddress, type DeviceRecord, PostgresStorage, type StoreMessagesInput } from '@parley/relay';
import { defaultProvider } from '@parley/core';
import pg from 'pg';
import { percentile } from './load.ts';
import { committedTransactions, databaseCpuSeconds, requireBenchDatabaseUrl, round } from './postgres-measures.ts';

export interface PrimaryOptions {
  readonly databaseUrl: string;
  readonly seconds?: number;
  /** Concurrent closed-loop workers (each a sender with its own recipient device). */
  readonly workers?: number;
  /** LISTEN connections on the mailbox channel, as N relay processes would hold. */
  readonly listeners?: number;
  readonly envelopeBytes?: number;
}

export interface PrimaryResult {
  readonly listeners: number;
  readonly workers: number;
  readonly seconds: number;
  /** Envelopes sent, fetched and acknowledged per second. */
  readonly envelopesPerSecond: number;
  /** The send's transaction alone, ms (the rest of each loop excluded). */
  readonly storeMs: { readonly median: number; readonly p99: number };
  /** Notifications received per second by each listener (every send notifies every listener). */
  readonly notificationsPerSecondPerListener: number;
  /** CPU of this database's server backends per envelope, µs (the WAL writer and other databases not counted). */
  readonly backendCpuPerEnvelopeUs: number;
  /** Committed transactions per envelope (pg_stat_database). */
  readonly transactionsPerEnvelope: number;
  readonly loadAverage: number;
}

/** CPU seconds of the database's server backends (the admin connection's own excepted) and its committed transactions. */
async function serverTotals(admin: pg.Client): Promise<{ cpu: number; commits: number }> {
  return { cpu: await databaseCpuSeconds(admin), commits: await committedTransactions(admin) };
}

const LIMITS = { maxOneTimePreKeys: 100, maxKemPreKeys: 100 };

const randomBytes = (n: number): Buffer => Buffer.from(defaultProvider().random(n));

function device(accountKey: Uint8Array): DeviceRecord {
  return {
    accountKey,
    deviceId: 1,
    certificate: randomBytes(40),
    certificateHash: randomBytes(32),
    signingKey: randomBytes(32),
    registeredAt: Date.now(),
  };
}

export async function runPrimary(options: PrimaryOptions): Promise<PrimaryResult> {
  const seconds = options.seconds ?? 8;
  const workers = options.workers ?? 32;
  const listenerCount = options.listeners ?? 0;
  const envelope = randomBytes(options.envelopeBytes ?? 1024);
  const schema = `parley_primary_${randomBytes(5).toString('hex')}`;
  // One pool connection per worker: the database, not the pool, is what is measured.
  const storage = await PostgresStorage.open({ connectionString: options.databaseUrl, schema, poolSize: workers + 2 });
  const admin = new pg.Client({ connectionString: options.databaseUrl });
  await admin.connect();
  const listeners: pg.Client[] = [];
  try {
    const pairs: { sender: DeviceAddress; recipient: DeviceAddress }[] = [];
    for (let w = 0; w < workers; w++) {
      const sender = device(randomBytes(32));
      const recipient = device(randomBytes(32));
      for (const d of [sender, recipient]) {
        await storage.registerDevice({
          device: d,
          keys: { signedPreKey: { id: 1, encoded: randomBytes(64) }, lastResortKemPreKey: { id: 1, encoded: randomBytes(64) } },
          maxDevicesPerAccount: 8,
          preKeyLimits: LIMITS,
        });
      }
      pairs.push({ sender, recipient });
    }
    let notifications = 0;
    for (let l = 0; l < listenerCount; l++) {
      const c = new pg.Client({ connectionString: options.databaseUrl });
      await c.connect();
      c.on('notification', () => notifications++);
      await c.query(`LISTEN parley_mailbox_${schema}`);
      listeners.push(c);
    }

    const storeMs: number[] = [];
    let envelopes = 0;
    let next = 0;
    const before = await serverTotals(admin);
    const start = performance.now();
    const end = start + seconds * 1000;
    await Promise.all(
      pairs.map(async ({ sender, recipient }, w) => {
        while (performance.now() < end) {
          const now = Date.now();
          const id = `p-${next++}`;
          // What an HTTP send asks of the database: its signer's row (unless the process holds it,
          // auth/authenticate.ts), then the send, whose replay record confirms a held signer.
          const held = storage.cachedDevice(sender);
          if (!held) await storage.getDevice(sender);
          const input: StoreMessagesInput = {
            sender,
            envelopes: [{ recipient, clientId: id, envelope }],
            now,
            expiresAt: now + 86_400_000,
            maxQueuedMessages: 10_000,
            maxQueuedBytes: 64 * 1024 * 1024,
            replay: {
              signer: sender,
              nonce: randomBytes(16),
              now,
              expiresAt: now + 600_000,
              maxPerSigner: 1_000_000,
              ...(held ? { signerCertificateHash: held.certificateHash } : {}),
            },
            rates: { limit: { capacity: 1e12, windowMs: 60_000 }, takes: [{ key: `rate:bench:${w}`, amount: envelope.length }] },
          };
          const t0 = performance.now();
          const r = await storage.storeMessages(input);
          storeMs.push(performance.now() - t0);
          if (r.status !== 'stored') throw new Error(`send refused: ${r.status}`);
          // The recipient's websocket: one fetch, one acknowledgement.
          const page = await storage.fetchMessages(recipient, 0, 64, now);
          await storage.ackMessages(
            recipient,
            page.map((m) => m.seq),
          );
          envelopes++;
        }
      }),
    );
    const elapsed = (performance.now() - start) / 1000;
    const after = await serverTotals(admin);
    storeMs.sort((a, b) => a - b);
    return {
      listeners: listenerCount,
      workers,
      seconds: round(elapsed),
      envelopesPerSecond: Math.round(envelopes / elapsed),
      storeMs: { median: round(percentile(storeMs, 50)), p99: round(percentile(storeMs, 99)) },
      notificationsPerSecondPerListener: listenerCount ? Math.round(notifications / listenerCount / elapsed) : 0,
      backendCpuPerEnvelopeUs: Math.round(((after.cpu - before.cpu) * 1e6) / Math.max(1, envelopes)),
      transactionsPerEnvelope: round((after.commits - before.commits) / Math.max(1, envelopes), 2),
      loadAverage: round(loadavg()[0] ?? Number.NaN, 2),
    };
  } finally {
    for (const c of listeners) await c.end().catch(() => {});
    await storage.close();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

export interface CommitCeiling {
  readonly clients: number;
  readonly seconds: number;
  /** Durable one-row commits per second, without and with a pg_notify in each. */
  readonly commitsPerSecond: number;
  readonly notifyingCommitsPerSecond: number;
  /** The same, with each pg_notify in a transaction of its own after the durable commit, not flushed (the relay's way). */
  readonly notifyAfterCommitPerSecond: number;
  readonly loadAverage: number;
}

/**
 * The commit ceiling with and without NOTIFY: `clients` connections commit
 * one small durable row each as fast as they can, then the same with a
 * pg_notify in each transaction (one LISTEN connection attached). A
 * notifying commit holds a database-wide lock from before its commit until
 * it ends, so those commits cannot share a WAL flush: the gap between the
 * two figures is what NOTIFY costs the primary's write rate.
 */
export async function runCommitCeiling(databaseUrl: string, seconds = 4, clients = 32): Promise<CommitCeiling> {
  const schema = `parley_ceiling_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.rows (id bigint GENERATED ALWAYS AS IDENTITY, v bytea)`);
  const listener = new pg.Client({ connectionString: databaseUrl });
  await listener.connect();
  await listener.query(`LISTEN ${schema}`);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: clients, options: '-c synchronous_commit=on' });
  const phase = async (notify: 'none' | 'inside' | 'after'): Promise<number> => {
    let commits = 0;
    const end = performance.now() + seconds * 1000;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        const c = await pool.connect();
        try {
          while (performance.now() < end) {
            await c.query('BEGIN');
            await c.query(`INSERT INTO ${schema}.rows (v) VALUES ($1)`, [randomBytes(64)]);
            if (notify === 'inside') await c.query('SELECT pg_notify($1, $2)', [schema, 'x']);
            await c.query('COMMIT');
            if (notify === 'after') {
              await c.query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)", [schema, 'x']);
            }
            commits++;
          }
        } finally {
          c.release();
        }
      }),
    );
    return Math.round(commits / ((performance.now() - start) / 1000));
  };
  try {
    const commitsPerSecond = await phase('none');
    const notifyingCommitsPerSecond = await phase('inside');
    const notifyAfterCommitPerSecond = await phase('after');
    return {
      clients,
      seconds,
      commitsPerSecond,
      notifyingCommitsPerSecond,
      notifyAfterCommitPerSecond,
      loadAverage: round(loadavg()[0] ?? Number.NaN, 2),
    };
  } finally {
    await pool.end();
    await listener.end();
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    await admin.end();
  }
}

export function formatPrimary(r: PrimaryResult): string {
  return [
    `${r.listeners} listeners, ${r.workers} workers, ${r.seconds} s:`,
    `${r.envelopesPerSecond} envelopes/s sent, fetched and acknowledged;`,
    `send transaction median ${r.storeMs.median} ms, p99 ${r.storeMs.p99} ms;`,
    `${r.notificationsPerSecondPerListener} notifications/s per listener;`,
    `backends ${r.backendCpuPerEnvelopeUs} µs CPU and ${r.transactionsPerEnvelope} transactions per envelope;`,
    `load average ${r.loadAverage}`,
  ].join(' ');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      workers: { type: 'string' },
      listeners: { type: 'string' },
      'commit-ceiling': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const databaseUrl = requireBenchDatabaseUrl();
  if (values['commit-ceiling']) {
    const c = await runCommitCeiling(
      databaseUrl,
      values.seconds ? Number(values.seconds) : 4,
      values.workers ? Number(values.workers) : 32,
    );
    console.log(
      values.json
        ? JSON.stringify(c, null, 2)
        : `${c.clients} clients, ${c.seconds} s each: ${c.commitsPerSecond} durable commits/s without NOTIFY, ${c.notifyingCommitsPerSecond} with NOTIFY inside, ${c.notifyAfterCommitPerSecond} with NOTIFY after the commit (not flushed); load average ${c.loadAverage}`,
    );
    process.exit(0);
  }
  const results: PrimaryResult[] = [];
  for (const listeners of (values.listeners ?? '0,3,12').split(',').map(Number)) {
    const r = await runPrimary({
      databaseUrl,
      listeners,
      ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
      ...(values.workers ? { workers: Number(values.workers) } : {}),
    });
    results.push(r);
    if (!values.json) console.log(formatPrimary(r));
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
}
