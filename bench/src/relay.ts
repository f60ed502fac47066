/**
 * The relay rows. Issue 5 §4 and issue 15: envelopes per second accepted
 * (1 KiB, durable before answered) by signed HTTP sends (autocannon) and by
 * send frames on authenticated websockets (`-ws` rows), and send-to-websocket
 * delivery latency at half that rate, median and p99, with SQLite storage, from the relay team's
 * `runRelayLoad` (relay/load.ts, which runs the relay as
 * its own process with durable commits); then how many websocket
 * connections one relay process holds (relay/capacity.ts).
 *
 * These are single runs, not medians of samples: each is a sustained load
 * of several seconds, so min and max equal the figure.
 */
import { type RelayLoadResult, type SendMode, runRelayLoad } from './relay/load.ts';
import { PHASES, runRelayUnderAttack } from './relay/attack.ts';
import { measureWebSocketCapacity } from './relay/capacity.ts';
import { measureFanout } from './relay/fanout.ts';
import { runMultiProcess } from './relay/multi-process.ts';
import { benchDatabaseUrl } from './relay/postgres-measures.ts';
import type { ResultMeta } from './results.ts';
import type { Runner } from './runner.ts';

const once = (v: number) => ({ median: v, min: v, max: v, samples: 1 });

/**
 * The websocket-mode run: every envelope its own send frame (no batching), 8 frames in flight per
 * sender device, so the figure is per envelope as an app sending one message at a time produces it.
 */
const WS_LOAD = { batch: 1, window: 8 } as const;

export async function runRelay(runner: Runner): Promise<void> {
  await measureLoad(runner, 'http');
  await measureLoad(runner, 'ws');
  await measureWebSocketCapacity(runner);
  // Issue 15: one group message to a large group, per device and as one fan-out stored once.
  await measureFanout(runner);
  await measureMultiProcess(runner);
  // Issue 12: the same legitimate traffic with no attack and under attacks 1-4 (full runs only: about a minute).
  if (!runner.quick) await measureUnderAttack(runner);
}

async function measureUnderAttack(runner: Runner): Promise<void> {
  const metas = PHASES.flatMap((phase) => [
    {
      section: 'relay' as const,
      subject: 'relay' as const,
      op: `relay-attack-${phase}-rate`,
      label: `legitimate envelopes/s delivered, attack: ${phase} (8 closed-loop senders, 1 KiB)`,
      unit: 'per-second' as const,
    },
    {
      section: 'relay' as const,
      subject: 'relay' as const,
      op: `relay-attack-${phase}-p99`,
      label: `legitimate send → websocket delivery p99, attack: ${phase}`,
      unit: 'ms' as const,
    },
  ]);
  runner.progress('relay: legitimate traffic with no attack, then under attacks 1-4 (relay/attack.ts)');
  try {
    const r = await runRelayUnderAttack({ phaseSeconds: 6 });
    for (const p of r.phases) {
      const note = `${p.ofBaseline}% of the no-attack rate, ${p.errors} errors, relay CPU ${p.relayCpuPerSecond} s/s; load average ${r.loadAverage} at the end`;
      runner.recordValue(
        { ...(metas.find((m) => m.op === `relay-attack-${p.attack}-rate`) as ResultMeta), note },
        once(p.envelopesPerSecond),
      );
      runner.recordValue({ ...(metas.find((m) => m.op === `relay-attack-${p.attack}-p99`) as ResultMeta), note }, once(p.deliveryMs.p99));
    }
  } catch (e) {
    for (const meta of metas) runner.failed(meta, e);
  }
}

