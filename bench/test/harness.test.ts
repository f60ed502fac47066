import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { measure, measureInterleaved, median, quantile } from '../src/harness.ts';

const options = { warmupSamples: 1, samples: 5, minSamples: 3, targetSampleMs: 1, maxIterations: 50, budgetMs: 2_000 };

describe('median and quantile', () => {
  it('takes the middle value, or the mean of the two middle values', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('picks percentiles by nearest rank', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
    expect(quantile(values, 0.5)).toBe(50);
    expect(quantile(values, 0.99)).toBe(99);
    expect(quantile(values, 1)).toBe(100);
    expect(() => quantile(values, 1.5)).toThrow(RangeError);
  });
});

describe('measure', () => {
  it('prepares each sample untimed and runs the body once per iteration', async () => {
    const prepared: number[] = [];
    let runs = 0;
    const stats = await measure(
      {
        prepare: (n) => {
          prepared.push(n);
          return Array.from({ length: n }, (_, i) => i);
        },
        run(ctx, i) {
          if (ctx[i] !== i) throw new Error('context does not match the iteration');
          runs++;
        },
      },
      options,
    );
    expect(stats.samples).toBe(5);
    expect(stats.iterations).toBeGreaterThanOrEqual(1);
    expect(stats.iterations).toBeLessThanOrEqual(options.maxIterations);
    // probe (1) + warm-up + 5 samples, each prepared for exactly the iterations it ran
    expect(prepared.length).toBe(1 + 1 + 5);
    expect(runs).toBe(prepared.reduce((a, b) => a + b, 0));
    expect(stats.min).toBeLessThanOrEqual(stats.median);
    expect(stats.median).toBeLessThanOrEqual(stats.max);
  });

  it('awaits async bodies, so their wall time is counted, but not as CPU time', async () => {
    const stats = await measure(
      { async: true, run: () => new Promise((resolve) => setTimeout(resolve, 2)) },
      { ...options, maxIterations: 2, samples: 3 },
    );
    // A 2 ms timer cannot complete in under 1 ms: if the promise were not awaited this would be ~0.
    expect(stats.wall.median).toBeGreaterThan(1000);
    // Waiting on a timer costs almost no CPU.
    expect(stats.median).toBeLessThan(stats.wall.median / 2);
  });

  it('counts busy work as CPU time', async () => {
    const stats = await measure(
      {
        run() {
          // Spin until this process has used 1 ms of CPU (however long that takes on a busy machine).
          const start = process.cpuUsage();
          while (process.cpuUsage(start).user + process.cpuUsage(start).system < 1000) {
            // busy
          }
        },
      },
      { ...options, maxIterations: 3, samples: 3 },
    );
    expect(stats.median).toBeGreaterThanOrEqual(1000);
    expect(stats.median).toBeLessThan(5000);
  });

  it('stops sampling at the budget but keeps the minimum number of samples', async () => {
    const stats = await measure(
      { run: () => new Promise((resolve) => setTimeout(resolve, 5)), async: true },
      { ...options, samples: 50, minSamples: 3, maxIterations: 1, budgetMs: 1 },
    );
    expect(stats.samples).toBe(3);
  });

  it('interleaves samples of several tasks and reports a failing one without losing the others', async () => {
    const order: string[] = [];
    const outcomes = await measureInterleaved([
      { task: { run: () => order.push('a') }, options: { ...options, warmupSamples: 0, maxIterations: 1, samples: 3 } },
      {
        task: {
          run() {
            throw new Error('broken');
          },
        },
        options,
      },
      { task: { run: () => order.push('b') }, options: { ...options, warmupSamples: 0, maxIterations: 1, samples: 3 } },
    ]);
    expect(outcomes[1]).toBeInstanceOf(Error);
    expect((outcomes[0] as { samples: number }).samples).toBe(3);
    expect((outcomes[2] as { samples: number }).samples).toBe(3);
    // a's probe, b's probe, then three rounds of one sample each
    expect(order.join('')).toBe('ab' + 'ababab');
  });

  it('holds at least minIterations per sample, so a periodic cost (a PQ exchange every ~40 messages) falls inside each', async () => {
    // A slow body would get 1 iteration per 1 ms sample; the floor keeps 40, whatever the timing.
    const busy = () => {
      const end = performance.now() + 0.2;
      while (performance.now() < end);
    };
    const floor = await measure({ run: busy }, { ...options, targetSampleMs: 0.001, minIterations: 40, maxIterations: 100 });
    expect(floor.iterations).toBe(40);
    const [interleaved] = await measureInterleaved([
      { task: { run: busy }, options: { ...options, targetSampleMs: 0.001, minIterations: 40 } },
    ]);
    expect((interleaved as { iterations: number }).iterations).toBe(40);
    // maxIterations still bounds it.
    expect((await measure({ run: busy }, { ...options, targetSampleMs: 0.001, minIterations: 40, maxIterations: 10 })).iterations).toBe(10);
  });

  it('propagates a failing body instead of timing it', async () => {
    await expect(
      measure(
        {
          run() {
            throw new Error('boom');
          },
        },
        options,
      ),
    ).rejects.toThrow('boom');
  });
});
