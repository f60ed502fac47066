/**
 * Several relay processes on one PostgreSQL database, under load, with one
 * of them killed (SIGKILL) half-way through. Issue 15 ("3 relay processes,
 * clients spread across them, under load: throughput, delivery p99, and 0
 * acknowledged envelopes lost or duplicated across kill -9").
 *
 *   PARLEY_BENCH_POSTGRES_URL=postgres://… node --import tsx bench/src/relay/multi-process.ts \
 *     [--seconds 10] [--processes 3] [--senders 48] [--recipients 12] [--mode http|ws] [--batch 8] [--json]
 *
 * Each relay is `npm start`'s entry point (relay/load.ts `startRelay`) with
 * PARLEY_DATABASE_URL and a fresh schema (dropped afterwards). Recipients
 * hold a websocket on process i mod N; closed-loop senders (real signed
 * HTTP sends of 1 KiB) are spread the same way, so most envelopes cross
 * processes through LISTEN/NOTIFY. `--mode ws` sends over each sender
 * device's authenticated websocket instead (spec/09-relay.md §5.4, the
 * relay's fast path): binary send frames of `--batch` envelopes, two
 * closed-loop lanes per device, as load.ts's ws mode (ws-sender.ts).
 * At half time the last process is killed:
 * its senders retry their unanswered send (same id) on a live process and
 * its recipients reconnect to one. At the end every acknowledged envelope
 * must have been delivered (lost = 0) and no envelope id may arrive under
 * two seqs (stored twice = 0); a seq delivered again after a reconnect is
 * at-least-once delivery and counted apart.
 *
 * Needs a PostgreSQL server (PARLEY_BENCH_POSTGRES_URL, else
 * PARLEY_TEST_POSTGRES_URL); loopback only; bounded by --seconds plus a
 * drain of at most 20 s.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultProvider } from '@parley/core';
import { RelayClient, type RelayError, deviceSigner } from '@parley/client/relay-client';
import pg from 'pg';
import WebSocket from 'ws';
import { type Participant, participants, percentile, startRelay } from './load.ts';
import { WsSender } from './ws-sender.ts';
import {
  committedTransactions,
  cpuSeconds,
  databaseCpuSeconds,
  postgresCpuSeconds,
  requireBenchDatabaseUrl,
  round,
  withConnection,
} from './postgres-measures.ts';

export interface MultiProcessOptions {
  readonly databaseUrl: string;
  /** Seconds of sustained sending (default 10); the kill comes at half time. */
  readonly seconds?: number;
  /** Relay processes on the one database (default 3). */
  readonly processes?: number;
  /** Concurrent closed-loop senders, spread over the processes (default 48). */
  readonly senders?: number;
  /**
   * Recipient devices on websockets, spread over the processes (default 12). A send locks its
   * recipients' device rows until it commits (spec/09-relay.md §7.3), so with few recipients the
   * senders queue on those locks: the lock wait, not CPU, then sets the rate.
   */
  readonly recipients?: number;
  readonly envelopeBytes?: number;
  /** Kill one process half-way (default true). */
  readonly kill?: boolean;
  /** Signed HTTP sends of one envelope (default), or send frames on each sender's authenticated websocket. */
  readonly mode?: 'http' | 'ws';
  /** Envelopes per websocket send frame (ws mode; default 8, as load.ts). */
  readonly batch?: number;
  /** Extra node arguments for each relay process (e.g. --cpu-prof). */
  readonly relayNodeArgs?: readonly string[];
}

