/**
 * How many concurrent delivery websockets one relay process holds here.
 * Issue 5 §4. Bounded: stops at the profile's cap or time limit, loopback
 * only, and every process it starts is stopped before it returns.
 *
 * The relay runs in a child process (host.ts); two more processes
 * (ws-clients.ts) create devices, which the host registers in the relay's
 * storage, and open one authenticated websocket per device. A connection counts once the relay has answered
 * "ready" (signature checked, mailbox attached). The figure is what the
 * relay held at the end, with its memory, and what stopped the climb: the
 * cap, the time limit, or the first error (for example running out of file
 * descriptors: `ulimit -n` bounds every process).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runner } from '../runner.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..', '..');
/**
 * Connections per client process at most: each client process connects from
 * its own loopback source address (127.0.0.2, .3, …) to the relay on
 * 127.0.0.1, and one source address has only the ephemeral port range
 * (32768-60999 by default, about 28,000 ports) towards one destination.
 */
const CONNECTIONS_PER_WORKER = 20_000;
/** Descriptors a process needs besides its sockets (modules, the database, pipes, stdio). */
const FD_HEADROOM = 1_000;

interface Done {
  type: 'done';
  connected: number;
  failed: number;
  firstError: string | null;
}

interface HostStats {
  type: 'stats';
  heapUsed: number;
  sockets: number;
}

/** A process's resident memory in bytes and its open-files limit, from /proc (Linux); null elsewhere. */
async function procInfo(pid: number | undefined): Promise<{ rss: number | null; maxFiles: number | null }> {
  if (pid === undefined) return { rss: null, maxFiles: null };
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    const files = /Max open files\s+(\d+)/.exec(limits)?.[1];
    return { rss: rss ? Number(rss) * 1024 : null, maxFiles: files ? Number(files) : null };
  } catch {
    return { rss: null, maxFiles: null };
  }
}

/**
 * A Node child with an IPC channel and its open-files limit raised to
 * `maxFiles` (one descriptor per socket). The shell raises it before
 * exec'ing node: root may raise the hard limit too; anyone else gets the
 * hard limit, and the figure then says the probe met it.
 */
