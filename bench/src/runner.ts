/**
 * The runner: measures tasks with the active profile, records every result
 * (measured, failed or not measured) and prints one progress line per
 * result on stderr. Issue 5 ("shows progress while it runs"; `--quick`).
 *
 * A failure in one scenario (a peer that does not load on this machine, a
 * bug in a driver) becomes a `failed` result with its message, so one broken
 * row never hides the rest of the table.
 */
import { performance } from 'node:perf_hooks';
import { type MeasureOptions, type Stats, type Task, measure, measureInterleaved } from './harness.ts';
import { type Result, type ResultMeta, resultId } from './results.ts';

/** A task with what it measures, ready to be timed (alone or interleaved with others). */
export interface Entry {
  readonly meta: ResultMeta;
  // biome-ignore lint/suspicious/noExplicitAny: each entry's task has its own context type
  readonly task: Task<any>;
  readonly overrides?: Partial<MeasureOptions>;
  /**
   * Which entries are sampled together (default: the op up to any `@size`). Set it to compare
   * figures whose ops differ, such as a ratchet-v2 row with the v1 and peer rows of its operation.
   */
  readonly family?: string;
}

export interface Profile {
  readonly name: 'quick' | 'full';
  readonly measure: MeasureOptions;
  /** Group sizes (member devices) for our groups. */
  readonly groupSizes: readonly number[];
  /** Group sizes for ts-mls, whose commits cost far more (issue: 10 and 100). */
  readonly mlsGroupSizes: readonly number[];
  readonly relay: {
    /** Seconds of load per throughput/latency run. */
    readonly loadSeconds: number;
    /** Concurrent HTTP senders. */
    readonly connections: number;
    /** Cap and time limit for the websocket connection-count probe. */
    readonly maxWebSockets: number;
    readonly webSocketSeconds: number;
  };
}

export const QUICK: Profile = {
  name: 'quick',
  measure: { warmupSamples: 1, samples: 5, minSamples: 3, targetSampleMs: 3, maxIterations: 2_000, budgetMs: 400 },
  groupSizes: [10, 100],
  mlsGroupSizes: [10],
  relay: { loadSeconds: 1, connections: 10, maxWebSockets: 300, webSocketSeconds: 5 },
};

export const FULL: Profile = {
  name: 'full',
  measure: { warmupSamples: 2, samples: 15, minSamples: 5, targetSampleMs: 25, maxIterations: 20_000, budgetMs: 6_000 },
  groupSizes: [10, 100, 1000],
  mlsGroupSizes: [10, 100],
  // Issue 15: 50,000 websockets on one process (where the open-files hard limit allows it; capacity.ts says when not).
  relay: { loadSeconds: 8, connections: 50, maxWebSockets: 50_000, webSocketSeconds: 180 },
};

/** Human form of a figure in its unit (µs below a millisecond, ms below a second, s above). */
export function formatValue(value: number | null, unit: Result['unit']): string {
  if (value === null || !Number.isFinite(value)) return '—';
  switch (unit) {
    case 'us':
      if (value < 10) return `${value.toFixed(2)} µs`;
      if (value < 1000) return `${value.toFixed(1)} µs`;
      if (value < 1_000_000) return `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} ms`;
      return `${(value / 1_000_000).toFixed(2)} s`;
    case 'ms':
      return `${value.toFixed(value < 10 ? 2 : 1)} ms`;
    case 'per-second':
      return `${Math.round(value).toLocaleString('en-US')}/s`;
    case 'count':
      return Math.round(value).toLocaleString('en-US');
    case 'bytes':
      return `${value < 1000 && !Number.isInteger(value) ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')} B`;
  }
}

export class Runner {
  readonly results: Result[] = [];
  readonly #log: (line: string) => void;
  readonly #started = performance.now();

  constructor(
    readonly profile: Profile,
    log: (line: string) => void,
  ) {
    this.#log = log;
  }

  get quick(): boolean {
    return this.profile.name === 'quick';
  }

  /** A progress line, prefixed with the elapsed time. */
  progress(line: string): void {
    const s = Math.round((performance.now() - this.#started) / 1000);
    this.#log(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${line}`);
  }

  /** Measures a task and records it; a thrown error records a failed result instead. */
  async time<C>(meta: ResultMeta, task: Task<C>, overrides: Partial<MeasureOptions> = {}): Promise<Result> {
    try {
      const stats = await measure(task, { ...this.profile.measure, ...overrides });
      return this.recordStats(meta, stats);
    } catch (e) {
      return this.failed(meta, e);
    }
  }

  /**
   * Measures entries that will be compared with each other, their samples
   * interleaved (see `measureInterleaved`), and records each.
   */
  async timeTogether(entries: readonly Entry[]): Promise<Result[]> {
    const outcomes = await measureInterleaved(
      entries.map((e) => ({ task: e.task as Task<unknown>, options: { ...this.profile.measure, ...e.overrides } })),
    );
    return outcomes.map((o, i) => {
      const meta = (entries[i] as Entry).meta;
      return o instanceof Error ? this.failed(meta, o) : this.recordStats(meta, o);
    });
  }

  recordStats(meta: ResultMeta, stats: Stats): Result {
    const { wall, ...cpu } = stats;
    return this.#push(meta, { status: 'measured', ...cpu, wallMedian: wall.median, reason: null });
  }

  /** A figure measured by other means (throughput, latency percentiles, counts). */
  recordValue(meta: ResultMeta, value: { median: number; min: number; max: number; samples: number }): Result {
    return this.#push(meta, { status: 'measured', ...value, iterations: null, reason: null });
  }

  notMeasured(meta: ResultMeta, reason: string): Result {
    return this.#push(meta, { status: 'not-measured', reason });
  }

  failed(meta: ResultMeta, error: unknown): Result {
    const code = typeof error === 'object' && error !== null && 'code' in error ? `${String((error as { code: unknown }).code)}: ` : '';
    const message = error instanceof Error ? error.message : String(error);
    return this.#push(meta, { status: 'failed', reason: `${code}${message}`.slice(0, 800) });
  }

  #push(meta: ResultMeta, fields: Partial<Result> & Pick<Result, 'status' | 'reason'>): Result {
    const result: Result = {
      id: resultId(meta),
      section: meta.section,
      subject: meta.subject,
      variant: meta.variant ?? null,
      op: meta.op,
      label: meta.label,
      unit: meta.unit ?? 'us',
      groupSize: meta.groupSize ?? null,
      note: meta.note ?? null,
      median: null,
      min: null,
      max: null,
      wallMedian: null,
      samples: null,
      iterations: null,
      ...fields,
    };
    this.results.push(result);
    const who = result.variant ? `${result.subject} (${result.variant})` : result.subject;
    const figure =
      result.status === 'measured'
        ? `${formatValue(result.median, result.unit)}  [min ${formatValue(result.min, result.unit)}, max ${formatValue(result.max, result.unit)}${result.wallMedian === null ? '' : `; wall ${formatValue(result.wallMedian, result.unit)}`}]`
        : `${result.status.toUpperCase()}: ${result.reason}`;
    this.progress(`${result.section.padEnd(10)} ${who.padEnd(22)} ${result.label.padEnd(48)} ${figure}`);
    return result;
  }
}
