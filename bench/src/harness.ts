/**
 * The timing harness: warm-up, then N samples, each timing a batch of
 * iterations of one operation; per-operation median, min and max over the
 * samples. Issue 5 ("each as a median over repeated runs with warm-up, min
 * and max shown").
 *
 * Why batches: a single fast operation (an HMAC, a ratchet step) is shorter
 * than the timer's useful resolution and than the noise of a shared machine,
 * so each sample times enough iterations to last `targetSampleMs`, and the
 * sample's value is its mean per iteration. The median over samples is what
 * we report, because on 2 cores shared with other work the mean is dragged
 * up by whatever else ran during one unlucky sample.
 *
 * Each sample records two clocks: the process's CPU time (user + system,
 * `process.cpuUsage`) and the wall clock. CPU time is the primary figure:
 * it is what an operation costs the device or server that runs it, and it
 * does not count the time this process spent descheduled while other
 * engineers' jobs ran, which on a shared 2-core machine can double the wall
 * clock. It does count work on other threads of the process (GC helpers,
 * the libuv pool behind WebCrypto), which is real cost too. Wall time is
 * kept alongside.
 *
 * This module knows nothing of protocols or libraries: a task is a prepare
 * step (untimed) and a body (timed).
 */
import { performance } from 'node:perf_hooks';

/**
 * One measurable operation. `prepare` runs untimed before each sample and
 * builds whatever `iterations` runs of `run` consume (fresh prekeys, copies
 * of a state); `run` is the timed body, called `iterations` times per
 * sample with the iteration index.
 */
export interface Task<C = void> {
  /** True when `run` returns a promise that must be awaited. */
  readonly async?: boolean;
  prepare?(iterations: number): C | Promise<C>;
  run(context: C, index: number): unknown;
  /** Untimed, after each sample (free native or wasm objects, close sockets). */
  cleanup?(context: C): void | Promise<void>;
}

export interface MeasureOptions {
  /** Samples run and discarded first (JIT warm-up, caches, lazy imports). */
  readonly warmupSamples: number;
  /** Samples kept. */
  readonly samples: number;
  /** Fewer samples are accepted when the budget runs out, but never fewer than this. */
  readonly minSamples: number;
  /** Each sample runs enough iterations to last about this long. */
  readonly targetSampleMs: number;
  /** Upper bound on iterations per sample (bounds the untimed `prepare` work too). */
  readonly maxIterations: number;
  /**
   * Lower bound on iterations per sample (default 1): an operation whose cost comes in periodic
   * bursts (a post-quantum ratchet's ML-KEM exchange every few dozen messages) needs samples
   * long enough to hold whole periods, or the median sample would leave the bursts out.
   */
  readonly minIterations?: number;
  /** Wall-clock budget for the whole measurement, prepare included; sampling stops early past it. */
  readonly budgetMs: number;
}

/** Per-operation statistics, in microseconds: CPU time (median, min, max) and wall-clock time. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly wall: { readonly median: number; readonly min: number; readonly max: number };
  /** Samples kept (after warm-up). */
  readonly samples: number;
  /** Iterations timed in each sample. */
  readonly iterations: number;
}

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('"values" expected at least one number');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The q-quantile (0..1) by nearest rank, for latency percentiles. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('"values" expected at least one number');
  if (!(q >= 0 && q <= 1)) throw new RangeError('"q" expected a number in [0, 1]');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}

interface Sample {
  /** CPU microseconds per iteration. */
  readonly cpu: number;
  /** Wall-clock microseconds per iteration. */
  readonly wall: number;
}

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** Runs one sample of `iterations` and returns its mean time per iteration. */
async function sample<C>(task: Task<C>, iterations: number): Promise<Sample> {
  const context = (await task.prepare?.(iterations)) as C;
  let wall: number;
  let cpu: number;
  if (task.async) {
    const c0 = cpuMicros();
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await task.run(context, i);
    wall = (performance.now() - start) * 1000;
    cpu = cpuMicros() - c0;
  } else {
    const c0 = cpuMicros();
    const start = performance.now();
    for (let i = 0; i < iterations; i++) task.run(context, i);
    wall = (performance.now() - start) * 1000;
    cpu = cpuMicros() - c0;
  }
  await task.cleanup?.(context);
  return { cpu: cpu / iterations, wall: wall / iterations };
}

