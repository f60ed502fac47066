/**
 * End-to-end fuzzer for the client's receive path (issue 11).
 *
 * Two hostile accounts (one shares a group with the victim, one is a
 * stranger) send seeded hostile inputs (test/support/hostile.ts) to a real
 * ParleyClient through the fake relay: raw envelope bytes, mutated session
 * messages, any plaintext on real sessions and group chains, Contents and
 * group states with out-of-range fields, replayed first-contact handshakes.
 * After every batch an honest friend sends a message, which must arrive with
 * nothing left unacknowledged; the victim restarts on its store twice.
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

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const scene = await ReceiveScene.create();
  const kinds: Partial<Record<HostileKind, number>> = {};
  let stuck = 0;
  let probes = 0;
  let restarts = 0;
  const restartAt = new Set([Math.floor(options.inputs / 3), Math.floor((2 * options.inputs) / 3)]);
  const probe = async () => {
    probes++;
    try {
      await scene.probe(30_000);
    } catch {
      // A probe that never arrived: count what is left on the relay (at least one: the probe itself).
      stuck += Math.max(1, scene.stuck);
    }
  };
  try {
    for (let i = 0; i < options.inputs; i++) {
      const who = i % 2;
      const attacker = scene.attackers[who];
      const target = scene.targets[who];
      if (!attacker || !target) throw new Error('the scene has two attackers');
      const kind = await sendHostile(attacker, target, (options.seed + i * 0x9e3779b1) >>> 0, scene.firstContacts[who] ?? null);
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      if ((i + 1) % options.batch === 0 || i + 1 === options.inputs) {
        await probe();
        options.log?.(`${i + 1} inputs, untyped ${scene.tally.untyped}, stuck ${stuck}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
      if (restartAt.has(i + 1)) {
        await scene.restart();
        restarts++;
        await probe();
      }
    }
  } finally {
    await scene.close();
  }
  return {
    inputs: options.inputs,
    seed: options.seed,
    untyped: scene.tally.untyped,
    stuck,
    probes,
    restarts,
    refused: scene.tally.refused,
    warnings: scene.tally.warnings,
    listenerErrors: scene.tally.listenerErrors,
    kinds,
    codes: Object.fromEntries([...scene.tally.codes].sort((a, b) => b[1] - a[1])),
    seconds: (Date.now() - started) / 1000,
  };
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
