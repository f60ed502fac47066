/**
 * Relay load test on loopback (issue 15): envelopes accepted per second
 * (1 KiB envelopes, each committed to disk before its answer) and
 * send-to-websocket delivery latency, at full rate and at half that rate.
 * The relay runs as its own process (`src/main.ts`, as `npm start` runs it,
 * with a fresh data folder and durable commits), so the load generator does
 * not share its event loop, but it does share the machine's cores.
 *
 *   node --import tsx bench/src/relay/load.ts [--mode http|ws] [--duration 10] [--connections 64]
 *     [--batch 1] [--window 8] [--half-seconds 5] [--half-rate N] [--relay-main other/packages/relay/src/main.ts]
 *     [--profile-dir folder] [--in-process-listeners] [--push cbor|json] [--tail 99]
 *     [--relay-node-args=--max-semi-space-size=32] [--json]
 *
 * `--tail P`: the relay runs with its tail trace, and the report says where the half-rate
 * envelopes at or above the P-th percentile of delivery spent their time (tail-report.ts).
 *
 * Phase 1, full rate: `--mode http` (default) sends one signed POST per
 * envelope over `connections` keep-alive connections (autocannon);
 * `--mode ws` sends binary frames of `batch` envelopes on each sender's
 * authenticated websocket (spec/09-relay.md §5.4), `window` frames in flight
 * per sender. One envelope in SAMPLE_EVERY goes to a device listening on a
 * websocket, timing delivery at full rate.
 * Phase 2, half rate: open loop at half the phase-1 rate, every envelope to a
 * listening device, timing send → delivery.
 *
 * bench/src/relay.ts calls `runRelayLoad(options)`; relay/attack.ts reuses
 * `startRelay` and `participants`. (It lives in bench/, not in the relay
 * package: it drives the relay through the client, which the relay must not
 * import.)
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Account, type DeviceIdentity, PreKeyStore, defaultProvider, utf8 } from '@parley/core';
import { RelayClient, authorizationHeader, deviceSigner, fromBase64Url, preKeysOf, toBase64Url } from '@parley/client/relay-client';
import WebSocket from 'ws';
import { type DeliveryRecord, type TailReport, attributeTail, formatTail, readTailTrace } from './tail-report.ts';
import { WsSender } from './ws-sender.ts';

/** How the load generator sends: signed HTTP requests, or frames on authenticated websockets. */
export type SendMode = 'http' | 'ws';

export interface RelayLoadOptions {
  /** 'http' (default): one signed POST per envelope; 'ws': send frames on each sender's websocket. */
  readonly mode?: SendMode;
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
  /** Most envelopes sent in the half-rate phase (default: no bound but its duration). */
  readonly latencySamples?: number;
  /** Seconds of the half-rate phase (default 5). */
  readonly halfRateSeconds?: number;
  /**
   * Envelopes per second of the half-rate phase (default: half the rate this run accepted).
   * Issue 15's goal is stated at 5,000/s (half of 10k/s); on a quiet machine half the accepted
   * rate is 5,500-6,000/s, a harder and run-dependent target.
   */
  readonly halfRate?: number;
  /** HTTP sends signed before the full-rate phase (mode 'http', default 3500 per second of it, at most 30 000); more are signed as needed. */
  readonly presigned?: number;
  /** Envelopes per websocket send frame (mode 'ws', default 1). */
  readonly batch?: number;
  /** Send frames in flight per websocket sender (mode 'ws', default 8; the relay allows 32). */
  readonly window?: number;
  /** The relay's entry point (default: this checkout's packages/relay/src/main.ts); another checkout's, to compare. */
  readonly relayMain?: string;
  /** Extra node options for the relay process (e.g. a V8 heap flag, to compare GC settings). */
  readonly relayNodeArgs?: readonly string[];
  /** Write a V8 CPU profile of the relay process into this folder (node --cpu-prof). */
  readonly profileDir?: string;
  /**
   * Listening devices in the generator's own process instead of their own (ws-listeners.ts,
   * the default since issue 15's latency work): to compare with figures measured before it.
   */
  readonly inProcessListeners?: boolean;
  /** How the listening devices take pushed envelopes (spec/09-relay.md §5.2.2): 'cbor' (default, binary frames) or 'json'. */
  readonly push?: 'cbor' | 'json';
  /**
   * Runs the relay with its tail trace (PARLEY_TAIL_TRACE, packages/relay/src/tail-trace.ts) and
   * attributes the half-rate envelopes at or above this percentile of delivery (tail-report.ts).
   * The relay's entry must know the trace (an older checkout's does not, and gives no report).
   */
  readonly tailPercentile?: number;
}