export interface MultiProcessResult {
  readonly mode: 'http' | 'ws';
  /** Envelopes per send (1 over HTTP). */
  readonly batch: number;
  readonly processes: number;
  readonly seconds: number;
  readonly senders: number;
  readonly recipients: number;
  readonly envelopeBytes: number;
  /** Envelopes acknowledged (HTTP 200: committed in PostgreSQL) per second, all processes together. */
  readonly envelopesPerSecond: number;
  readonly acknowledged: number;
  /** Per second before the kill, with every process up. */
  readonly envelopesPerSecondBeforeKill: number;
  /** Send start to websocket delivery, ms: before the kill, and over the whole run. */
  readonly deliveryMs: {
    readonly median: number;
    readonly p99: number;
    readonly p99WholeRun: number;
    readonly samples: number;
  };
  readonly killed: boolean;
  /** Sends (HTTP requests or send frames) left unanswered by the killed process and retried (same ids) on a live one. */
  readonly failedOver: number;
  /** Acknowledged envelopes never delivered. Must be 0. */
  readonly lost: number;
  /** Envelope ids delivered under two different seqs (stored twice). Must be 0. */
  readonly storedTwice: number;
  /** Same seq delivered again after a reconnect (at-least-once delivery, not a loss or a duplicate store). */
  readonly redelivered: number;
  /** Sends refused with an error answer (not a dead process). */
  readonly errors: number;
  /** CPU seconds of each relay process that survived (the PostgreSQL server's own CPU is not counted). */
  readonly relayCpuSeconds: readonly number[];
  /**
   * CPU per acknowledged envelope with every process up, µs: the relays
   * together, every PostgreSQL process on the machine (other databases'
   * work included), the server backends of the bench's own database only,
   * and this load generator (signing, sending, receiving).
   */
  readonly cpuPerEnvelopeUs: {
    readonly relays: number;
    readonly postgres: number;
    readonly postgresDatabase: number;
    readonly loadGenerator: number;
  };
  /** Committed transactions in the bench's database per acknowledged envelope (pg_stat_database), all processes up. */
  readonly transactionsPerEnvelope: number;
  readonly loadAverage: number;
}

/** The database's backends' CPU (the relays' pools and LISTEN connections) and its commits, each on a fresh connection. */
const databaseCpu = (url: string) => withConnection(url, databaseCpuSeconds);
const commits = (url: string) => withConnection(url, committedTransactions);

const isNetworkError = (e: unknown) => (e as RelayError | undefined)?.code === 'NETWORK';

