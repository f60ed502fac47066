/**
 * The floor is only a floor if it does the same primitive work as the Parley
 * operation it stands beside. This runs each floor composite and the
 * matching Parley operation once on counting backends and compares the
 * calls, so a change in core's primitive use (or in floor.ts) that breaks
 * the mirror shows up here rather than as a silently wrong ratio.
 */
import { cryptoProvider } from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import { describe, expect, it } from 'vitest';
import { instrument } from '../src/breakdown.ts';
import { floorComposites } from '../src/floor.ts';
import { oneToOneScenarios } from '../src/parley/one-to-one.ts';
import type { Task } from '../src/harness.ts';

async function callsOf(task: Task<unknown>, stats: Map<string, { calls: number; micros: number }>): Promise<Record<string, number>> {
  const ctx = await task.prepare?.(1);
  for (const s of stats.values()) s.calls = 0;
  await task.run(ctx, 0);
  return Object.fromEntries([...stats].filter(([, s]) => s.calls > 0).map(([m, s]) => [m, s.calls]));
}

describe('floor composites mirror Parley operations', () => {
  const floorSide = instrument(nodeBackend);
  const parleySide = instrument(nodeBackend);
  const composites = floorComposites(floorSide.backend, true);
  const scenarios = [...oneToOneScenarios(cryptoProvider(parleySide.backend), true)];

  it.each(composites.map((c) => [c.op, c] as const))('%s makes the same primitive calls', async (op, composite) => {
    const scenario = scenarios.find((s) => s.meta.op === op);
    expect(scenario, `no Parley scenario for floor op ${op}`).toBeDefined();
    const parley = await callsOf(scenario?.task as Task<unknown>, parleySide.stats);
    const floor = await callsOf(composite.task as Task<unknown>, floorSide.stats);
    expect(floor).toEqual(parley);
  });
});