function statsOf(values: readonly Sample[], iterations: number): Stats {
  const cpu = values.map((v) => v.cpu);
  const wall = values.map((v) => v.wall);
  return {
    median: median(cpu),
    min: Math.min(...cpu),
    max: Math.max(...cpu),
    wall: { median: median(wall), min: Math.min(...wall), max: Math.max(...wall) },
    samples: values.length,
    iterations,
  };
}

function clampIterations(perOpMicros: number, options: MeasureOptions): number {
  const wanted = Math.round((options.targetSampleMs * 1000) / Math.max(perOpMicros, 0.001));
  return Math.min(options.maxIterations, Math.max(options.minIterations ?? 1, wanted));
}

/**
 * Measures several tasks side by side: each is probed and warmed up in
 * turn, then samples are taken in rounds (one sample of each task per
 * round) until every task has its samples or has spent its budget. On a
 * machine shared with other work, load comes and goes over seconds; taking
 * the samples of compared tasks in alternation exposes them to the same
 * load, so their ratio holds even when their absolute figures drift.
 *
 * Returns one outcome per task, in order: its stats, or the error it threw
 * (a failing task is dropped from the rounds; the others carry on).
 */
export async function measureInterleaved(
  entries: readonly { readonly task: Task<unknown>; readonly options: MeasureOptions }[],
): Promise<(Stats | Error)[]> {
  const state = entries.map(() => ({ iterations: 1, values: [] as Sample[], spent: 0, error: null as Error | null, done: false }));
  const timed = async (i: number, iterations: number): Promise<Sample> => {
    const s = state[i] as (typeof state)[number];
    const start = performance.now();
    try {
      return await sample((entries[i] as (typeof entries)[number]).task, iterations);
    } finally {
      s.spent += performance.now() - start;
    }
  };
  for (const [i, { options }] of entries.entries()) {
    const s = state[i] as (typeof state)[number];
    try {
      s.iterations = clampIterations((await timed(i, 1)).wall, options);
      for (let w = 0; w < options.warmupSamples && s.spent <= options.budgetMs; w++) {
        s.iterations = clampIterations((await timed(i, s.iterations)).wall, options);
      }
    } catch (e) {
      s.error = e instanceof Error ? e : new Error(String(e));
      s.done = true;
    }
  }
  while (state.some((s) => !s.done)) {
    for (const [i, { options }] of entries.entries()) {
      const s = state[i] as (typeof state)[number];
      if (s.done) continue;
      try {
        s.values.push(await timed(i, s.iterations));
      } catch (e) {
        s.error = e instanceof Error ? e : new Error(String(e));
        s.done = true;
        continue;
      }
      if (s.values.length >= options.samples || (s.values.length >= options.minSamples && s.spent > options.budgetMs)) s.done = true;
    }
  }
  return state.map((s) => s.error ?? statsOf(s.values, s.iterations));
}

/**
 * Measures `task`: one probe iteration to size the batches, warm-up samples
 * (re-sizing the batch from the last one, since the first calls run cold),
 * then samples until `options.samples` are kept or the budget is spent.
 */
export async function measure<C>(task: Task<C>, options: MeasureOptions): Promise<Stats> {
  const started = performance.now();
  const overBudget = () => performance.now() - started > options.budgetMs;

  // Batches are sized by the wall clock: that is what bounds how long a sample (and the run) takes.
  let iterations = clampIterations((await sample(task, 1)).wall, options);
  for (let w = 0; w < options.warmupSamples; w++) {
    iterations = clampIterations((await sample(task, iterations)).wall, options);
    if (overBudget()) break;
  }

  const values: Sample[] = [];
  while (values.length < options.samples) {
    values.push(await sample(task, iterations));
    if (values.length >= options.minSamples && overBudget()) break;
  }
  return statsOf(values, iterations);
}
