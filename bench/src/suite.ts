/**
 * The suite: which scenarios run, in which order, for a profile. Used by the
 * CLI (main.ts) and by the in-process quick test. Issue 5.
 *
 * Sections run one after another in one process (never in parallel: they
 * would time each other). Peers come right after our one-to-one rows so the
 * figures that are compared as ratios are taken close together in time.
 */
import { arch, cpus, loadavg, platform } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type Breakdown, runBreakdowns } from './breakdown.ts';
import { runFloor } from './floor.ts';
import { groupScenarioSources, runParleyGroups } from './parley/groups.ts';
import { runParleyOneToOne } from './parley/one-to-one.ts';
import { runPeers } from './peers/index.ts';
import { runRelay } from './relay.ts';
import type { RunReport, Section } from './results.ts';
import { FULL, QUICK, Runner } from './runner.ts';

export interface SuiteOptions {
  readonly quick: boolean;
  readonly sections: readonly Section[];
  readonly log: (line: string) => void;
}

export async function runSuite(options: SuiteOptions): Promise<RunReport> {
  const runner = new Runner(options.quick ? QUICK : FULL, options.log);
  const breakdowns: Breakdown[] = [];
  const order: readonly [Section, () => Promise<void>][] = [
    ['one-to-one', () => runParleyOneToOne(runner)],
    ['peers', () => runPeers(runner)],
    ['groups', () => runParleyGroups(runner)],
    ['floor', () => runFloor(runner)],
    ['breakdown', async () => void breakdowns.push(...(await runBreakdowns(runner, groupScenarioSources)))],
    ['relay', () => runRelay(runner)],
  ];

  const startedAt = new Date();
  const started = performance.now();
  const selected = order.filter(([s]) => options.sections.includes(s));
  runner.progress(`profile ${runner.profile.name}: ${selected.map(([s]) => s).join(', ')}`);
  for (const [index, [section, run]] of selected.entries()) {
    runner.progress(`== section ${index + 1}/${selected.length}: ${section}`);
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
    sections: selected.map(([s]) => s),
    results: runner.results,
    breakdowns,
  };
}