export interface Latency {
  readonly median: number;
  readonly p99: number;
  readonly samples: number;
}

export interface RelayLoadResult {
  readonly mode: SendMode;
  /** The listening devices' push frames: binary CBOR or JSON text. */
  readonly push: 'cbor' | 'json';
  /** Envelopes per websocket frame (1 over HTTP). */
  readonly batch: number;
  readonly envelopeBytes: number;
  readonly connections: number;
  readonly durationSeconds: number;
  /** Envelopes accepted (HTTP 200: committed to disk) per second. */
  readonly envelopesPerSecond: number;
  readonly accepted: number;
  readonly errors: number;
  /** Send request (or frame) to its answer under full load, ms. */
  readonly sendLatencyMs: { readonly median: number; readonly p99: number };
  /** Send → websocket delivery of the sampled envelopes during the full-rate phase, ms. */
  readonly deliveryAtFullRateMs: Latency;
  /** The half-rate phase: target and achieved rates, and send → websocket delivery, ms. */
  readonly halfRate: { readonly target: number; readonly achieved: number; readonly sent: number; readonly errors: number };
  /** Send → websocket delivery at half the full rate, ms. */
  readonly deliveryLatencyMs: Latency;
  /** From the relay's own metrics over the whole run: group commits and CPU. */
  readonly relay: {
    readonly commits: number;
    readonly meanWritesPerCommit: number;
    readonly meanCommitMs: number;
    readonly cpuSeconds: number;
    /**
     * Relay CPU (user + system, all threads) per accepted envelope during the full-rate phase, µs:
     * less sensitive to other work on the machine than the rates, which it competes for cores.
     */
    readonly cpuPerEnvelopeUs: number;
  };
  /** Where the half-rate phase's send → delivery time goes (bench/results/relay-latency.md). */
  readonly breakdown: LatencyBreakdown;
  /** With `tailPercentile`: where the slowest half-rate deliveries' time went. */
  readonly tail?: TailReport;
  /** 1-minute load average when the run ended: other work on the machine skews every figure. */
  readonly loadAverage: number;
  readonly machine: { readonly cpus: number; readonly cpu: string; readonly node: string };
}

/** Milliseconds: mean and an upper estimate of the p99 (a Prometheus bucket bound, or a sample quantile). */
export interface Spread {
  readonly mean: number;
  readonly p99: number;
}

/**
 * The half-rate phase taken apart. Relay figures are the relay's own metrics over that phase
 * (scraped before and after); generator figures are measured in this process.
 */
export interface LatencyBreakdown {
  /** Generator send → the relay's acceptance timestamp (frame write, loopback, relay parse queue), wall clock ms. */
  readonly inbound: Spread;
  /** The relay's acceptance → the envelope's push on the listener's websocket (relay metric). */
  readonly acceptToPush: Spread;
  /** The relay's acceptance → the generator's handler sees the envelope, wall clock ms. */
  readonly acceptToHandler: Spread;
  /** Group commits over the phase: writes per commit, and each phase of a commit (relay metric). */
  readonly commits: {
    readonly count: number;
    readonly writes: number;
    readonly wait: Spread;
    readonly transaction: Spread;
    readonly sync: Spread;
  };
  /** Event-loop delay over the phase: the relay's (prom-client monitor) and this generator's. */
  readonly relayLoopLag: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly generatorLoopLag: { readonly p50: number; readonly p99: number; readonly max: number };
  /** The listeners' process (ws-listeners.ts): its event-loop delay p99 and CPU per envelope (absent when in process). */
  readonly listeners?: { readonly loopLagP99: number; readonly cpuPerEnvelopeUs: number };
  /** Relay CPU (all threads) per envelope over the half-rate phase, µs (send, push and acknowledgement). */
  readonly relayCpuPerEnvelopeUs: number;
  /**
   * Websocket pushes over the phase (relay metrics): envelopes pushed, those pushed from their
   * commit's rows without a read (live push, spec/09-relay.md §5.3), and mailbox reads.
   */
  readonly pushes: { readonly pushed: number; readonly live: number; readonly reads: number };
  /** This generator's CPU per envelope over the same phase, µs. */
  readonly generatorCpuPerEnvelopeUs: number;
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
export async function startRelay(
  dataDir: string,
  extraEnv: RelayEnv = {},
  nodeArgs: readonly string[] = [],
  main: string = MAIN,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', 'tsx', main, '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir],
    {
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
    },
  );
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