/** Issue 15: three relay processes on one PostgreSQL database under load, one killed half-way (relay/multi-process.ts). */
async function measureMultiProcess(runner: Runner): Promise<void> {
  const throughput: ResultMeta = {
    section: 'relay',
    subject: 'relay',
    op: 'relay-pg3-envelopes',
    label: 'envelopes/s, 3 relay processes on one PostgreSQL (48 closed-loop senders, 1 KiB)',
    unit: 'per-second',
  };
  const p99: ResultMeta = {
    section: 'relay',
    subject: 'relay',
    op: 'relay-pg3-latency-p99',
    label: 'send → websocket delivery p99, 3 processes on PostgreSQL',
    unit: 'ms',
  };
  const databaseUrl = benchDatabaseUrl();
  const skip = runner.quick
    ? 'full runs only (three relay processes, 10 s of load and a kill -9)'
    : databaseUrl
      ? null
      : 'needs a PostgreSQL database: set PARLEY_BENCH_POSTGRES_URL (the bench creates and drops its own schema)';
  if (skip) {
    for (const meta of [throughput, p99]) runner.notMeasured(meta, skip);
    return;
  }
  runner.progress('relay: 3 relay processes on one PostgreSQL database, 10 s of load, one killed with SIGKILL at 5 s');
  try {
    const r = await runMultiProcess({ databaseUrl: databaseUrl as string, seconds: 10 });
    if (r.lost > 0 || r.storedTwice > 0) {
      throw new Error(`kill -9: ${r.lost} acknowledged envelopes lost, ${r.storedTwice} stored twice`);
    }
    const note = `${r.envelopesPerSecondBeforeKill}/s with all 3 up, ${r.envelopesPerSecond}/s over the run; kill -9 of one at 5 s: ${r.failedOver} sends retried elsewhere, 0 lost, 0 stored twice, ${r.redelivered} redelivered; CPU per envelope: relays ${r.cpuPerEnvelopeUs.relays} µs, PostgreSQL ${r.cpuPerEnvelopeUs.postgres} µs (server-wide), ${r.transactionsPerEnvelope} transactions; load average ${r.loadAverage} at the end`;
    runner.recordValue({ ...throughput, note }, once(r.envelopesPerSecondBeforeKill));
    runner.recordValue(
      {
        ...p99,
        note: `${r.deliveryMs.samples} envelopes before the kill, median ${r.deliveryMs.median} ms; p99 over the whole run ${r.deliveryMs.p99WholeRun} ms`,
      },
      once(r.deliveryMs.p99),
    );
  } catch (e) {
    for (const meta of [throughput, p99]) runner.failed(meta, e);
  }
}

async function measureLoad(runner: Runner, mode: SendMode): Promise<void> {
  const { loadSeconds, connections } = runner.profile.relay;
  const suffix = mode === 'http' ? '' : '-ws';
  const how =
    mode === 'http'
      ? `${connections} concurrent HTTP senders, one signed POST each`
      : `32 senders on websockets, one envelope per send frame, ${WS_LOAD.window} frames in flight each`;
  const throughput: ResultMeta = {
    section: 'relay',
    subject: 'relay',
    op: `relay-envelopes${suffix}`,
    label: `envelopes/s accepted (1 KiB, ${how})`,
    unit: 'per-second',
  };
  const p50: ResultMeta = {
    section: 'relay',
    subject: 'relay',
    op: `relay-latency${suffix}-p50`,
    label: `send → websocket delivery at half the full rate, median (${mode === 'http' ? 'HTTP' : 'websocket'} sends)`,
    unit: 'ms',
  };
  const p99: ResultMeta = {
    section: 'relay',
    subject: 'relay',
    op: `relay-latency${suffix}-p99`,
    label: `send → websocket delivery at half the full rate, p99 (${mode === 'http' ? 'HTTP' : 'websocket'} sends)`,
    unit: 'ms',
  };

  runner.progress(`relay: load test (${mode}), ${loadSeconds} s of 1 KiB envelopes, then delivery latency at half that rate`);
  let r: RelayLoadResult | null = null;
  try {
    r = await runRelayLoad({
      mode,
      durationSeconds: loadSeconds,
      connections,
      senders: runner.quick ? 4 : 32,
      recipients: runner.quick ? 2 : 16,
      envelopeBytes: 1024,
      halfRateSeconds: runner.quick ? 1 : 5,
      ...(runner.quick ? { latencySamples: 100 } : {}),
      ...(mode === 'ws' ? WS_LOAD : {}),
    });
  } catch (e) {
    for (const meta of [throughput, p50, p99]) runner.failed(meta, e);
  }
  if (!r) return;
  const machine = `load average ${r.loadAverage} at the end`;
  runner.recordValue(
    {
      ...throughput,
      note: `${r.accepted} committed in ${r.durationSeconds} s, ${r.errors} errors; send ${mode === 'http' ? 'request' : 'frame'} answered in median ${r.sendLatencyMs.median} ms, p99 ${r.sendLatencyMs.p99} ms under this load; ${r.relay.meanWritesPerCommit} writes per group commit, ${r.relay.meanCommitMs} ms each; relay CPU ${r.relay.cpuSeconds} s; ${machine}`,
    },
    once(r.envelopesPerSecond),
  );
  const latencyNote = `${r.deliveryLatencyMs.samples} envelopes sent open-loop at ${r.halfRate.achieved}/s (half the full rate), committed before delivery; at full rate (sampled): median ${r.deliveryAtFullRateMs.median} ms, p99 ${r.deliveryAtFullRateMs.p99} ms`;
  runner.recordValue({ ...p50, note: latencyNote }, once(r.deliveryLatencyMs.median));
  runner.recordValue({ ...p99, note: latencyNote }, once(r.deliveryLatencyMs.p99));
}