export async function runMultiProcess(options: MultiProcessOptions): Promise<MultiProcessResult> {
  const seconds = options.seconds ?? 10;
  const n = options.processes ?? 3;
  const concurrency = options.senders ?? 48;
  const envelopeBytes = options.envelopeBytes ?? 1024;
  const kill = options.kill ?? true;
  const mode = options.mode ?? 'http';
  const batch = mode === 'ws' ? (options.batch ?? 8) : 1;
  const nodeArgs = options.relayNodeArgs ?? [];
  const schema = `parley_bench_${Buffer.from(defaultProvider().random(5)).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-mp-bench-'));
  const env = { PARLEY_DATABASE_URL: options.databaseUrl, PARLEY_DATABASE_SCHEMA: schema };
  const relays: { child: ChildProcess; url: string }[] = [];
  const receivers: { stop(): void }[] = [];
  try {
    // The first creates and migrates the schema; the rest open it.
    relays.push(await startRelay(dataDir, env, nodeArgs));
    const rest = await Promise.allSettled(Array.from({ length: n - 1 }, () => startRelay(dataDir, env, nodeArgs)));
    // Every one that started is stopped in `finally`, even when another did not start.
    for (const r of rest) if (r.status === 'fulfilled') relays.push(r.value);
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const live = new Set(relays.map((_, i) => i));
    const first = relays[0] as { url: string };

    const senders = await participants(first.url, Math.ceil(concurrency / 2));
    const recipients = await participants(first.url, options.recipients ?? 12);
    const clientOn = (i: number, p: Participant) =>
      new RelayClient({
        baseUrl: (relays[i] as { url: string }).url,
        signer: deviceSigner(p.device),
        WebSocket: WebSocket as never,
        retries: 0,
      });

    // Deliveries: id -> seqs seen, and the send→deliver latency of the first delivery.
    const sentAt = new Map<string, number>();
    const seqsOf = new Map<string, Set<number>>();
    let redelivered = 0;
    const latencies: { at: number; ms: number }[] = [];
    const onEnvelope = (e: { id: string; seq: number }) => {
      let seqs = seqsOf.get(e.id);
      if (!seqs) {
        seqs = new Set();
        seqsOf.set(e.id, seqs);
        const t0 = sentAt.get(e.id);
        if (t0 !== undefined) latencies.push({ at: t0, ms: performance.now() - t0 });
      } else if (seqs.has(e.seq)) redelivered++;
      seqs.add(e.seq);
    };
    const listen = (i: number, p: Participant) => {
      const r = clientOn(i, p).connect({ onEnvelope }, { baseDelayMs: 50, maxDelayMs: 500 });
      receivers.push(r);
      return r.start();
    };
    const onProcess = recipients.map((_, r) => r % n);
    const receiving = recipients.map((p, r) => listen(onProcess[r] as number, p));
    await Promise.all(receiving.map((r) => r.whenOpen()));

    const payload = defaultProvider().random(envelopeBytes);
    const acknowledged: string[] = [];
    let failedOver = 0;
    let errors = 0;
    let next = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    const killAt = start + (seconds * 1000) / 2;
    let killedAt: number | null = null;
    let acknowledgedAtKill = 0;
    const victim = n - 1;

    // CPU over the window with every process up: what one envelope costs, whatever else the machine runs.
    const relayCpu = () => relays.reduce((sum, r) => sum + cpuSeconds(r.child.pid), 0);
    const cpuAtStart = { relays: relayCpu(), postgres: postgresCpuSeconds(), load: process.cpuUsage() };
    const commitsAtStart = await commits(options.databaseUrl);
    const databaseCpuAtStart = await databaseCpu(options.databaseUrl);
    let databaseCpuAtKill: number | null = null;
    let cpuBeforeKill: { relays: number; postgres: number; load: NodeJS.CpuUsage } | null = null;
    let commitsAtKill: number | null = null;
    const killOne = async () => {
      if (!kill || killedAt !== null) return;
      cpuBeforeKill = { relays: relayCpu(), postgres: postgresCpuSeconds(), load: process.cpuUsage(cpuAtStart.load) };
      commitsAtKill = await commits(options.databaseUrl);
      databaseCpuAtKill = await databaseCpu(options.databaseUrl);
      killedAt = performance.now();
      acknowledgedAtKill = acknowledged.length;
      live.delete(victim);
      (relays[victim] as { child: ChildProcess }).child.kill('SIGKILL');
      // Its recipients reconnect to a live process (a load balancer would send them there).
      recipients.forEach((p, r) => {
        if (onProcess[r] !== victim) return;
        (receiving[r] as { stop(): void }).stop();
        onProcess[r] = r % (n - 1);
        receiving[r] = listen(onProcess[r] as number, p);
      });
    };
    const killTimer = setTimeout(() => void killOne(), killAt - performance.now());

    const nextElements = () =>
      Array.from({ length: batch }, () => {
        const k = next++;
        const to = recipients[k % recipients.length] as Participant;
        const id = `mp-${k}`;
        sentAt.set(id, performance.now());
        return { accountKey: to.account.publicKey, deviceId: 1, id, envelope: payload };
      });

    // HTTP: each worker a closed loop of signed one-envelope sends.
    const httpWorker = async (w: number) => {
      const sender = senders[w % senders.length] as Participant;
      let via = w % n;
      let client = clientOn(via, sender);
      while (performance.now() < end) {
        const out = nextElements();
        for (;;) {
          try {
            await client.send(out);
            acknowledged.push(...out.map((e) => e.id));
            break;
          } catch (e) {
            if (!isNetworkError(e) || live.has(via)) {
              errors++;
              break;
            }
            // The process died with the send unanswered: the same id again, on a live one.
            failedOver++;
            via = [...live][w % live.size] as number;
            client = clientOn(via, sender);
          }
        }
      }
    };

    // ws: one authenticated socket per sender device (the relay keeps one per device), two lanes on it.
    const sockets = new Map<number, { via: number; sender: Promise<WsSender> }>();
    const socketOf = (s: number) => {
      let socket = sockets.get(s);
      if (!socket) {
        const via = s % n;
        socket = { via, sender: WsSender.open((relays[via] as { url: string }).url, (senders[s] as Participant).device) };
        sockets.set(s, socket);
      }
      return socket;
    };
    const wsWorker = async (w: number) => {
      const s = w % senders.length;
      while (performance.now() < end) {
        const out = nextElements();
        for (;;) {
          const socket = socketOf(s);
          const result = await socket.sender.then(
            (sender) => sender.send(out),
            (e: Error) => ({ error: { code: 'CLOSED', message: e.message } }),
          );
          if ('accepted' in result) {
            acknowledged.push(...out.map((e) => e.id));
            break;
          }
          if (result.error.code !== 'CLOSED' || live.has(socket.via)) {
            errors++;
            break;
          }
          // The process died with the frame unanswered: the same ids again, on a live one (the other lane reuses the new socket).
          failedOver++;
          if (sockets.get(s) === socket) {
            const via = [...live][s % live.size] as number;
            sockets.set(s, { via, sender: WsSender.open((relays[via] as { url: string }).url, (senders[s] as Participant).device) });
          }
        }
      }
    };
    if (mode === 'ws') await Promise.all(senders.map((_, s) => socketOf(s).sender));
    const worker = mode === 'ws' ? wsWorker : httpWorker;
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
    clearTimeout(killTimer);
    const elapsed = (performance.now() - start) / 1000;
    const window = cpuBeforeKill ?? { relays: relayCpu(), postgres: postgresCpuSeconds(), load: process.cpuUsage(cpuAtStart.load) };
    const windowAcks = killedAt === null ? acknowledged.length : acknowledgedAtKill;
    const commitsInWindow = (commitsAtKill ?? (await commits(options.databaseUrl))) - commitsAtStart;
    const transactionsPerEnvelope = round(commitsInWindow / Math.max(1, windowAcks), 2);
    const perEnvelopeUs = (cpu: number) => Math.round((cpu * 1e6) / Math.max(1, windowAcks));
    const cpuPerEnvelopeUs = {
      relays: perEnvelopeUs(window.relays - cpuAtStart.relays),
      postgres: perEnvelopeUs(window.postgres - cpuAtStart.postgres),
      postgresDatabase: perEnvelopeUs((databaseCpuAtKill ?? (await databaseCpu(options.databaseUrl))) - databaseCpuAtStart),
      loadGenerator: perEnvelopeUs((window.load.user + window.load.system) / 1e6),
    };

    // Drain: every acknowledged envelope delivered, or 20 s.
    const deadline = Date.now() + 20_000;
    while (acknowledged.some((id) => !seqsOf.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const relayCpuSeconds = [...live].map((i) => round(cpuSeconds(relays[i]?.child.pid), 2));
    for (const r of receivers) r.stop();
    for (const socket of sockets.values()) socket.sender.then((sender) => sender.close()).catch(() => {});

    const lost = acknowledged.filter((id) => !seqsOf.has(id)).length;
    const storedTwice = [...seqsOf.values()].filter((s) => s.size > 1).length;
    const steady = latencies
      .filter((l) => killedAt === null || l.at < killedAt - 500)
      .map((l) => l.ms)
      .sort((a, b) => a - b);
    const all = latencies.map((l) => l.ms).sort((a, b) => a - b);
    const beforeKillSeconds = ((killedAt ?? performance.now()) - start) / 1000;
    return {
      mode,
      batch,
      processes: n,
      seconds: round(elapsed),
      senders: concurrency,
      recipients: recipients.length,
      envelopeBytes,
      envelopesPerSecond: Math.round(acknowledged.length / elapsed),
      acknowledged: acknowledged.length,
      envelopesPerSecondBeforeKill: Math.round((killedAt === null ? acknowledged.length : acknowledgedAtKill) / beforeKillSeconds),
      deliveryMs: {
        median: round(percentile(steady, 50)),
        p99: round(percentile(steady, 99)),
        p99WholeRun: round(percentile(all, 99)),
        samples: steady.length,
      },
      killed: killedAt !== null,
      failedOver,
      lost,
      storedTwice,
      redelivered,
      errors,
      relayCpuSeconds,
      cpuPerEnvelopeUs,
      transactionsPerEnvelope,
      loadAverage: round(loadavg()[0] ?? Number.NaN, 2),
    };
  } finally {
    for (const r of receivers) r.stop();
    await Promise.all(
      relays.map(
        (r) =>
          new Promise((resolve) => {
            if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve(undefined);
            r.child.once('exit', resolve);
            r.child.kill('SIGTERM');
          }),
      ),
    );
    rmSync(dataDir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: options.databaseUrl });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}

export function formatMultiProcess(r: MultiProcessResult): string {
  const rows: [string, string][] = [
    [
      'mode',
      `${r.mode === 'ws' ? `websocket send frames of ${r.batch} envelopes` : 'signed HTTP sends of 1 envelope'}; ${r.senders} senders, ${r.recipients} recipients`,
    ],
    [
      'envelopes acknowledged per second',
      `${r.envelopesPerSecond} over the run (${r.acknowledged} in ${r.seconds} s), ${r.envelopesPerSecondBeforeKill} with all ${r.processes} processes up`,
    ],
    [
      'send -> websocket delivery',
      `median ${r.deliveryMs.median} ms, p99 ${r.deliveryMs.p99} ms before the kill (${r.deliveryMs.samples} samples); p99 ${r.deliveryMs.p99WholeRun} ms over the whole run`,
    ],
    [
      'kill -9',
      r.killed
        ? `one process killed at half time; ${r.failedOver} unanswered ${r.mode === 'ws' ? 'frames' : 'sends'} retried elsewhere; lost ${r.lost}, stored twice ${r.storedTwice}, redelivered ${r.redelivered}`
        : 'no kill',
    ],
    ['errors', String(r.errors)],
    [
      'CPU per envelope, all up',
      `relays ${r.cpuPerEnvelopeUs.relays} µs, PostgreSQL ${r.cpuPerEnvelopeUs.postgresDatabase} µs (this database's backends; ${r.cpuPerEnvelopeUs.postgres} µs server-wide), load generator ${r.cpuPerEnvelopeUs.loadGenerator} µs`,
    ],
    ['PostgreSQL transactions per envelope', String(r.transactionsPerEnvelope)],
    ['relay CPU (survivors, whole life)', `${r.relayCpuSeconds.join(' s, ')} s`],
    ['load average at the end', String(r.loadAverage)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string' },
      processes: { type: 'string' },
      senders: { type: 'string' },
      recipients: { type: 'string' },
      'no-kill': { type: 'boolean' },
      mode: { type: 'string' },
      batch: { type: 'string' },
      'relay-cpu-prof': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const databaseUrl = requireBenchDatabaseUrl();
  const result = await runMultiProcess({
    databaseUrl,
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
    ...(values.processes ? { processes: Number(values.processes) } : {}),
    ...(values.senders ? { senders: Number(values.senders) } : {}),
    ...(values.recipients ? { recipients: Number(values.recipients) } : {}),
    kill: !values['no-kill'],
    ...(values.mode ? { mode: values.mode === 'ws' ? 'ws' : 'http' } : {}),
    ...(values.batch ? { batch: Number(values.batch) } : {}),
    // A .cpuprofile per relay process in this directory, written when it ends (the killed one writes none).
    ...(values['relay-cpu-prof'] ? { relayNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${values['relay-cpu-prof']}`] } : {}),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatMultiProcess(result));
  process.exit(result.lost === 0 && result.storedTwice === 0 ? 0 : 1);
}