/** One envelope in this many goes to a listening device during the full-rate phase (delivery timed at full rate). */
const SAMPLE_EVERY = 16;
/**
 * Signed HTTP sends prepared before the full-rate phase, per second of it: above the fastest HTTP
 * rate measured here, so the generator rarely signs during the phase. At most PRESIGNED_MAX.
 */
const PRESIGNED_PER_SECOND = 3500;
const PRESIGNED_MAX = 30_000;
/** Most HTTP sends outstanding in the half-rate phase (open loop, but bounded if the relay falls behind). */
const MAX_OUTSTANDING = 512;

function latency(values: number[]): Latency {
  values.sort((a, b) => a - b);
  return { median: round(percentile(values, 50)), p99: round(percentile(values, 99)), samples: values.length };
}

/** Times send → websocket delivery for envelopes whose ids were registered with `sent`. */
/** Wall clock, sub-millisecond: shared with the listeners' process on the same machine. */
const wallNow = () => performance.timeOrigin + performance.now();

class DeliveryClock {
  readonly #sentAt = new Map<string, number>();
  readonly #phases = new Map<string, number[]>();
  /** Half-rate envelopes: send → relay acceptance, relay acceptance → handler (wall clock, ms resolution). */
  readonly inbound: number[] = [];
  readonly outbound: number[] = [];
  /** Every half-rate envelope's send, server timestamp and delivery (the tail report's input). */
  readonly half: DeliveryRecord[] = [];
  sent(id: string): void {
    this.#sentAt.set(id, wallNow());
  }
  /** `at`: when the handler saw it (wall clock), here or in the listeners' process. */
  delivered(id: string, serverTimestamp: number, at: number = wallNow()): void {
    const t0 = this.#sentAt.get(id);
    if (t0 === undefined) return;
    this.#sentAt.delete(id);
    if (id.startsWith('half-')) {
      this.inbound.push(serverTimestamp - t0);
      this.outbound.push(at - serverTimestamp);
      this.half.push({ sent: t0, serverTimestamp, delivered: at });
    }
    const phase = id.slice(0, id.indexOf('-'));
    let list = this.#phases.get(phase);
    if (!list) this.#phases.set(phase, (list = []));
    list.push(at - t0);
  }
  count(phase: string): number {
    return this.#phases.get(phase)?.length ?? 0;
  }
  latency(phase: string): Latency {
    return latency(this.#phases.get(phase) ?? []);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One Prometheus histogram (optionally one label value) out of a scrape: cumulative buckets, sum, count. */
interface Histo {
  readonly buckets: [le: number, count: number][];
  readonly sum: number;
  readonly count: number;
}
function histogram(text: string, name: string, label = ''): Histo {
  const buckets: [number, number][] = [];
  // prom-client writes `le` first: name_bucket{le="0.001",phase="wait"} 12
  const sel = label ? `,${label}` : '';
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"${sel}\\} (\\S+)$`, 'gm'))) {
    buckets.push([m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])]);
  }
  const scalar = (suffix: string) =>
    Number(new RegExp(`^${name}_${suffix}${label ? `\\{${label}\\}` : ''} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { buckets, sum: scalar('sum'), count: scalar('count') };
}
/** `after` − `before`, as mean and the bucket bound under which 99% fall, in ms (the histogram is in seconds). */
function spreadBetween(before: Histo, after: Histo): Spread {
  const count = after.count - before.count;
  if (!(count > 0)) return { mean: Number.NaN, p99: Number.NaN };
  const mean = ((after.sum - before.sum) / count) * 1000;
  let p99 = Number.POSITIVE_INFINITY;
  for (const [i, [le, n]] of after.buckets.entries()) {
    if (n - (before.buckets[i]?.[1] ?? 0) >= 0.99 * count) {
      p99 = le * 1000;
      break;
    }
  }
  return { mean: round(mean), p99: round(p99) };
}
function spreadOf(values: number[]): Spread {
  if (values.length === 0) return { mean: Number.NaN, p99: Number.NaN };
  const sorted = [...values].sort((a, b) => a - b);
  return { mean: round(values.reduce((a, b) => a + b, 0) / values.length), p99: round(percentile(sorted, 99)) };
}
const scalarMetric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

/** Who an envelope goes to: a participant here, or a listener in the listeners' process. */
type Addressee = { readonly account: { readonly publicKey: Uint8Array } };

interface Listeners {
  readonly accounts: Uint8Array[];
  /** From now on the listeners count CPU and envelopes (the half-rate phase). */
  mark(): void;
  /** Stops the listeners; resolves with their loop delay and CPU since the mark once every receipt reached the clock. */
  stop(): Promise<{ lagP99Ms: number; cpuUs: number; envelopes: number }>;
  kill(): void;
}

const LISTENERS = fileURLToPath(new URL('./ws-listeners.ts', import.meta.url));

/** Forks ws-listeners.ts with `count` registered, connected listeners; their receipts go to `clock`. */
function startListeners(url: string, count: number, clock: DeliveryClock, push: 'cbor' | 'json'): Promise<Listeners> {
  // As startRelay runs the relay: TypeScript through tsx, whatever runs this script (node, vitest).
  const child = fork(LISTENERS, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  type Message = {
    type: string;
    accounts?: string[];
    items?: [string, number, number][];
    lagP99Ms?: number;
    cpuUs?: number;
    envelopes?: number;
  };
  let onStopped: ((m: { lagP99Ms: number; cpuUs: number; envelopes: number }) => void) | undefined;
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`listeners exited (${code}) before ready`)));
    child.on('message', (m: Message) => {
      if (m.type === 'got') for (const [id, serverTimestamp, at] of m.items ?? []) clock.delivered(id, serverTimestamp, at);
      else if (m.type === 'stopped')
        onStopped?.({ lagP99Ms: m.lagP99Ms ?? Number.NaN, cpuUs: m.cpuUs ?? Number.NaN, envelopes: m.envelopes ?? 0 });
      else if (m.type === 'ready') {
        resolve({
          accounts: (m.accounts ?? []).map((a) => fromBase64Url(a)),
          mark: () => child.send({ type: 'mark' }),
          stop: () =>
            new Promise((done) => {
              onStopped = done;
              child.send({ type: 'stop' });
            }),
          kill: () => {
            if (child.exitCode === null) child.kill('SIGKILL');
          },
        });
      }
    });
    child.send({ type: 'start', url, count, push });
  });
}

/** Runs both phases against a fresh relay process and returns the figures. */
export async function runRelayLoad(options: RelayLoadOptions = {}): Promise<RelayLoadResult> {
  if (options.tailPercentile === undefined) return (await runPhases(options, undefined)).result;
  // PARLEY_TAIL_KEEP=<file>: keep the relay's trace there, and the deliveries beside it (.deliveries.json), to look closer.
  const keep = process.env.PARLEY_TAIL_KEEP;
  const traceFile = keep ?? join(tmpdir(), `parley-tail-${process.pid}-${Date.now()}.jsonl`);
  try {
    const { result, half } = await runPhases(options, traceFile);
    if (keep) writeFileSync(`${keep}.deliveries.json`, JSON.stringify(half));
    // The relay wrote its trace at exit (runPhases waited for it).
    let trace: ReturnType<typeof readTailTrace>;
    try {
      trace = readTailTrace(traceFile, CHECKPOINT_HOLD_MAX_MS);
    } catch (error) {
      console.error(`no tail trace from the relay (${(error as Error).message}): does its entry know PARLEY_TAIL_TRACE?`);
      return result;
    }
    return { ...result, tail: attributeTail(half, trace, options.tailPercentile) };
  } finally {
    if (!keep) rmSync(traceFile, { force: true });
  }
}

/** The relay's bound on a checkpoint's write hold (wal-checkpointer.ts; the bench does not import the relay). */
const CHECKPOINT_HOLD_MAX_MS = 50;

async function runPhases(
  options: RelayLoadOptions,
  traceFile: string | undefined,
): Promise<{ result: RelayLoadResult; half: DeliveryRecord[] }> {
  const mode = options.mode ?? 'http';
  const durationSeconds = options.durationSeconds ?? 10;
  const connections = options.connections ?? 64;
  const envelopeBytes = options.envelopeBytes ?? 1024;
  const batch = mode === 'ws' ? (options.batch ?? 1) : 1;
  const window = options.window ?? 8;
  const push = options.push ?? 'cbor';
  if (batch > (options.recipients ?? 16)) throw new Error('a frame holds one envelope per device: batch must not exceed recipients');
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-load-'));
  const relay = await startRelay(
    dataDir,
    // The websocket senders are few devices sending far more than one person does: lift the per-device frame budget.
    {
      PARLEY_WEBSOCKET_SENDS_PER_MINUTE_PER_DEVICE: '1000000000',
      PARLEY_SIGNED_REQUESTS_PER_SIGNER: '1000000000',
      ...(traceFile ? { PARLEY_TAIL_TRACE: traceFile } : {}),
    },
    [...(options.relayNodeArgs ?? []), ...(options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', options.profileDir] : [])],
    options.relayMain ?? MAIN,
  );
  const wsSenders: WsSender[] = [];
  let receivers: ReturnType<RelayClient['connect']>[] = [];
  let listenerProcess: Listeners | undefined;
  try {
    const provider = defaultProvider();
    const senders = await participants(relay.url, options.senders ?? 32);
    const recipients = await participants(relay.url, options.recipients ?? 16);
    // Enough listeners for a half-rate frame of `batch` envelopes, one per device.
    const listenerCount = Math.max(4, batch);
    const clock = new DeliveryClock();
    let listeners: Addressee[];
    if (options.inProcessListeners) {
      const inProcess = await participants(relay.url, listenerCount);
      receivers = inProcess.map((l) =>
        l.client.connect({ onEnvelope: (e) => clock.delivered(e.id, e.serverTimestamp) }, { binaryPush: push === 'cbor' }),
      );
      await Promise.all(receivers.map((r) => r.start().whenOpen()));
      listeners = inProcess;
    } else {
      listenerProcess = await startListeners(relay.url, listenerCount, clock, push);
      listeners = listenerProcess.accounts.map((a) => ({ account: { publicKey: a } }));
    }
    const host = new URL(relay.url).host;
    const payload = provider.random(envelopeBytes);
    const envelope = toBase64Url(payload);
    /** The n-th envelope of phase 1: every SAMPLE_EVERY-th to a listener (timed), the others to offline recipients. */
    const target = (n: number): Addressee => {
      if (n % SAMPLE_EVERY === 0) return listeners[(n / SAMPLE_EVERY) % listeners.length] as Addressee;
      // Consecutive envelopes go to distinct devices: a frame of `batch` holds one envelope per device.
      return recipients[n % recipients.length] as Participant;
    };

    const relayCpuSeconds = async () => {
      const text = await (await fetch(`${relay.url}/metrics`)).text();
      return Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
    };
    // ---- phase 1: full rate
    let cpuBefore = Number.NaN;
    let phase1: { accepted: number; errors: number; seconds: number; sendLatencyMs: { median: number; p99: number } };
    if (mode === 'http') {
      // Signed before the timed phase, so the generator's signing does not take the shared cores from the relay.
      type Prepared = { id: string; body: string; headers: Record<string, string> };
      const prepare = (n: number): Prepared => {
        const sender = senders[n % senders.length] as Participant;
        const recipient = target(n);
        const id = `full-${n}`;
        const body = JSON.stringify({
          messages: [{ account: toBase64Url(recipient.account.publicKey), deviceId: 1, id, envelope }],
        });
        const bodySha256 = provider.backend.sha256(utf8(body));
        const authorization = authorizationHeader(
          { method: 'POST', host, pathAndQuery: '/v1/messages', bodySha256, timestamp: Date.now(), nonce: provider.random(16) },
          deviceSigner(sender.device),
        );
        const digest = `sha-256=:${Buffer.from(bodySha256).toString('base64')}:`;
        return { id, body, headers: { 'content-type': 'application/json', 'content-digest': digest, authorization } };
      };
      const prepared = Array.from(
        { length: options.presigned ?? Math.min(PRESIGNED_MAX, durationSeconds * PRESIGNED_PER_SECOND) },
        (_, n) => prepare(n),
      );
      let counter = 0;
      cpuBefore = await relayCpuSeconds();
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
              // Past the prepared ones (a faster relay than expected), sign as we go.
              const { id, body, headers } = prepared[n] ?? prepare(n);
              if (n % SAMPLE_EVERY === 0) clock.sent(id);
              return { ...request, body, headers };
            },
          },
        ],
      });
      phase1 = {
        accepted: run['2xx'],
        errors: run.errors + run.timeouts + run.non2xx,
        seconds: run.duration,
        sendLatencyMs: { median: run.latency.p50, p99: run.latency.p99 },
      };
    } else {
      for (const s of senders) wsSenders.push(await WsSender.open(relay.url, s.device));
      let counter = 0;
      let accepted = 0;
      let errors = 0;
      let firstError: string | undefined;
      const frameTimes: number[] = [];
      cpuBefore = await relayCpuSeconds();
      const started = performance.now();
      const end = started + durationSeconds * 1000;
      const lane = async (sender: WsSender) => {
        while (performance.now() < end) {
          const elements = Array.from({ length: batch }, () => {
            const n = counter++;
            const recipient = target(n);
            const id = `full-${n}`;
            if (n % SAMPLE_EVERY === 0) clock.sent(id);
            return { accountKey: recipient.account.publicKey, deviceId: 1, id, envelope: payload };
          });
          const t0 = performance.now();
          const result = await sender.send(elements);
          frameTimes.push(performance.now() - t0);
          if ('accepted' in result) accepted += result.accepted;
          else {
            errors++;
            firstError ??= `${result.error.code}: ${result.error.message}`;
          }
        }
      };
      await Promise.all(wsSenders.flatMap((s) => Array.from({ length: window }, () => lane(s))));
      const frames = latency(frameTimes);
      if (firstError) console.error(`websocket sends: ${errors} failed, the first with ${firstError}`);
      phase1 = {
        accepted,
        errors,
        seconds: round((performance.now() - started) / 1000),
        sendLatencyMs: { median: frames.median, p99: frames.p99 },
      };
    }
    const envelopesPerSecond = round(phase1.accepted / phase1.seconds, 0);
    const cpuPerEnvelopeUs = round((((await relayCpuSeconds()) - cpuBefore) * 1e6) / Math.max(1, phase1.accepted), 1);

    // ---- phase 2: half rate, open loop, every envelope to a listener
    await sleep(500); // let the full-rate backlog settle
    const before2 = await (await fetch(`${relay.url}/metrics`)).text(); // also resets the relay's loop-lag monitor
    const generatorLag = monitorEventLoopDelay({ resolution: 10 });
    generatorLag.enable();
    const generatorCpu0 = process.cpuUsage();
    listenerProcess?.mark();
    const targetRate = Math.max(1, Math.round(options.halfRate ?? envelopesPerSecond / 2));
    const halfSeconds = options.halfRateSeconds ?? 5;
    const maxSamples = options.latencySamples ?? Number.POSITIVE_INFINITY;
    let sent = 0;
    let halfErrors = 0;
    let outstanding = 0;
    const pending: Promise<unknown>[] = [];
    const t0 = performance.now();
    const sendHalf = (n: number, count: number) => {
      const elements = Array.from({ length: count }, (_, k) => {
        const i = n + k;
        const to = listeners[i % listeners.length] as Addressee;
        const id = `half-${i}`;
        clock.sent(id);
        return { to, id };
      });
      outstanding++;
      const w = (n / batch) % (mode === 'ws' ? wsSenders.length : senders.length);
      const p =
        mode === 'ws'
          ? (wsSenders[Math.floor(w)] as WsSender).send(
              elements.map((e) => ({ accountKey: e.to.account.publicKey, deviceId: 1, id: e.id, envelope: payload })),
            )
          : (senders[n % senders.length] as Participant).client.send(
              elements.map((e) => ({ accountKey: e.to.account.publicKey, deviceId: 1, id: e.id, envelope: payload })),
            );
      pending.push(
        p.then(
          (r) => {
            outstanding--;
            if (r && typeof r === 'object' && 'error' in r) halfErrors++;
          },
          () => {
            outstanding--;
            halfErrors++;
          },
        ),
      );
    };
    while (performance.now() - t0 < halfSeconds * 1000 && sent < maxSamples) {
      const due = Math.min(maxSamples, Math.floor(((performance.now() - t0) / 1000) * targetRate));
      while (sent < due && outstanding < MAX_OUTSTANDING) {
        const count = Math.min(batch, due - sent);
        sendHalf(sent, count);
        sent += count;
      }
      await sleep(1);
    }
    const halfElapsed = (performance.now() - t0) / 1000;
    await Promise.all(pending);
    const deadline = Date.now() + 10_000;
    while (clock.count('half') < sent - halfErrors && Date.now() < deadline) await sleep(10);
    generatorLag.disable();
    const generatorCpu = process.cpuUsage(generatorCpu0);
    const listenerStats = await listenerProcess?.stop();
    listenerProcess = undefined;
    const after2 = await (await fetch(`${relay.url}/metrics`)).text();
    const commitPhase = (phase: string) =>
      spreadBetween(
        histogram(before2, 'parley_relay_commit_phase_seconds', `phase="${phase}"`),
        histogram(after2, 'parley_relay_commit_phase_seconds', `phase="${phase}"`),
      );
    const delta = (name: string) => scalarMetric(after2, name) - scalarMetric(before2, name);
    const commits2 = delta('parley_relay_commit_batch_writes_count');
    const lagMs = (h: { percentile(p: number): number; max: number }) => ({
      p50: round(h.percentile(50) / 1e6),
      p99: round(h.percentile(99) / 1e6),
      max: round(h.max / 1e6),
    });
    const breakdown: LatencyBreakdown = {
      inbound: spreadOf(clock.inbound),
      acceptToPush: spreadBetween(
        histogram(before2, 'parley_relay_push_delay_seconds'),
        histogram(after2, 'parley_relay_push_delay_seconds'),
      ),
      acceptToHandler: spreadOf(clock.outbound),
      commits: {
        count: commits2,
        writes: round(
          (scalarMetric(after2, 'parley_relay_commit_batch_writes_sum') - scalarMetric(before2, 'parley_relay_commit_batch_writes_sum')) /
            commits2,
          1,
        ),
        wait: commitPhase('wait'),
        transaction: commitPhase('transaction'),
        sync: commitPhase('sync'),
      },
      relayLoopLag: {
        p50: round(scalarMetric(after2, 'nodejs_eventloop_lag_p50_seconds') * 1000),
        p99: round(scalarMetric(after2, 'nodejs_eventloop_lag_p99_seconds') * 1000),
        max: round(scalarMetric(after2, 'nodejs_eventloop_lag_max_seconds') * 1000),
      },
      generatorLoopLag: lagMs(generatorLag),
      ...(listenerStats
        ? {
            listeners: {
              loopLagP99: round(listenerStats.lagP99Ms),
              cpuPerEnvelopeUs: round(listenerStats.cpuUs / Math.max(1, listenerStats.envelopes), 1),
            },
          }
        : {}),
      relayCpuPerEnvelopeUs: round(
        ((scalarMetric(after2, 'process_cpu_seconds_total') - scalarMetric(before2, 'process_cpu_seconds_total')) * 1e6) /
          Math.max(1, sent),
        1,
      ),
      generatorCpuPerEnvelopeUs: round((generatorCpu.user + generatorCpu.system) / Math.max(1, sent), 1),
      pushes: {
        pushed: delta('parley_relay_envelopes_pushed_total'),
        live: delta('parley_relay_envelopes_pushed_live_total'),
        reads: delta('parley_relay_mailbox_reads_total'),
      },
    };

    const metrics = await (await fetch(`${relay.url}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);
    const commits = metric('parley_relay_commit_batch_writes_count');

    const result: RelayLoadResult = {
      mode,
      push,
      batch,
      envelopeBytes,
      connections: mode === 'http' ? connections : senders.length * window,
      durationSeconds: phase1.seconds,
      envelopesPerSecond,
      accepted: phase1.accepted,
      errors: phase1.errors,
      sendLatencyMs: phase1.sendLatencyMs,
      deliveryAtFullRateMs: clock.latency('full'),
      halfRate: { target: targetRate, achieved: round(sent / halfElapsed, 0), sent, errors: halfErrors },
      deliveryLatencyMs: clock.latency('half'),
      relay: {
        commits,
        meanWritesPerCommit: round(metric('parley_relay_commit_batch_writes_sum') / commits, 1),
        meanCommitMs: round((metric('parley_relay_commit_duration_seconds_sum') / commits) * 1000),
        cpuSeconds: round(metric('process_cpu_seconds_total')),
        cpuPerEnvelopeUs,
      },
      breakdown,
      loadAverage: round(loadavg()[0] ?? Number.NaN),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    };
    return { result, half: clock.half };
  } finally {
    for (const r of receivers) r.stop();
    listenerProcess?.kill();
    for (const s of wsSenders) s.close();
    relay.child.kill('SIGTERM');
    await new Promise((resolve) => {
      if (relay.child.exitCode !== null) resolve(undefined);
      else relay.child.once('exit', resolve);
    });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const spread = (s: Spread) => `mean ${s.mean} ms, p99 ${s.p99 === Number.POSITIVE_INFINITY ? '>max bucket' : `≤${s.p99}`} ms`;

function breakdownRows(b: LatencyBreakdown): [string, string][] {
  const c = b.commits;
  return [
    ['half rate: send -> relay accepts', `mean ${b.inbound.mean} ms, p99 ${b.inbound.p99} ms (wall clock, 1 ms steps)`],
    ['half rate: accept -> pushed', spread(b.acceptToPush)],
    ['half rate: accept -> handler', `mean ${b.acceptToHandler.mean} ms, p99 ${b.acceptToHandler.p99} ms (wall clock, 1 ms steps)`],
    [
      'half rate: commits',
      `${c.count}, ${c.writes} writes each; wait ${spread(c.wait)}; transaction ${spread(c.transaction)}; sync ${spread(c.sync)}`,
    ],
    [
      'half rate: event-loop delay',
      `relay p50 ${b.relayLoopLag.p50} / p99 ${b.relayLoopLag.p99} / max ${b.relayLoopLag.max} ms; generator p50 ${b.generatorLoopLag.p50} / p99 ${b.generatorLoopLag.p99} / max ${b.generatorLoopLag.max} ms`,
    ],
    [
      'half rate: pushes',
      `${b.pushes.pushed} pushed, ${b.pushes.live} of them live from their commit; ${b.pushes.reads} mailbox reads (${round(b.pushes.reads / Math.max(1, b.pushes.pushed), 3)} per pushed envelope)`,
    ],
    [
      'half rate: CPU per envelope',
      `relay ${b.relayCpuPerEnvelopeUs} µs, generator ${b.generatorCpuPerEnvelopeUs} µs${b.listeners ? `, listeners ${b.listeners.cpuPerEnvelopeUs} µs (their loop delay p99 ${b.listeners.loopLagP99} ms)` : ''}`,
    ],
  ];
}

export function formatTable(r: RelayLoadResult): string {
  const how =
    r.mode === 'http'
      ? `${r.connections} HTTP connections, one signed POST each`
      : `${r.connections / 1} websocket frames in flight, ${r.batch} per frame`;
  const pushed = r.push === 'cbor' ? 'binary push frames' : 'JSON push frames';
  const rows: [string, string][] = [
    [
      'envelopes accepted per second',
      `${r.envelopesPerSecond} (${r.accepted} in ${r.durationSeconds} s, ${how}, ${r.envelopeBytes} B each, ${r.errors} errors)`,
    ],
    [
      `send ${r.mode === 'http' ? 'request' : 'frame'} -> answer at full rate`,
      `median ${r.sendLatencyMs.median} ms, p99 ${r.sendLatencyMs.p99} ms`,
    ],
    [
      'send -> delivery at full rate',
      `median ${r.deliveryAtFullRateMs.median} ms, p99 ${r.deliveryAtFullRateMs.p99} ms (${r.deliveryAtFullRateMs.samples} sampled envelopes)`,
    ],
    [
      'send -> delivery at half rate',
      `median ${r.deliveryLatencyMs.median} ms, p99 ${r.deliveryLatencyMs.p99} ms (${r.deliveryLatencyMs.samples} envelopes at ${r.halfRate.achieved}/s, target ${r.halfRate.target}/s, ${r.halfRate.errors} errors, ${pushed})`,
    ],
    ['relay group commits', `${r.relay.commits}, ${r.relay.meanWritesPerCommit} writes and ${r.relay.meanCommitMs} ms each on average`],
    ['relay CPU', `${r.relay.cpuSeconds} s for the whole run; ${r.relay.cpuPerEnvelopeUs} µs per envelope at full rate`],
    ...breakdownRows(r.breakdown),
    ...((r.tail ? formatTail(r.tail) : []) as [string, string][]),
    ['machine', `${r.machine.cpus} x ${r.machine.cpu}, Node ${r.machine.node}, load average ${r.loadAverage}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      batch: { type: 'string' },
      window: { type: 'string' },
      'half-seconds': { type: 'string' },
      'half-rate': { type: 'string' },
      'relay-main': { type: 'string' },
      samples: { type: 'string' },
      'profile-dir': { type: 'string' },
      'in-process-listeners': { type: 'boolean' },
      push: { type: 'string' },
      tail: { type: 'string' },
      'relay-node-args': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.mode !== undefined && values.mode !== 'http' && values.mode !== 'ws') throw new Error('--mode is http or ws');
  if (values.push !== undefined && values.push !== 'cbor' && values.push !== 'json') throw new Error('--push is cbor or json');
  const result = await runRelayLoad({
    ...(values.mode ? { mode: values.mode as SendMode } : {}),
    ...(values.duration ? { durationSeconds: Number(values.duration) } : {}),
    ...(values.connections ? { connections: Number(values.connections) } : {}),
    ...(values.batch ? { batch: Number(values.batch) } : {}),
    ...(values.window ? { window: Number(values.window) } : {}),
    ...(values['half-seconds'] ? { halfRateSeconds: Number(values['half-seconds']) } : {}),
    ...(values['half-rate'] ? { halfRate: Number(values['half-rate']) } : {}),
    ...(values.samples ? { latencySamples: Number(values.samples) } : {}),
    ...(values['relay-main'] ? { relayMain: values['relay-main'] } : {}),
    ...(values['profile-dir'] ? { profileDir: values['profile-dir'] } : {}),
    ...(values['in-process-listeners'] ? { inProcessListeners: true } : {}),
    ...(values.push ? { push: values.push as 'cbor' | 'json' } : {}),
    ...(values.tail ? { tailPercentile: Number(values.tail) } : {}),
    ...(values['relay-node-args'] ? { relayNodeArgs: values['relay-node-args'].split(' ').filter(Boolean) } : {}),
  });
  console.log(values.json ? JSON.stringify(result, null, 2) : formatTable(result));
}
