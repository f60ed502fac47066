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
  /** Wall-clock budget for the whole measurement, prepare included; sampling stops early past it. */
  readonly budgetMs: number;
}

/** Per-operation statistics, in microseconds. */
export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
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

/** Runs one sample of `iterations` and returns its mean time per iteration in microseconds. */
async function sample<C>(task: Task<C>, iterations: number): Promise<number> {
  const context = (await task.prepare?.(iterations)) as C;
  let elapsed: number;
  if (task.async) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await task.run(context, i);
    elapsed = performance.now() - start;
  } else {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) task.run(context, i);
    elapsed = performance.now() - start;
  }
  await task.cleanup?.(context);
  return (elapsed * 1000) / iterations;
}

function clampIterations(perOpMicros: number, options: MeasureOptions): number {
  const wanted = Math.round((options.targetSampleMs * 1000) / Math.max(perOpMicros, 0.001));
  return Math.min(options.maxIterations, Math.max(1, wanted));
}

/**
 * Measures `task`: one probe iteration to size the batches, warm-up samples
 * (re-sizing the batch from the last one, since the first calls run cold),
 * then samples until `options.samples` are kept or the budget is spent.
 */
export async function measure<C>(task: Task<C>, options: MeasureOptions): Promise<Stats> {
  const started = performance.now();
  const overBudget = () => performance.now() - started > options.budgetMs;

  let iterations = clampIterations(await sample(task, 1), options);
  for (let w = 0; w < options.warmupSamples; w++) {
    const perOp = await sample(task, iterations);
    iterations = clampIterations(perOp, options);
    if (overBudget()) break;
  }

  const values: number[] = [];
  while (values.length < options.samples) {
    values.push(await sample(task, iterations));
    if (values.length >= options.minSamples && overBudget()) break;
  }
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    samples: values.length,
    iterations,
  };
}
