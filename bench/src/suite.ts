/**
 * The suite: which scenarios run, in which order, for a profile. Used by the
 * CLI (main.ts) and by the in-process quick test. Issue 5.
 *
 * Two stages:
 *  1. Compared operations. Every figure that appears in a ratio (Parley on
 *     both backends, the floor composites, olm, libsignal-client,
 *     privacyresearch) is gathered by operation and timed interleaved, one
 *     sample of each in turn, so the load other work puts on this shared
 *     machine falls on all of them alike.
 *  2. Everything else, one after another: the single primitives, ts-mls,
 *     Parley's group membership changes, the time breakdown, the relay.
 * Nothing runs in parallel: concurrent measurements would time each other.
 */
import { arch, cpus, loadavg, platform } from 'node:os';
import { performance } from 'node:perf_hooks';
import { runBreakdowns } from './breakdown.ts';
import { floorEntries, runFloorPrimitives } from './floor.ts';
import { groupMessageEntries, groupScenarioSources, runParleyMembership } from './parley/groups.ts';
import { parleyOneToOneEntries } from './parley/one-to-one.ts';
import { peerEntries, runTsMlsPeer } from './peers/index.ts';
import type { PeerSet } from './peers/types.ts';
import { runV2Bytes, v2Entries } from './parley/v2.ts';
import { runRelay } from './relay.ts';
import type { Breakdown, RunReport, Section } from './results.ts';
import { type Entry, FULL, QUICK, Runner } from './runner.ts';

export interface SuiteOptions {
  readonly quick: boolean;
  readonly sections: readonly Section[];
  readonly log: (line: string) => void;
}

/** Operation families in the order they are compared (a family holds every size of a group op). */
const FAMILY_ORDER = [
  'setup',
  'same-direction-100',
  'same-direction-1024',
  'ping-pong',
  'skipped-1000',
  'serialize',
  'deserialize',
  'group-message',
  // The v2 section's own families (issues 16, 17, 19).
  'sealed-1to1',
  'sealed-group@100',
  'sealed-group@1000',
  'franking-tag',
  'franking-group',
  'report-verify',
  'relay-frank',
  'v2-forged-header-current',
  'v2-forged-header-full',
  'v2-rs-decode-ek',
  'v2-rs-decode-ct',
];

const familyOf = (e: Entry) => e.family ?? (e.meta.op.split('@')[0] as string);

async function runCompared(runner: Runner, sections: readonly Section[]): Promise<void> {
  const entries: Entry[] = [];
  let peers: PeerSet | null = null;
  let v2: Awaited<ReturnType<typeof v2Entries>> | null = null;
  if (sections.includes('one-to-one')) entries.push(...parleyOneToOneEntries(runner.quick));
  if (sections.includes('groups')) entries.push(...groupMessageEntries(runner));
  if (sections.includes('floor')) entries.push(...floorEntries(runner.quick));
  if (sections.includes('peers')) {
    peers = await peerEntries(runner);
    entries.push(...peers.entries);
  }
  if (sections.includes('v2')) {
    v2 = await v2Entries(runner, sections);
    entries.push(...v2.entries);
  }
  try {
    const families = [...new Set(entries.map(familyOf))].sort(
      (a, b) => (FAMILY_ORDER.indexOf(a) + 1 || 99) - (FAMILY_ORDER.indexOf(b) + 1 || 99),
    );
    for (const family of families) {
      const group = entries.filter((e) => familyOf(e) === family);
      runner.progress(`-- ${family}: ${group.length} figures, samples interleaved`);
      await runner.timeTogether(group);
    }
  } finally {
    peers?.dispose?.();
    await v2?.dispose();
  }
}

export async function runSuite(options: SuiteOptions): Promise<RunReport> {
  const runner = new Runner(options.quick ? QUICK : FULL, options.log);
  const sections = options.sections;
  const breakdowns: Breakdown[] = [];
  const stages: [string, () => Promise<void>][] = [];
  if (sections.some((s) => s === 'one-to-one' || s === 'groups' || s === 'floor' || s === 'peers' || s === 'v2')) {
    stages.push(['compared operations (interleaved)', () => runCompared(runner, sections)]);
  }
  if (sections.includes('v2')) stages.push(['v2: bytes per message', () => runV2Bytes(runner)]);
  if (sections.includes('floor')) stages.push(['floor: single primitives', () => runFloorPrimitives(runner)]);
  if (sections.includes('peers')) stages.push(['peers: ts-mls groups', () => runTsMlsPeer(runner)]);
  if (sections.includes('groups')) stages.push(['groups: Parley membership changes', () => runParleyMembership(runner)]);
  if (sections.includes('breakdown')) {
    stages.push(['breakdown', async () => void breakdowns.push(...(await runBreakdowns(runner, groupScenarioSources)))]);
  }
  if (sections.includes('relay')) stages.push(['relay', () => runRelay(runner)]);

  const startedAt = new Date();
  const started = performance.now();
  runner.progress(`profile ${runner.profile.name}: ${sections.join(', ')}`);
  for (const [index, [name, run]] of stages.entries()) {
    runner.progress(`== stage ${index + 1}/${stages.length}: ${name}`);
    await run();
  }
  const cpuList = cpus();
  return {
    version: 1,
    profile: runner.profile.name,
    startedAt: startedAt.toISOString(),
    durationSeconds: Math.round((performance.now() - started) / 100) / 10,
    machine: {
      node: process.version,
      platform: platform(),
      arch: arch(),
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
      loadAverage: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    sections: [...sections],
    results: runner.results,
    breakdowns,
  };
}
