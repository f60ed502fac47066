/**
 * Where the time goes: runs Parley operations on an instrumented copy of a
 * backend that counts and times every primitive call, and splits each
 * operation's time into primitive families and "protocol code" (everything
 * that is not a backend call: CBOR, validation, state copies, padding).
 * Issue 5 ("the closing note says what costs the time (profile it)").
 *
 * The wrapper adds a timer read around each call, so the totals here run a
 * little above the plain figures; the shares are what to read. Times are
 * wall clock (a CPU-time read per call would cost more than the calls).
 */
import { performance } from 'node:perf_hooks';
import { type CryptoBackend, type CryptoProvider, cryptoProvider, nobleBackend } from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import type { Backend } from './parley/fixtures.ts';
import { oneToOneScenarios, type Scenario } from './parley/one-to-one.ts';
import { ratchetV2Scenarios } from './parley/ratchet-v2.ts';
// The shapes live in results.ts: they are part of the results file, and
// results.ts importing them from here closed a cycle through runner.ts.
import { type Breakdown, type CallStats, FAMILIES, type Family } from './results.ts';
import type { Runner } from './runner.ts';

const FAMILY_OF: Record<string, Family> = {
  x25519PublicKey: 'X25519',
  x25519: 'X25519',
  ed25519PublicKey: 'Ed25519',
  ed25519Sign: 'Ed25519',
  ed25519Verify: 'Ed25519',
  mlkemKeygen: 'ML-KEM',
  mlkemEncapsulate: 'ML-KEM',
  mlkemDecapsulate: 'ML-KEM',
  hmacSha256: 'HMAC',
  hkdfSha256: 'HKDF',
  sha256: 'SHA',
  sha512: 'SHA',
  aeadSeal: 'AEAD',
  aeadOpen: 'AEAD',
  randomBytes: 'random',
};

/** A backend that delegates every call and records its count and time. */
export function instrument(backend: CryptoBackend): { backend: CryptoBackend; stats: Map<string, CallStats> } {
  const stats = new Map<string, CallStats>();
  const wrapped: Record<string, unknown> = { name: `${backend.name}+timed` };
  for (const [key, value] of Object.entries(backend)) {
    if (typeof value !== 'function') continue;
    const entry: CallStats = { calls: 0, micros: 0 };
    stats.set(key, entry);
    wrapped[key] = (...args: unknown[]) => {
      const start = performance.now();
      try {
        return (value as (...a: unknown[]) => unknown).apply(backend, args);
      } finally {
        entry.micros += (performance.now() - start) * 1000;
        entry.calls++;
      }
    };
  }
  return { backend: wrapped as unknown as CryptoBackend, stats };
}

/**
 * Runs `rounds` batches of `iterations` and keeps the fastest batch: on a
 * shared machine a batch that was interrupted by other work is slower as a
 * whole, and its interruptions land on whichever call was running, so the
 * least-disturbed batch gives the truest split.
 */
async function breakdownOf(
  scenario: Scenario,
  stats: Map<string, CallStats>,
  iterations: number,
  rounds: number,
  backend: Backend,
): Promise<Breakdown> {
  const task = scenario.task;
  // Warm up (JIT, key caches), then count only the measured batches.
  const warmups = Math.max(1, Math.floor(iterations / 4));
  const warm = await task.prepare?.(warmups);
  for (let i = 0; i < warmups; i++) await task.run(warm, i);

  let best: { totalMicros: number; snapshot: [string, CallStats][] } | null = null;
  for (let r = 0; r < rounds; r++) {
    const ctx = await task.prepare?.(iterations);
    for (const s of stats.values()) {
      s.calls = 0;
      s.micros = 0;
    }
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await task.run(ctx, i);
    const totalMicros = ((performance.now() - start) * 1000) / iterations;
    if (!best || totalMicros < best.totalMicros) {
      best = { totalMicros, snapshot: [...stats].map(([m, s]): [string, CallStats] => [m, { ...s }]) };
    }
  }
  const { totalMicros, snapshot } = best as NonNullable<typeof best>;

  const methods: Record<string, CallStats> = {};
  const families = Object.fromEntries(FAMILIES.map((f) => [f, 0])) as Record<Family, number>;
  let inBackend = 0;
  for (const [method, s] of snapshot) {
    if (s.calls === 0) continue;
    methods[method] = { calls: s.calls / iterations, micros: s.micros / iterations };
    const family = FAMILY_OF[method];
    if (family) families[family] += s.micros / iterations;
    inBackend += s.micros / iterations;
  }
  return {
    op: scenario.meta.op,
    label: scenario.meta.label,
    backend,
    totalMicros,
    methods,
    families,
    protocolMicros: Math.max(0, totalMicros - inBackend),
  };
}

/** Ops worth explaining: the ones compared against peers (ratchet v2's too). */
const OPS = new Set(['setup', 'same-direction-100', 'ping-pong', 'skipped-1000', 'v2-ping-pong', 'v2-same-direction-100']);

export async function runBreakdowns(
  runner: Runner,
  extra: readonly ((provider: CryptoProvider, quick: boolean) => Iterable<Scenario>)[] = [],
): Promise<Breakdown[]> {
  const out: Breakdown[] = [];
  for (const backend of ['node', 'noble'] as const) {
    const timed = instrument(backend === 'node' ? nodeBackend : nobleBackend);
    const provider = cryptoProvider(timed.backend);
    const sources = [
      oneToOneScenarios(provider, runner.quick),
      ratchetV2Scenarios(provider),
      ...extra.map((make) => make(provider, runner.quick)),
    ];
    for (const source of sources) {
      for (const scenario of source) {
        if (!OPS.has(scenario.meta.op) && !scenario.meta.op.startsWith('group-message')) continue;
        const heavy = scenario.meta.op === 'setup' || scenario.meta.op === 'skipped-1000';
        const iterations = runner.quick ? (heavy ? 3 : 50) : heavy ? (backend === 'noble' ? 5 : 20) : 500;
        try {
          const b = await breakdownOf(scenario, timed.stats, iterations, runner.quick ? 2 : 7, backend);
          out.push(b);
          const top = FAMILIES.filter((f) => b.families[f] > 0)
            .sort((x, y) => b.families[y] - b.families[x])
            .slice(0, 3)
            .map((f) => `${f} ${Math.round((b.families[f] / b.totalMicros) * 100)}%`);
          runner.progress(
            `breakdown  parley (${backend})${' '.repeat(22 - 9 - backend.length)} ${scenario.meta.label.padEnd(48)} protocol code ${Math.round((b.protocolMicros / b.totalMicros) * 100)}%, ${top.join(', ')}`,
          );
        } catch (e) {
          runner.progress(`breakdown  ${scenario.meta.op} (${backend}) failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
  }
  return out;
}
