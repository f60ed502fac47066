/**
 * Relay load test on loopback: envelopes accepted per second (1 KiB
 * envelopes, many concurrent senders, real HTTP) and send-to-websocket
 * delivery latency. The relay runs as its own process (`src/main.ts`, as
 * `npm start` runs it, with a fresh data folder and durable commits), so the
 * load generator does not share its event loop.
 *
 *   node --import tsx bench/src/relay/load.ts [--duration 10] [--connections 64] [--json]
 *
 * bench/src/relay.ts calls `runRelayLoad(options)`; relay/attack.ts reuses
 * `startRelay` and `participants`. (It lives in bench/, not in the relay
 * package: it drives the relay through the client, which the relay must not
 * import.)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Account, type DeviceIdentity, PreKeyStore, defaultProvider, utf8 } from '@parley/core';
import { RelayClient, authorizationHeader, deviceSigner, preKeysOf, toBase64Url } from '@parley/client/relay-client';
import WebSocket from 'ws';

export interface RelayLoadOptions {
  /** Seconds of sustained sending for the throughput figure (default 10). */
  readonly durationSeconds?: number;
  /** Concurrent HTTP connections, each sending one envelope per request (default 64). */
  readonly connections?: number;
  /** Distinct sender devices the requests are spread over (default 32). */
  readonly senders?: number;
  /** Recipient devices for the throughput phase (default 16). */
  readonly recipients?: number;
  /** Envelope size in bytes (default 1024). */
  readonly envelopeBytes?: number;
  /** Envelopes timed from send to websocket delivery (default 2000). */
  readonly latencySamples?: number;
  /** Concurrent closed-loop senders during the latency phase (default 8). */
  readonly latencySenders?: number;
}

export interface RelayLoadResult {
  readonly envelopeBytes: number;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Envelopes accepted (HTTP 200: committed to disk) per second. */
  readonly envelopesPerSecond: number;
  readonly accepted: number;
  readonly errors: number;
  /** Send request latency under full load (autocannon), ms. */
  readonly sendLatencyMs: { readonly median: number; readonly p99: number };
  /** From the start of a send to the recipient's websocket receiving it, at moderate load, ms. */
  readonly deliveryLatencyMs: { readonly median: number; readonly p99: number; readonly samples: number };
  /** From the relay's own metrics over the whole run: group commits and CPU. */
  readonly relay: {
    readonly commits: number;
    readonly meanWritesPerCommit: number;
    readonly meanCommitMs: number;
    readonly cpuSeconds: number;
  };
  /** 1-minute load average when the run ended: other work on the machine skews every figure. */
  readonly loadAverage: number;
  readonly machine: { readonly cpus: number; readonly cpu: string; readonly node: string };
}

interface AutocannonResult {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  latency: { p50: number; p99: number };
}
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;
// autocannon ships no types; this is the part of its API used here.
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const MAIN = fileURLToPath(new URL('../../../packages/relay/src/main.ts', import.meta.url));

export interface Participant {
  readonly account: Account;
  readonly device: DeviceIdentity;
  readonly client: RelayClient;
}

/** Extra PARLEY_* variables for the relay process (each wins over the load defaults below). */
export type RelayEnv = Readonly<Record<string, string>>;

