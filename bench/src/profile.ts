/**
 * CPU profile of one Parley operation: runs it in a loop under V8's sampling
 * profiler (through node:inspector, so no extra flags are needed) and prints
 * the functions with the most self time, grouped by where they live. Issue 5
 * ("profile it"): the companion of breakdown.ts, which splits time by
 * primitive; this one shows which protocol code costs what.
 *
 *   node --import tsx bench/src/profile.ts <op> [node|noble] [seconds]
 *   e.g. node --import tsx bench/src/profile.ts same-direction-100 node 3
 *        node --import tsx bench/src/profile.ts v2-same-direction-100 node 3   (ratchet v2)
 *
 * Writes the raw profile to the system temp directory as
 * parley-profile-<op>-<backend>.cpuprofile
 * (open it in Chrome DevTools for a flame chart).
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Backend, providerFor } from './parley/fixtures.ts';
import { groupScenarioSources } from './parley/groups.ts';
import { oneToOneScenarios } from './parley/one-to-one.ts';
import { ratchetV2Scenarios } from './parley/ratchet-v2.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a function lives, shortened: our packages by path, dependencies by package name. */
function place(url: string): string {
  if (!url) return '(native/V8)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
    return `${pkg} ${rest[rest.length - 1] ?? ''}`.trim();
  }
  const pk = url.indexOf('/packages/');
  if (pk >= 0) return url.slice(pk + 1);
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

export function summarize(profile: Profile, top = 25): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const where = place(n.callFrame.url);
    const name = `${n.callFrame.functionName || '(anonymous)'}  ${where}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byPlace.set(where, (byPlace.get(where) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
  const lines = ['Self time by place:'];
  for (const [k, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 15)) lines.push(`  ${pct(us)}  ${k}`);
  lines.push('', `Top ${top} functions by self time:`);
  for (const [k, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(us)}  ${k}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const [op = 'same-direction-100', backendArg = 'node', secondsArg = '3'] = process.argv.slice(2);
  const backend = backendArg as Backend;
  if (backend !== 'node' && backend !== 'noble') throw new Error(`backend must be node or noble, got ${backendArg}`);
  const provider = providerFor(backend);
  const sources = [
    oneToOneScenarios(provider, false),
    ratchetV2Scenarios(provider),
    ...groupScenarioSources.map((make) => make(provider, false)),
  ];
  let scenario = null;
  for (const source of sources) {
    for (const s of source) {
      if (s.meta.op === op) {
        scenario = s;
        break;
      }
    }
    if (scenario) break;
  }
  if (!scenario) throw new Error(`no Parley scenario "${op}"`);

  // Contexts are prepared before profiling starts (fresh prekeys, record copies), so the profile shows the operation only.
  const batch = 50;
  const task = scenario.task;
  const runBatch = async (ctx: unknown) => {
    for (let i = 0; i < batch; i++) await task.run(ctx, i);
  };
  for (let w = 0; w < 3; w++) await runBatch(await task.prepare?.(batch)); // warm-up, not profiled
  const probeStart = performance.now();
  await runBatch(await task.prepare?.(batch));
  const perBatchMs = Math.max(0.01, performance.now() - probeStart);
  const batches = Math.max(1, Math.min(2000, Math.ceil((Number(secondsArg) * 1000) / perBatchMs)));
  const contexts: unknown[] = [];
  for (let b = 0; b < batches; b++) contexts.push(await task.prepare?.(batch));

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  for (const ctx of contexts) await runBatch(ctx);
  const ops = batches * batch;
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
  session.disconnect();

  const out = join(tmpdir(), `parley-profile-${op}-${backend}.cpuprofile`);
  await writeFile(out, JSON.stringify(profile));
  process.stdout.write(
    `${op} on ${backend}: ${ops} operations profiled (their preparation was not)\n${summarize(profile)}\nraw profile: ${out}\n`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