function start(script: string, args: string[], maxFiles: number, nodeArgs: string[] = []): ChildProcess {
  const raise = 'ulimit -n "$1" 2>/dev/null || ulimit -n "$(ulimit -Hn)"; shift; exec "$@"';
  const node = [process.execPath, ...nodeArgs, '--import', 'tsx', join(HERE, script), ...args];
  return spawn('/bin/sh', ['-c', raise, 'sh', String(maxFiles), ...node], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
}

/** The next IPC message from `child` that satisfies `match`, or a rejection after `ms`. */
function next<T>(child: ChildProcess, match: (m: unknown) => m is T, ms: number, what: string): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const onMessage = (m: unknown) => {
      if (!match(m)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolvePromise(m);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what}: process exited (${code})`));
    });
  });
}

const isType =
  <T>(type: string) =>
  (m: unknown): m is T =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;

export async function measureWebSocketCapacity(runner: Runner): Promise<void> {
  const { maxWebSockets, webSocketSeconds } = runner.profile.relay;
  const meta = {
    section: 'relay',
    subject: 'relay',
    op: 'relay-websockets',
    label: 'concurrent authenticated websockets, one relay process',
    unit: 'count',
  } as const;
  const dataDir = await mkdtemp(join(tmpdir(), 'parley-bench-relay-'));
  const children: ChildProcess[] = [];
  const stderr: string[] = [];
  try {
    // --expose-gc: memory is read after a full collection, so garbage does not count as connections.
    const host = start('host.ts', [dataDir], maxWebSockets + FD_HEADROOM, ['--expose-gc']);
    children.push(host);
    host.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const { url } = await next(host, isType<{ type: 'ready'; url: string }>('ready'), 30_000, 'the relay to start');
    const stats = async () => {
      host.send({ type: 'stats' });
      const s = await next(host, isType<HostStats>('stats'), 10_000, 'relay stats');
      return { ...s, ...(await procInfo(host.pid)) };
    };

    // Where the open-files hard limit is below the cap (raising it needs CAP_SYS_RESOURCE), the relay
    // cannot hold more sockets than it allows: aim at that, instead of creating devices that cannot connect.
    const { maxFiles } = await procInfo(host.pid);
    const target = maxFiles === null ? maxWebSockets : Math.min(maxWebSockets, maxFiles - FD_HEADROOM);
    const workerCount = Math.max(2, Math.ceil(target / CONNECTIONS_PER_WORKER));
    // Exactly `target` in all: the first workers take one more when it does not divide.
    const shareOf = (i: number) => Math.floor(target / workerCount) + (i < target % workerCount ? 1 : 0);
    // Each device costs its keys (an ML-KEM key pair among them) on a shared 2-core machine: about 150 a second here.
    const registerSeconds = runner.quick ? 30 : Math.max(120, Math.ceil(target / 100));
    runner.progress(`relay: creating ${target} devices in ${workerCount} client processes and registering them in the relay's storage`);

    // Devices: each worker generates its share and streams registration records; the host stores them.
    let registered = 0;
    let registerError: string | null = null;
    const workers = Array.from({ length: workerCount }, (_, i) => {
      const w = start('ws-clients.ts', [], shareOf(i) + FD_HEADROOM);
      children.push(w);
      w.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
      return w;
    });
    await new Promise<void>((resolveAll, reject) => {
      let chunksOut = 0;
      let chunksBack = 0;
      let lastSeen = 0;
      const timer = setTimeout(() => reject(new Error(`device registration took more than ${registerSeconds} s`)), registerSeconds * 1000);
      const maybeDone = () => {
        if (lastSeen === workerCount && chunksBack === chunksOut) {
          clearTimeout(timer);
          host.off('message', onRegistered);
          resolveAll();
        }
      };
      const onRegistered = (m: { type?: string; n?: number; firstError?: string | null }) => {
        if (m?.type !== 'registered') return;
        chunksBack++;
        registered += m.n ?? 0;
        registerError ??= m.firstError ?? null;
        if (Math.floor(registered / 5000) !== Math.floor((registered - (m.n ?? 0)) / 5000))
          runner.progress(`relay: ${registered} devices registered`);
        maybeDone();
      };
      host.on('message', onRegistered);
      for (const [i, w] of workers.entries()) {
        w.on('message', (m: { type?: string; records?: unknown[]; last?: boolean }) => {
          if (m?.type !== 'devices') return;
          chunksOut++;
          host.send({ type: 'register', records: m.records ?? [] });
          if (m.last) lastSeen++;
          maybeDone();
        });
        w.send({ type: 'generate', count: shareOf(i) });
      }
    });
    if (registerError) throw new Error(registerError);
    // Memory with every device registered and no connection yet: the baseline for the per-connection figure.
    const before = await stats();

    runner.progress(`relay: ${registered} devices registered; opening one websocket each (≤ ${webSocketSeconds} s)`);
    const results = await Promise.all(
      workers.map((w, i) => {
        w.on('message', (m: { type?: string; n?: number }) => {
          if (m?.type === 'progress' && (m.n ?? 0) % 5000 === 0) runner.progress(`relay: a client process holds ${m.n} connections`);
        });
        const done = next(w, isType<Done>('done'), (webSocketSeconds + 60) * 1000, 'a client process');
        // Past one source address's ports, each client process takes its own (Linux routes all of 127/8 to loopback).
        const localAddress = target > CONNECTIONS_PER_WORKER ? `127.0.0.${2 + i}` : undefined;
        w.send({ type: 'connect', url, seconds: webSocketSeconds, localAddress });
        return done;
      }),
    );
    const connected = results.reduce((a, r) => a + r.connected, 0);
    const failed = results.reduce((a, r) => a + r.failed, 0);
    const firstError = results.map((r) => r.firstError).find((e) => e) ?? null;

    // Hold for a moment, then count what the relay still has open.
    await new Promise((r) => setTimeout(r, 2000));
    const after = await stats();
    const perConnection = (delta: number) => (connected > 0 ? delta / 1024 / connected : 0).toFixed(1);
    const memory =
      after.rss !== null && before.rss !== null
        ? `RSS ${Math.round(after.rss / 2 ** 20)} MiB, ≈${perConnection(after.rss - before.rss)} KiB RSS and ≈${perConnection(after.heapUsed - before.heapUsed)} KiB JS heap per connection`
        : 'RSS unknown';
    const fdLimit = after.maxFiles === null ? '' : `; open-files limit per process ${after.maxFiles}`;
    const atFdLimit = after.maxFiles !== null && after.sockets >= after.maxFiles - 200;
    const stoppedBy =
      connected >= maxWebSockets
        ? `the cap of ${maxWebSockets}`
        : connected >= target
          ? `this machine's open-files hard limit (${maxFiles} descriptors per process, one per socket; raising it needs CAP_SYS_RESOURCE), not the relay: the probe aimed at ${target} of the ${maxWebSockets} asked`
          : atFdLimit
            ? `the relay process's open-files limit (ulimit -n ${after.maxFiles}, one descriptor per socket), not the relay itself; first error: ${firstError}`
            : firstError
              ? `the first error (${firstError})`
              : `the ${webSocketSeconds} s time limit`;
    const note = `${connected} reached "ready" (${failed} failed); the relay holds ${after.sockets} sockets (${memory}${fdLimit}); stopped by ${stoppedBy}`;
    runner.recordValue({ ...meta, note }, { median: connected, min: connected, max: connected, samples: 1 });
  } catch (e) {
    runner.failed(
      meta,
      new Error(`${e instanceof Error ? e.message : String(e)}${stderr.length ? `; stderr: ${stderr.join('').slice(-600)}` : ''}`),
    );
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.connected) c.send({ type: 'close' });
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  }
}