/** Starts `npm start`'s relay as a child process on a free loopback port; resolves once it listens. */
export async function startRelay(dataDir: string, extraEnv: RelayEnv = {}): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
    env: {
      ...process.env,
      PARLEY_LOG_LEVEL: 'info',
      // One IP (loopback) sends everything here: lift the per-IP and per-recipient limits.
      PARLEY_REQUESTS_PER_MINUTE_PER_IP: '1000000000',
      PARLEY_MESSAGE_BYTES_PER_MINUTE_PER_RECIPIENT: String(2 ** 40),
      PARLEY_MAX_QUEUED_MESSAGES_PER_DEVICE: '10000000',
      PARLEY_MAX_QUEUED_BYTES_PER_DEVICE: String(2 ** 40),
      // Every simulated user shares the one loopback address: room for autocannon's connections.
      PARLEY_MAX_CONNECTIONS_PER_ADDRESS: '4096',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      // Not left running behind a failed start (the caller never gets its handle).
      child.kill('SIGKILL');
      reject(new Error(`relay did not start:\n${out}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve({ child, url: m[1] as string });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('exit', (code) => reject(new Error(`relay exited (${code}):\n${out}`)));
  });
}

export async function participants(url: string, n: number): Promise<Participant[]> {
  const out: Participant[] = [];
  for (let i = 0; i < n; i++) {
    const account = Account.generate();
    const device = account.createDevice(1);
    const client = new RelayClient({ baseUrl: url, signer: deviceSigner(device), WebSocket: WebSocket as never });
    await client.registerDevice(device.certificate, preKeysOf(PreKeyStore.generate(device, { oneTimePreKeys: 0, kemPreKeys: 0 })));
    out.push({ account, device, client });
  }
  return out;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Runs both phases against a fresh relay process and returns the figures. */
export async function runRelayLoad(options: RelayLoadOptions = {}): Promise<RelayLoadResult> {
  const durationSeconds = options.durationSeconds ?? 10;
  const connections = options.connections ?? 64;
  const envelopeBytes = options.envelopeBytes ?? 1024;
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-load-'));
  const relay = await startRelay(dataDir);
  try {
    const provider = defaultProvider();
    const senders = await participants(relay.url, options.senders ?? 32);
    const recipients = await participants(relay.url, options.recipients ?? 16);
    const host = new URL(relay.url).host;
    const envelope = toBase64Url(provider.random(envelopeBytes));
    let counter = 0;

    // ---- phase 1: throughput (each request: one signed 1 KiB envelope, a fresh id)
    const run = await autocannon({
      url: relay.url,
      connections,
      duration: durationSeconds,
      requests: [
        {
          method: 'POST',
          path: '/v1/messages',
          setupRequest: (request: Record<string, unknown>) => {
            const n = counter++;
            const sender = senders[n % senders.length] as Participant;
            const recipient = recipients[Math.floor(n / senders.length) % recipients.length] as Participant;
            const body = JSON.stringify({
              messages: [{ account: toBase64Url(recipient.account.publicKey), deviceId: 1, id: `load-${n}`, envelope }],
            });
            const bytes = utf8(body);
            const authorization = authorizationHeader(
              {
                method: 'POST',
                host,
                pathAndQuery: '/v1/messages',
                bodySha256: provider.backend.sha256(bytes),
                timestamp: Date.now(),
                nonce: provider.random(16),
              },
              deviceSigner(sender.device),
            );
            const digest = `sha-256=:${Buffer.from(provider.backend.sha256(bytes)).toString('base64')}:`;
            return { ...request, body, headers: { 'content-type': 'application/json', 'content-digest': digest, authorization } };
          },
        },
      ],
    });

    // ---- phase 2: delivery latency (fresh recipients on websockets, closed-loop senders)
    const listeners = await participants(relay.url, 4);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const receivers = listeners.map((l) =>
      l.client.connect({
        onEnvelope: (e) => {
          const t0 = sentAt.get(e.id);
          if (t0 !== undefined) latencies.push(performance.now() - t0);
        },
      }),
    );
    await Promise.all(receivers.map((r) => r.start().whenOpen()));
    const samples = options.latencySamples ?? 2000;
    let next = 0;
    const payload = provider.random(envelopeBytes);
    const loop = async (w: number) => {
      const sender = senders[w % senders.length] as Participant;
      while (next < samples) {
        const n = next++;
        const to = listeners[n % listeners.length] as Participant;
        const id = `lat-${n}`;
        sentAt.set(id, performance.now());
        await sender.client.send([{ accountKey: to.account.publicKey, deviceId: 1, id, envelope: payload }]);
      }
    };
    await Promise.all(Array.from({ length: options.latencySenders ?? 8 }, (_, w) => loop(w)));
    const deadline = Date.now() + 10_000;
    while (latencies.length < samples && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const r of receivers) r.stop();
    latencies.sort((a, b) => a - b);
    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    const commits = metric('parley_relay_commit_batch_writes_count');

    return {
      envelopeBytes,
      connections,
      durationSeconds: run.duration,
      envelopesPerSecond: round(run['2xx'] / run.duration, 0),
      accepted: run['2xx'],
      errors: run.errors + run.timeouts + run.non2xx,
      sendLatencyMs: { median: run.latency.p50, p99: run.latency.p99 },
      deliveryLatencyMs: { median: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)), samples: latencies.length },
      relay: {
        commits,
        meanWritesPerCommit: round(metric('parley_relay_commit_batch_writes_sum') / commits, 1),
        meanCommitMs: round((metric('parley_relay_commit_duration_seconds_sum') / commits) * 1000),
        cpuSeconds: round(metric('process_cpu_seconds_total')),
      },
      loadAverage: round(loadavg()[0] ?? Number.NaN),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    };
  } finally {
    relay.child.kill('SIGTERM');
    await new Promise((resolve) => {
      if (relay.child.exitCode !== null) resolve(undefined);
      else relay.child.once('exit', resolve);
    });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function formatTable(r: RelayLoadResult): string {
  const rows: [string, string][] = [
    [
      'envelopes accepted per second',
      `${r.envelopesPerSecond} (${r.accepted} in ${r.durationSeconds} s, ${r.connections} connections, ${r.envelopeBytes} B each, ${r.errors} errors)`,
    ],
    ['send request latency under load', `median ${r.sendLatencyMs.median} ms, p99 ${r.sendLatencyMs.p99} ms`],
    [
      'send -> websocket delivery latency',
      `median ${r.deliveryLatencyMs.median} ms, p99 ${r.deliveryLatencyMs.p99} ms (${r.deliveryLatencyMs.samples} samples)`,
    ],
    ['relay group commits', `${r.relay.commits}, ${r.relay.meanWritesPerCommit} writes and ${r.relay.meanCommitMs} ms each on average`],
    ['relay CPU', `${r.relay.cpuSeconds} s for the whole run`],
    ['machine', `${r.machine.cpus} x ${r.machine.cpu}, Node ${r.machine.node}, load average ${r.loadAverage}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      samples: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const result = await runRelayLoad({
    ...(values.duration ? { durationSeconds: Number(values.duration) } : {}),
    ...(values.connections ? { connections: Number(values.connections) } : {}),
    ...(values.samples ? { latencySamples: Number(values.samples) } : {}),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatTable(result));
}
