/**
 * End-to-end fuzzer for the client's receive path (issue 11).
 *
 * Two hostile accounts (one shares a group with the victim, one is a
 * stranger) send seeded hostile inputs (test/support/hostile.ts) to a real
 * ParleyClient through the fake relay: raw envelope bytes, mutated session
 * messages, any plaintext on real sessions and group chains, Contents and
 * group states with out-of-range fields, replayed first-contact handshakes.
 * After every batch an honest friend sends a message, which must arrive with
 * nothing left unacknowledged; the victim restarts on its store twice per
 * round of 2,500 inputs, and each round starts a fresh scene.
 *
 * Reports two numbers that must both be 0:
 *   untyped  refusals whose code is INTERNAL (an untyped error reached the boundary)
 *   stuck    envelopes still on the relay after a probe (or probes that never arrived)
 *
 *   npm run fuzz                        long mode: 100,000 inputs
 *   npm run fuzz -- --inputs 2000       any count; --seed N to reproduce a run; --batch N
 *
 * The short mode runs in CI as test/adversarial/receive-fuzz.test.ts.
 */
import { pathToFileURL } from 'node:url';
import { type HostileKind, sendHostile } from '../test/support/hostile.ts';
import { ReceiveScene } from '../test/support/receive-scene.ts';

export interface FuzzOptions {
  readonly inputs: number;
  readonly seed: number;
  /** Inputs between two probes (a legitimate message that must arrive). */
  readonly batch: number;
  readonly log?: (line: string) => void;
}

export interface FuzzReport {
  readonly inputs: number;
  readonly seed: number;
  readonly untyped: number;
  readonly stuck: number;
  readonly probes: number;
  readonly restarts: number;
  readonly refused: number;
  readonly warnings: number;
  readonly listenerErrors: number;
  readonly kinds: Record<string, number>;
  readonly codes: Record<string, number>;
  readonly seconds: number;
}

/**
 * Inputs per scene. A hostile peer can grow the victim's session record with
 * it to core's bounds (41 sessions, 2000 skipped keys each, 04 §6) and every
 * message rewrites it, so one long run slows down to that bound; fresh scenes
 * keep the throughput up while each still sees thousands of inputs.
 */
const ROUND_INPUTS = 2_500;

interface Counters {
  stuck: number;
  probes: number;
  restarts: number;
  refused: number;
  warnings: number;
  untyped: number;
  listenerErrors: number;
  readonly kinds: Partial<Record<HostileKind, number>>;
  readonly codes: Map<string, number>;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const c: Counters = {
    stuck: 0,
    probes: 0,
    restarts: 0,
    refused: 0,
    warnings: 0,
    untyped: 0,
    listenerErrors: 0,
    kinds: {},
    codes: new Map(),
  };
  for (let first = 0; first < options.inputs; first += ROUND_INPUTS) {
    await runRound(options, first, Math.min(options.inputs, first + ROUND_INPUTS), c, started);
  }
  return {
    inputs: options.inputs,
    seed: options.seed,
    untyped: c.untyped,
    stuck: c.stuck,
    probes: c.probes,
    restarts: c.restarts,
    refused: c.refused,
    warnings: c.warnings,
    listenerErrors: c.listenerErrors,
    kinds: c.kinds,
    codes: Object.fromEntries([...c.codes].sort((a, b) => b[1] - a[1])),
    seconds: (Date.now() - started) / 1000,
  };
}

/** Inputs `first`..`end - 1` on a fresh scene, with a restart at a third and at two thirds. */
async function runRound(options: FuzzOptions, first: number, end: number, c: Counters, started: number): Promise<void> {
  const scene = await ReceiveScene.create();
  const n = end - first;
  const restartAt = new Set([first + Math.floor(n / 3), first + Math.floor((2 * n) / 3)]);
  const probe = async () => {
    c.probes++;
    try {
      await scene.probe(30_000);
    } catch {
      // A probe that never arrived: count what is left on the relay (at least one: the probe itself).
      c.stuck += Math.max(1, scene.stuck);
    }
  };
  try {
    for (let i = first; i < end; i++) {
      const who = i % 2;
      const attacker = scene.attackers[who];
      const target = scene.targets[who];
      if (!attacker || !target) throw new Error('the scene has two attackers');
      const kind = await sendHostile(attacker, target, (options.seed + i * 0x9e3779b1) >>> 0, scene.firstContacts[who] ?? null);
      c.kinds[kind] = (c.kinds[kind] ?? 0) + 1;
      if ((i + 1) % options.batch === 0 || i + 1 === end) {
        await probe();
        options.log?.(
          `${i + 1} inputs, untyped ${c.untyped + scene.tally.untyped}, stuck ${c.stuck}, ${((Date.now() - started) / 1000).toFixed(0)} s`,
        );
      }
      if (restartAt.has(i + 1)) {
        await scene.restart();
        c.restarts++;
        await probe();
      }
    }
  } finally {
    await scene.close();
    c.untyped += scene.tally.untyped;
    c.refused += scene.tally.refused;
    c.warnings += scene.tally.warnings;
    c.listenerErrors += scene.tally.listenerErrors;
    for (const [code, count] of scene.tally.codes) c.codes.set(code, (c.codes.get(code) ?? 0) + count);
  }
}

function argument(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`--${name} expects a non-negative integer`);
  return v;
}

async function main(): Promise<void> {
  const options: FuzzOptions = {
    inputs: argument('inputs', 100_000),
    seed: argument('seed', Date.now() % 0xffffffff),
    batch: argument('batch', 500),
    log: (line) => process.stderr.write(`${line}\n`),
  };
  const report = await runFuzz(options);
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.exitCode = report.untyped === 0 && report.stuck === 0 && report.listenerErrors === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 2;
  });
}
