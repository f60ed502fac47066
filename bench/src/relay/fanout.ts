/**
 * Group fan-out cost (issue 15): one message to a 1,000-device group, sent
 * the old way (one envelope per device, all in one send) and as one fan-out
 * upload stored once (spec/09-relay.md §4.3.1). For each: upload bytes (the
 * request body), stored bytes (database pages the message adds, read with
 * SQLite's dbstat: envelopes or payload, mailbox rows, idempotency records
 * and their indexes), and time per send (request round trip, durable commit
 * included). Medians over several messages, the two ways interleaved so both
 * see the same machine. The relay runs as its own process (relay/load.ts
 * `startRelay`, SQLite, durable commits).
 *
 *   node --import tsx bench/src/relay/fanout.ts [--devices 1000] [--envelope-bytes 1024] [--messages 7]
 *     [--postgres postgres://…] [--json]
 *
 * With --postgres the relay stores in a schema of its own in that database
 * (dropped afterwards), and stored bytes are the schema's tables with their
 * indexes and TOAST (pg_total_relation_size, 8 KiB pages).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Account, type DeviceIdentity, PreKeyStore } from '@parley/core';
import { RelayClient, deviceSigner, preKeysOf } from '@parley/client/relay-client';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { ResultMeta } from '../results.ts';
import type { Runner } from '../runner.ts';
import { percentile, startRelay } from './load.ts';

interface FanoutBenchOptions {
  /** Recipient devices (default 1000), in accounts of `devicesPerAccount`. */
  readonly devices?: number;
  /** Devices per recipient account (default 4). */
  readonly devicesPerAccount?: number;
  /** Size of the group message (default 1024 bytes). */
  readonly envelopeBytes?: number;
  /** Messages sent each way (default 7). */
  readonly messages?: number;
  /** A PostgreSQL URL: the relay stores there instead of SQLite. */
  readonly postgres?: string;
}

interface FanoutWay {
  /** Request body bytes of one send. */
  readonly uploadBytes: number;
  /** Database bytes (allocated pages) one message adds. */
  readonly storedBytes: number;
  /** Request round trip of one send, median and slowest. */
  readonly ms: { readonly median: number; readonly max: number };
}

interface FanoutBenchResult {
  readonly backend: 'SQLite' | 'PostgreSQL';
  readonly devices: number;
  readonly envelopeBytes: number;
  readonly messages: number;
  readonly perDevice: FanoutWay;
  readonly fanout: FanoutWay;
  readonly machine: { readonly cpus: number; readonly cpu: string; readonly node: string; readonly loadAverage: number };
}

