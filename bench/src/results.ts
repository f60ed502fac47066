/**
 * The shape of one benchmark result, shared by every scenario, the report
 * and the JSON file. Issue 5 (results as JSON plus a Markdown table).
 *
 * Results from different libraries line up by `op`: the same operation key
 * (`setup`, `ping-pong`, `group-message@100`...) names the same work for
 * every subject, so the report can pivot them into one row per operation.
 */
import type { Backend } from './parley/fixtures.ts';

/** Parts of the suite, selectable with `--only`. */
export const SECTIONS = ['one-to-one', 'groups', 'floor', 'peers', 'v2', 'breakdown', 'relay'] as const;
export type Section = (typeof SECTIONS)[number];

/** Who did the work: our library, the bare primitives, or a peer library. */
export type Subject = 'parley' | 'floor' | 'libsignal-client' | 'privacyresearch' | 'olm' | 'ts-mls' | 'relay';

/** Crypto backend for Parley and the floor; null for peers. */
export type Variant = 'node' | 'noble' | null;

/**
 * `us`: microseconds per operation (the median is the median of sample
 * means; CPU time, with the wall clock kept beside it). `per-second`: a throughput. `ms`: a latency. `count`: a number of
 * things (connections). `bytes`: a size (bytes per message, averaged where messages differ).
 */
export type Unit = 'us' | 'per-second' | 'ms' | 'count' | 'bytes';

export type Status = 'measured' | 'not-measured' | 'failed';

/** What a scenario says about a result before it is measured. */
export interface ResultMeta {
  readonly section: Section;
  readonly subject: Subject;
  readonly variant?: Variant;
  /** The operation key shared across subjects (see the module comment). */
  readonly op: string;
  /** Human-readable description of exactly what was timed. */
  readonly label: string;
  readonly unit?: Unit;
  /** Member devices, for group operations. */
  readonly groupSize?: number;
  /** A caveat printed next to the figure (not like for like, sizes...). */
  readonly note?: string;
}

export interface Result extends Required<Omit<ResultMeta, 'groupSize' | 'note'>> {
  readonly id: string;
  readonly groupSize: number | null;
  readonly note: string | null;
  readonly status: Status;
  /** For timings: CPU time per operation (see harness.ts for why); for other units, the figure itself. */
  readonly median: number | null;
  readonly min: number | null;
  readonly max: number | null;
  /** For timings: wall-clock time per operation, median over the same samples. */
  readonly wallMedian: number | null;
  readonly samples: number | null;
  readonly iterations: number | null;
  /** Why a result is not measured or failed (never secret material: only error codes and messages from our harness). */
  readonly reason: string | null;
}

/** The stable id of a result: subject, variant and operation. */
export function resultId(meta: Pick<ResultMeta, 'subject' | 'variant' | 'op'>): string {
  return meta.variant ? `${meta.subject}/${meta.variant}/${meta.op}` : `${meta.subject}/${meta.op}`;
}

/** The whole run, as written to results.json. */
export interface RunReport {
  readonly version: 1;
  readonly profile: 'quick' | 'full';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: {
    readonly node: string;
    readonly platform: string;
    readonly arch: string;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly loadAverage: readonly number[];
  };
  readonly sections: readonly Section[];
  readonly results: readonly Result[];
  /** Per-operation split of Parley's time by primitive family (section `breakdown`). */
  readonly breakdowns: readonly Breakdown[];
  /**
   * Sections not measured in this run whose results were carried over from an earlier run
   * (`--keep`), with that run's start and profile; their rows keep their own figures.
   */
  readonly kept?: { readonly startedAt: string; readonly profile: 'quick' | 'full'; readonly sections: readonly Section[] };
}

/**
 * Adds to `report` the rows of `earlier`'s sections that `report` did not run (for a partial run
 * that must not drop, say, the relay rows a shared machine could not re-measure today).
 */
export function keepSections(report: RunReport, earlier: RunReport): RunReport {
  const sections = earlier.sections.filter((s) => !report.sections.includes(s));
  if (sections.length === 0) return report;
  const results = earlier.results.filter((r) => sections.includes(r.section) && !report.results.some((x) => x.id === r.id));
  const breakdowns = report.sections.includes('breakdown') ? report.breakdowns : [...report.breakdowns, ...earlier.breakdowns];
  return {
    ...report,
    results: [...report.results, ...results],
    breakdowns,
    kept: { startedAt: earlier.startedAt, profile: earlier.profile, sections },
  };
}

/** Primitive families, for a table narrow enough to read. */
export const FAMILIES = ['X25519', 'Ed25519', 'ML-KEM', 'HMAC', 'HKDF', 'SHA', 'AEAD', 'random'] as const;
export type Family = (typeof FAMILIES)[number];

/** One backend method's share of an operation (breakdown.ts). */
export interface CallStats {
  calls: number;
  micros: number;
}

export interface Breakdown {
  readonly op: string;
  readonly label: string;
  readonly backend: Backend;
  /** Wall time per operation, instrumented. */
  readonly totalMicros: number;
  /** Per backend method: calls and microseconds per operation. */
  readonly methods: Readonly<Record<string, CallStats>>;
  /** Per family, microseconds per operation. */
  readonly families: Readonly<Record<Family, number>>;
  /** Time outside backend calls, per operation. */
  readonly protocolMicros: number;
}