interface Member {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Registers devices over HTTP, a few at a time (each registration is verified by the relay). */
async function registerAll(url: string, devices: readonly DeviceIdentity[]): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < devices.length) {
      const d = devices[next++] as DeviceIdentity;
      const client = new RelayClient({ baseUrl: url, signer: deviceSigner(d) });
      await client.registerDevice(d.certificate, preKeysOf(PreKeyStore.generate(d, { oneTimePreKeys: 0, kemPreKeys: 0 })));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

async function runFanoutBench(options: FanoutBenchOptions = {}): Promise<FanoutBenchResult> {
  const devices = options.devices ?? 1000;
  const perAccount = options.devicesPerAccount ?? 4;
  const envelopeBytes = options.envelopeBytes ?? 1024;
  const messages = options.messages ?? 7;
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-fanout-'));
  const schema = `parley_fanout_${process.pid}`;
  const { child, url } = await startRelay(
    dataDir,
    options.postgres ? { PARLEY_DATABASE_URL: options.postgres, PARLEY_DATABASE_SCHEMA: schema } : {},
  );
  const store = options.postgres ? postgresBytes(options.postgres, schema) : sqliteBytes(join(dataDir, 'relay.sqlite'));
  try {
    const sender = Account.generate().createDevice(1);
    const recipients: DeviceIdentity[] = [];
    for (let a = 0; a * perAccount < devices; a++) {
      const account = Account.generate();
      for (let i = 1; i <= perAccount && recipients.length < devices; i++) recipients.push(account.createDevice(i));
    }
    await registerAll(url, [sender, ...recipients]);
    const members: Member[] = recipients.map((d) => ({ accountKey: d.certificate.accountKey, deviceId: d.certificate.deviceId }));

    const uploads: number[] = [];
    const recording: typeof fetch = (input, init) => {
      uploads.push(init?.body ? (init.body as Uint8Array).byteLength : 0);
      return fetch(input, init);
    };
    const ways = {
      perDevice: new RelayClient({ baseUrl: url, signer: deviceSigner(sender), fetch: recording, groupFanout: false }),
      fanout: new RelayClient({ baseUrl: url, signer: deviceSigner(sender), fetch: recording }),
    };
    const dbBytes = store.bytes;
    const samples = { perDevice: [] as FanoutWay[], fanout: [] as FanoutWay[] };
    // One message each way first, unmeasured: warms both routes and the database file.
    for (let i = -1; i < messages; i++) {
      for (const way of ['perDevice', 'fanout'] as const) {
        // Distinct bytes per message (SQLite stores blobs as they are: the content does not matter).
        const envelope = Uint8Array.from({ length: envelopeBytes }, (_, k) => (k * 31 + i * 7 + (way === 'fanout' ? 1 : 0)) & 0xff);
        const id = `${way}-${i}`;
        const before = await dbBytes();
        const started = performance.now();
        await ways[way].send(members.map((m) => ({ ...m, id, envelope })));
        const ms = performance.now() - started;
        if (i >= 0)
          samples[way].push({ uploadBytes: uploads.at(-1) ?? 0, storedBytes: (await dbBytes()) - before, ms: { median: ms, max: ms } });
      }
    }
    const summary = (s: FanoutWay[]): FanoutWay => ({
      uploadBytes: median(s.map((x) => x.uploadBytes)),
      storedBytes: median(s.map((x) => x.storedBytes)),
      ms: { median: round(median(s.map((x) => x.ms.median))), max: round(Math.max(...s.map((x) => x.ms.max))) },
    });
    return {
      backend: options.postgres ? 'PostgreSQL' : 'SQLite',
      devices,
      envelopeBytes,
      messages,
      perDevice: summary(samples.perDevice),
      fanout: summary(samples.fanout),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverage: round(loadavg()[0] ?? 0, 2) },
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface StoredBytes {
  /** Bytes the relay's database holds now (its writes are committed before it answers). */
  readonly bytes: () => Promise<number>;
  readonly close: () => Promise<void>;
}

/** Allocated pages of the SQLite file, read with dbstat (through the WAL: committed data). */
function sqliteBytes(path: string): StoredBytes {
  let db: Database.Database | undefined;
  return {
    bytes: async () => {
      db ??= new Database(path, { readonly: true });
      return (db.prepare('SELECT sum(pgsize) AS n FROM dbstat').get() as { n: number }).n;
    },
    close: async () => {
      db?.close();
    },
  };
}

/** The schema's tables with their indexes and TOAST; the schema is dropped on close. */
function postgresBytes(url: string, schema: string): StoredBytes {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    bytes: async () => {
      const { rows } = await pool.query<{ n: string }>(
        `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS n FROM pg_class c
         JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relkind = 'r'`,
        [schema],
      );
      return Number(rows[0]?.n ?? 0);
    },
    close: async () => {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    },
  };
}

function formatFanoutTable(r: FanoutBenchResult): string {
  const kib = (n: number) => `${round(n / 1024)} KiB`;
  const row = (name: string, w: FanoutWay) =>
    `${name.padEnd(34)} ${kib(w.uploadBytes).padStart(12)} ${kib(w.storedBytes).padStart(12)} ${`${w.ms.median} ms`.padStart(10)} ${`${w.ms.max} ms`.padStart(10)}`;
  return [
    `one ${r.envelopeBytes}-byte group message to ${r.devices} devices (median of ${r.messages}; ${r.backend}, durable)`,
    `${''.padEnd(34)} ${'upload'.padStart(12)} ${'stored'.padStart(12)} ${'time'.padStart(10)} ${'slowest'.padStart(10)}`,
    row('one envelope per device (before)', r.perDevice),
    row('fan-out, stored once (after)', r.fanout),
    `machine: ${r.machine.cpus} x ${r.machine.cpu}, Node ${r.machine.node}, load average ${r.machine.loadAverage}`,
  ].join('\n');
}

/** The bench rows: upload bytes, stored bytes and time of one group message, each way. */
export async function measureFanout(runner: Runner): Promise<void> {
  // Quick (CI): enough devices to show the difference, few enough to register in seconds.
  const devices = runner.quick ? 50 : 1000;
  const metas = (['perDevice', 'fanout'] as const).flatMap((way) => {
    const how = way === 'perDevice' ? 'one envelope per device' : 'fan-out, stored once';
    const base = { section: 'relay' as const, subject: 'relay' as const };
    return [
      {
        ...base,
        op: `relay-group-${way}-upload`,
        label: `group message to ${devices} devices, upload bytes (${how})`,
        unit: 'count' as const,
      },
      {
        ...base,
        op: `relay-group-${way}-stored`,
        label: `group message to ${devices} devices, stored bytes (${how})`,
        unit: 'count' as const,
      },
      { ...base, op: `relay-group-${way}-time`, label: `group message to ${devices} devices, send time (${how})`, unit: 'ms' as const },
    ] satisfies ResultMeta[];
  });
  runner.progress(`relay: one 1 KiB group message to ${devices} devices, per device and as one fan-out (relay/fanout.ts)`);
  try {
    const r = await runFanoutBench({ devices, messages: runner.quick ? 2 : 7 });
    const note = `median of ${r.messages} messages, ${r.envelopeBytes} B envelope, ${r.backend} durable; load average ${r.machine.loadAverage}`;
    const once = (v: number) => ({ median: v, min: v, max: v, samples: r.messages });
    for (const way of ['perDevice', 'fanout'] as const) {
      const meta = (suffix: string) => ({ ...(metas.find((m) => m.op === `relay-group-${way}-${suffix}`) as ResultMeta), note });
      runner.recordValue(meta('upload'), once(r[way].uploadBytes));
      runner.recordValue(meta('stored'), once(r[way].storedBytes));
      runner.recordValue(meta('time'), { median: r[way].ms.median, min: r[way].ms.median, max: r[way].ms.max, samples: r.messages });
    }
  } catch (e) {
    for (const meta of metas) runner.failed(meta, e);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      devices: { type: 'string' },
      'envelope-bytes': { type: 'string' },
      messages: { type: 'string' },
      postgres: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const result = await runFanoutBench({
    ...(values.devices ? { devices: Number(values.devices) } : {}),
    ...(values['envelope-bytes'] ? { envelopeBytes: Number(values['envelope-bytes']) } : {}),
    ...(values.messages ? { messages: Number(values.messages) } : {}),
    ...(values.postgres ? { postgres: values.postgres } : {}),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatFanoutTable(result));
}
