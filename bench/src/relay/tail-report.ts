/**
 * Where the slowest deliveries' time went (load.ts --tail; issue 15, bench/results/relay-latency.md
 * "The slowest 1%"). The relay, started with PARLEY_TAIL_TRACE (packages/relay/src/tail-trace.ts),
 * writes its group commits, fsyncs, checkpoints (with their write holds), GC pauses and event-loop
 * gaps at exit; this file lays each half-rate envelope's send, acceptance and delivery beside them.
 *
 * For an envelope: its commit is the first one holding writes submitted from the relay's
 * acceptance on (its server timestamp, 1 ms steps) that committed before it was delivered. Its
 * time is cut into TAIL_STEP_MS slices from send to delivery, and each slice goes to the first
 * cause that covers it, in this order:
 *   gc           a garbage collection pause of the relay
 *   own commit   its own batch's transaction (statements and commit on the loop)
 *   other commit another batch's transaction (it ran while the envelope waited)
 *   hold         the writes held for a checkpoint's second pass (wal-checkpointer.ts)
 *   loop         another gap of the relay's loop (parsing, answers, pushes, timers)
 *   outside      none of those: the generator, the sockets, the listener, or a core taken by
 *                another process.
 * The report gives, for envelopes at or above the percentile, each cause's mean ms and how many
 * envelopes it dominates, and the same means over every envelope for contrast.
 */
import { readFileSync } from 'node:fs';

/** Slice width: well under the 1 ms of the relay's timestamps, coarse enough to stay cheap. */
const TAIL_STEP_MS = 0.1;

export const TAIL_CAUSES = ['gc', 'own commit', 'other commit', 'hold', 'loop', 'outside'] as const;
export type TailCause = (typeof TAIL_CAUSES)[number];

/** One half-rate envelope: send and delivery (wall clock of their processes, ms) and the relay's server timestamp (Date.now()). */
export interface DeliveryRecord {
  readonly sent: number;
  readonly serverTimestamp: number;
  readonly delivered: number;
}

interface Span {
  readonly start: number;
  readonly end: number;
  /** The relay's main thread in this span (Linux): ms on a core, and ms runnable but waiting for one. */
  readonly cpu?: number;
  readonly runq?: number;
}
interface Commit extends Span {
  readonly first: number;
  readonly last: number;
  readonly writes: number;
  readonly rows: number;
}

/**
 * A checkpoint's write hold. With a trace from a relay that reports them (session 6), its parts:
 * `toWorker` from the hold's start to the worker starting the held pass, `pass` the held pass,
 * `toLoop` from its end to the event loop seeing the answer (and releasing the writes), ms; the
 * frames the held pass copied, and the worker thread's ms on a core / waiting for one / asleep
 * (the fsyncs) in it.
 */
interface Hold extends Span {
  readonly timedOut: boolean;
  readonly parts?: {
    /** From the first unheld pass's start to the last's end, how many passes, frames they copied; then the loop seeing it. */
    readonly unheld?: { readonly ms: number; readonly passes: number; readonly copied: number; readonly toLoop: number };
    readonly toWorker: number;
    readonly pass: number;
    readonly toLoop: number;
    readonly frames: number;
    readonly cpu?: number;
    readonly runq?: number;
  };
}

interface Trace {
  readonly commits: Commit[];
  readonly gcs: Span[];
  readonly holds: Hold[];
  readonly gaps: Span[];
  readonly fsyncs: Span[];
  readonly checkpoints: number;
  /** Date.now() − wall clock of performance.now() in the relay, ms (to place server timestamps). */
  readonly dateSkew: number;
}

/** Reads the relay's trace, all times moved to the wall clock (performance.timeOrigin + now). */
export function readTailTrace(file: string, holdMaxMs: number): Trace {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const header = JSON.parse(lines[0] as string) as { timeOrigin: number; dateNowMinusPerf: number };
  const o = header.timeOrigin;
  const trace: Trace = {
    commits: [],
    gcs: [],
    holds: [],
    gaps: [],
    fsyncs: [],
    checkpoints: 0,
    dateSkew: header.dateNowMinusPerf - o,
  };
  let checkpoints = 0;
  for (const line of lines.slice(1)) {
    // The relay's own file (tail-trace.ts TailEvent): every field of its kind is present.
    const e = JSON.parse(line) as {
      t: string;
      first: number;
      last: number;
      start: number;
      committed: number;
      end: number;
      held: number;
      writes: number;
      rows: number;
      timedOut?: boolean;
      cpu?: number;
      runq?: number;
      pass?: [number, number];
      frames?: number;
      unheld?: [number, number];
      passes?: number;
      copied?: number;
    };
    if (e.t === 'commit') {
      trace.commits.push({
        first: o + e.first,
        last: o + e.last,
        start: o + e.start,
        end: o + e.committed,
        writes: e.writes,
        rows: e.rows,
        ...(e.cpu === undefined ? {} : { cpu: e.cpu, runq: e.runq ?? 0 }),
      });
    } else if (e.t === 'gc') trace.gcs.push({ start: o + e.start, end: o + e.end });
    else if (e.t === 'gap')
      trace.gaps.push({ start: o + e.start, end: o + e.end, ...(e.cpu === undefined ? {} : { cpu: e.cpu, runq: e.runq ?? 0 }) });
    else if (e.t === 'fsync') trace.fsyncs.push({ start: o + e.start, end: o + e.end });
    else if (e.t === 'checkpoint') {
      checkpoints++;
      // The hold ends when the second pass returns, or at the bound.
      if (e.held > 0) {
        const parts = e.pass
          ? {
              parts: {
                ...(e.unheld
                  ? {
                      unheld: {
                        ms: e.unheld[1] - e.unheld[0],
                        passes: e.passes ?? 1,
                        copied: e.copied ?? 0,
                        toLoop: e.held - e.unheld[1],
                      },
                    }
                  : {}),
                toWorker: e.pass[0] - e.held,
                pass: e.pass[1] - e.pass[0],
                toLoop: e.end - e.pass[1],
                frames: e.frames ?? 0,
                ...(e.cpu === undefined ? {} : { cpu: e.cpu, runq: e.runq ?? 0 }),
              },
            }
          : {};
        trace.holds.push({ start: o + e.held, end: o + Math.min(e.end, e.held + holdMaxMs), timedOut: e.timedOut === true, ...parts });
      }
    }
  }
  trace.commits.sort((a, b) => a.first - b.first);
  return { ...trace, checkpoints };
}

/** How far before an episode's first slow send its cause is looked for: about one batch's length. */
const EPISODE_LEAD_MS = 25;

export interface Episode {
  /** Ms since the phase began, and the episode's length (first slow send → last slow delivery). */
  readonly atMs: number;
  readonly lengthMs: number;
  readonly envelopes: number;
  readonly commits: number;
  readonly maxRows: number;
  readonly commitMs: number;
  readonly holdMs: number;
  readonly gcMs: number;
  readonly loopMs: number;
  /**
   * Of the loop gaps in the window (commits included): ms the relay's main thread ran, waited for
   * a core (another process had it), and slept (blocked in the kernel); absent off Linux.
   */
  readonly sched?: { readonly cpu: number; readonly runq: number; readonly slept: number };
}

export interface TailReport {
  readonly percentile: number;
  /** Delivery ms at that percentile, and envelopes at or above it. */
  readonly thresholdMs: number;
  readonly envelopes: number;
  /** Envelopes whose commit was found (the rest are left out of the causes). */
  readonly matched: number;
  /** Per cause: mean ms per slow envelope, and how many slow envelopes it dominates. */
  readonly causes: Record<TailCause, { readonly meanMs: number; readonly dominant: number }>;
  /** Per cause, mean ms over every matched envelope of the phase (the contrast). */
  readonly allMeanMs: Record<TailCause, number>;
  /** The slow envelopes' own commits: how many distinct, and their rows and transaction ms (median / max). */
  readonly ownCommits: { readonly count: number; readonly rows: [number, number]; readonly transactionMs: [number, number] };
  /** Slow envelopes whose send → delivery overlapped a hold, a GC pause ≥ 1 ms, another commit of ≥ 128 rows. */
  readonly overlapped: { readonly hold: number; readonly gc: number; readonly bigCommit: number };
  /**
   * Slow envelopes whose send → delivery overlap form one episode (a backlog the relay worked
   * off). Per episode, over its window and the EPISODE_LEAD_MS before it: the relay's commits
   * (count, largest rows, ms), checkpoint hold ms, GC ms, and loop-gap ms outside commits.
   */
  readonly episodes: readonly Episode[];
  /** Over the phase (checkpoints: the whole run): commits, checkpoints, holds (timed out), GC pauses, loop gaps ≥ 8 ms, fsync ms p99. */
  readonly relay: {
    readonly commits: number;
    readonly checkpoints: number;
    readonly holds: number;
    readonly holdsTimedOut: number;
    readonly holdMs: [number, number];
    /**
     * The holds' parts (median / max each; absent from an older relay's trace): request to worker,
     * held pass, answer to loop, ms; frames the held pass copied; the worker thread in the held
     * passes, ms in all: on a core, waiting for one, asleep (its fsyncs).
     */
    readonly holdParts?: {
      /** Before the holds (a relay with catch-up passes): the unheld passes' ms, count and frames, and their answer's way to the loop. */
      readonly unheld?: {
        readonly ms: [number, number];
        readonly passes: [number, number];
        readonly copied: [number, number];
        readonly toLoop: [number, number];
      };
      readonly toWorker: [number, number];
      readonly pass: [number, number];
      readonly toLoop: [number, number];
      readonly frames: [number, number];
      readonly worker?: { readonly cpu: number; readonly runq: number; readonly slept: number };
    };
    readonly gcPauses: number;
    /** GC pauses' total and longest ms. */
    readonly gcMs: [number, number];
    readonly gaps: number;
    readonly fsyncMs: [number, number];
  };
}

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}
const r1 = (x: number) => Math.round(x * 10) / 10;

/**
 * Most ms between the relay's acceptance timestamp and its write's submit: a few awaits (franking,
 * the rate buckets), one loop turn at most, which a long turn stretches.
 */
const SUBMIT_LAG_MAX_MS = 20;

/**
 * The commit of an envelope accepted at `accepted` (relay wall clock, 1 ms steps) and delivered at
 * `delivered`: batches take the queue's oldest writes, so the first commit holding a write submitted
 * at or after the acceptance's millisecond that committed before the delivery.
 */
function commitOf(commits: Commit[], accepted: number, delivered: number): Commit | undefined {
  let lo = 0;
  let hi = commits.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((commits[mid] as Commit).last < accepted - 0.5) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < commits.length; i++) {
    const c = commits[i] as Commit;
    if (c.first > accepted + SUBMIT_LAG_MAX_MS) break;
    if (c.end <= delivered + 0.5) return c;
  }
  return undefined;
}

function overlapping<T extends Span>(spans: T[], from: number, to: number): T[] {
  return spans.filter((s) => s.end > from && s.start < to);
}

/** Each cause's ms in one envelope's send → delivery. */
function causesOf(trace: Trace, d: DeliveryRecord, own: Commit): Record<TailCause, number> {
  const gcs = overlapping(trace.gcs, d.sent, d.delivered);
  const others = overlapping(trace.commits, d.sent, d.delivered).filter((c) => c !== own);
  const holds = overlapping(trace.holds, d.sent, d.delivered);
  const gaps = overlapping(trace.gaps, d.sent, d.delivered);
  const out: Record<TailCause, number> = { gc: 0, 'own commit': 0, 'other commit': 0, hold: 0, loop: 0, outside: 0 };
  const inside = (spans: Span[], t: number) => spans.some((s) => t >= s.start && t < s.end);
  for (let t = d.sent; t < d.delivered; t += TAIL_STEP_MS) {
    const cause: TailCause = inside(gcs, t)
      ? 'gc'
      : t >= own.start && t < own.end
        ? 'own commit'
        : inside(others, t)
          ? 'other commit'
          : inside(holds, t)
            ? 'hold'
            : inside(gaps, t)
              ? 'loop'
              : 'outside';
    out[cause] += TAIL_STEP_MS;
  }
  return out;
}

/** The scheduler split of whole gaps (a gap's split is known only for all of it). */
function schedOf(gaps: Span[]): { sched?: { cpu: number; runq: number; slept: number } } {
  if (gaps.length === 0 || gaps.some((g) => g.cpu === undefined)) return {};
  const cpu = gaps.reduce((s, g) => s + (g.cpu ?? 0), 0);
  const runq = gaps.reduce((s, g) => s + (g.runq ?? 0), 0);
  const total = gaps.reduce((s, g) => s + g.end - g.start, 0);
  return { sched: { cpu: r1(cpu), runq: r1(runq), slept: r1(Math.max(0, total - cpu - runq)) } };
}

export function attributeTail(records: readonly DeliveryRecord[], trace: Trace, percentile = 99): TailReport {
  const totals = records.map((d) => d.delivered - d.sent);
  const threshold = quantile(totals, percentile / 100);
  const zero = (): Record<TailCause, number> => ({ gc: 0, 'own commit': 0, 'other commit': 0, hold: 0, loop: 0, outside: 0 });
  const slowSum = zero();
  const dominant = zero();
  const allSum = zero();
  let allMatched = 0;
  let slow = 0;
  let matched = 0;
  const own = new Set<Commit>();
  const overlapped = { hold: 0, gc: 0, bigCommit: 0 };
  // Every 8th envelope is enough for the contrast.
  records.forEach((d, i) => {
    const isSlow = d.delivered - d.sent >= threshold;
    if (isSlow) slow++;
    if (!isSlow && i % 8 !== 0) return;
    const c = commitOf(trace.commits, d.serverTimestamp - trace.dateSkew, d.delivered);
    if (!c) return;
    const causes = causesOf(trace, d, c);
    if (i % 8 === 0) {
      allMatched++;
      for (const k of TAIL_CAUSES) allSum[k] += causes[k];
    }
    if (!isSlow) return;
    matched++;
    own.add(c);
    for (const k of TAIL_CAUSES) slowSum[k] += causes[k];
    const top = TAIL_CAUSES.reduce((a, b) => (causes[b] > causes[a] ? b : a));
    dominant[top]++;
    if (overlapping(trace.holds, d.sent, d.delivered).length > 0) overlapped.hold++;
    if (overlapping(trace.gcs, d.sent, d.delivered).some((g) => g.end - g.start >= 1)) overlapped.gc++;
    if (overlapping(trace.commits, d.sent, d.delivered).some((o) => o !== c && o.rows >= 128)) overlapped.bigCommit++;
  });
  const causes = Object.fromEntries(
    TAIL_CAUSES.map((k) => [k, { meanMs: r1(slowSum[k] / Math.max(1, matched)), dominant: dominant[k] }]),
  ) as TailReport['causes'];
  const allMeanMs = Object.fromEntries(TAIL_CAUSES.map((k) => [k, r1(allSum[k] / Math.max(1, allMatched))])) as Record<TailCause, number>;
  const ownList = [...own];
  // The relay's figures over the phase the records cover (not the full-rate phase before it).
  const from = Math.min(...records.map((d) => d.sent));
  const to = Math.max(...records.map((d) => d.delivered));
  const inPhase = <T extends Span>(spans: T[]) => overlapping(spans, from, to);
  const holds = inPhase(trace.holds);
  const holdMs = holds.map((h) => h.end - h.start);
  const parts = holds.flatMap((h) => (h.parts ? [h.parts] : []));
  const mm = (xs: number[]): [number, number] => [r1(median(xs)), r1(Math.max(0, ...xs))];
  const withSched = parts.filter((p) => p.cpu !== undefined);
  const unheld = parts.flatMap((p) => (p.unheld ? [p.unheld] : []));
  const holdParts =
    parts.length === 0
      ? {}
      : {
          holdParts: {
            ...(unheld.length === 0
              ? {}
              : {
                  unheld: {
                    ms: mm(unheld.map((u) => u.ms)),
                    passes: mm(unheld.map((u) => u.passes)),
                    copied: mm(unheld.map((u) => u.copied)),
                    toLoop: mm(unheld.map((u) => u.toLoop)),
                  },
                }),
            toWorker: mm(parts.map((p) => p.toWorker)),
            pass: mm(parts.map((p) => p.pass)),
            toLoop: mm(parts.map((p) => p.toLoop)),
            frames: mm(parts.map((p) => p.frames)),
            ...(withSched.length === 0
              ? {}
              : {
                  worker: {
                    cpu: r1(withSched.reduce((x, p) => x + (p.cpu ?? 0), 0)),
                    runq: r1(withSched.reduce((x, p) => x + (p.runq ?? 0), 0)),
                    slept: r1(withSched.reduce((x, p) => x + Math.max(0, p.pass - (p.cpu ?? 0) - (p.runq ?? 0)), 0)),
                  },
                }),
          },
        };
  const fsyncMs = inPhase(trace.fsyncs).map((f) => f.end - f.start);
  const covered = (spans: Span[], a: number, b: number) =>
    overlapping(spans, a, b).reduce((sum, x) => sum + Math.min(b, x.end) - Math.max(a, x.start), 0);
  const episodes: Episode[] = [];
  const slowOnes = records.filter((d) => d.delivered - d.sent >= threshold).sort((a, b) => a.sent - b.sent);
  for (let i = 0; i < slowOnes.length; ) {
    const first = slowOnes[i] as DeliveryRecord;
    let end = first.delivered;
    let j = i + 1;
    while (j < slowOnes.length && (slowOnes[j] as DeliveryRecord).sent <= end) {
      end = Math.max(end, (slowOnes[j] as DeliveryRecord).delivered);
      j++;
    }
    const a = first.sent - EPISODE_LEAD_MS;
    const commits = overlapping(trace.commits, a, end);
    // Loop gaps minus the commits inside them: the loop's other work.
    const gapMs = covered(trace.gaps, a, end);
    const inGaps = trace.gaps.length
      ? commits.reduce((sum, c) => sum + covered(trace.gaps, Math.max(a, c.start), Math.min(end, c.end)), 0)
      : 0;
    episodes.push({
      atMs: Math.round(first.sent - from),
      lengthMs: r1(end - first.sent),
      envelopes: j - i,
      commits: commits.length,
      maxRows: Math.max(0, ...commits.map((c) => c.rows)),
      commitMs: r1(covered(commits, a, end)),
      holdMs: r1(covered(trace.holds, a, end)),
      gcMs: r1(covered(trace.gcs, a, end)),
      loopMs: r1(gapMs - inGaps),
      ...schedOf(overlapping(trace.gaps, a, end)),
    });
    i = j;
  }
  return {
    percentile,
    episodes,
    thresholdMs: r1(threshold),
    envelopes: slow,
    matched,
    causes,
    allMeanMs,
    ownCommits: {
      count: ownList.length,
      rows: [median(ownList.map((c) => c.rows)), Math.max(0, ...ownList.map((c) => c.rows))],
      transactionMs: [r1(median(ownList.map((c) => c.end - c.start))), r1(Math.max(0, ...ownList.map((c) => c.end - c.start)))],
    },
    overlapped,
    relay: {
      commits: inPhase(trace.commits).length,
      checkpoints: trace.checkpoints,
      holds: holds.length,
      holdsTimedOut: holds.filter((h) => h.timedOut).length,
      holdMs: [r1(median(holdMs)), r1(Math.max(0, ...holdMs))],
      ...holdParts,
      gcPauses: inPhase(trace.gcs).length,
      gcMs: [
        r1(inPhase(trace.gcs).reduce((x, g) => x + g.end - g.start, 0)),
        r1(Math.max(0, ...inPhase(trace.gcs).map((g) => g.end - g.start))),
      ],
      gaps: inPhase(trace.gaps).length,
      fsyncMs: [r1(median(fsyncMs)), r1(quantile(fsyncMs, 0.99))],
    },
  };
}

export function formatTail(t: TailReport): string[][] {
  const episodes = t.episodes.map(
    (e) =>
      `at ${e.atMs} ms for ${e.lengthMs} ms: ${e.envelopes} envelopes; ${e.commits} commits (max ${e.maxRows} rows) ${e.commitMs} ms, hold ${e.holdMs}, gc ${e.gcMs}, other loop ${e.loopMs} ms${e.sched ? `; in loop gaps the relay ran ${e.sched.cpu}, waited for a core ${e.sched.runq}, slept ${e.sched.slept} ms` : ''}`,
  );
  const causes = TAIL_CAUSES.map((k) => `${k} ${t.causes[k].meanMs} ms (${t.causes[k].dominant})`).join(', ');
  const all = TAIL_CAUSES.map((k) => `${k} ${t.allMeanMs[k]}`).join(', ');
  const r = t.relay;
  return [
    [
      `tail: p${t.percentile} and above`,
      `${t.envelopes} envelopes ≥ ${t.thresholdMs} ms, ${t.matched} matched to their commit (${t.ownCommits.count} commits: rows median ${t.ownCommits.rows[0]} / max ${t.ownCommits.rows[1]}, transaction median ${t.ownCommits.transactionMs[0]} / max ${t.ownCommits.transactionMs[1]} ms)`,
    ],
    ['tail: mean ms per cause (envelopes it dominates)', causes],
    ['tail: same, every 8th envelope (ms)', all],
    [
      'tail: overlapped by',
      `a checkpoint hold ${t.overlapped.hold}, a GC pause ≥ 1 ms ${t.overlapped.gc}, another commit ≥ 128 rows ${t.overlapped.bigCommit} (of ${t.matched})`,
    ],
    [
      'tail: relay over the phase',
      `${r.commits} commits, ${r.holds} checkpoint holds (${r.holdsTimedOut} at the bound; median ${r.holdMs[0]} / max ${r.holdMs[1]} ms; ${r.checkpoints} checkpoints in the whole run), ${r.gcPauses} GC pauses (${r.gcMs[0]} ms, longest ${r.gcMs[1]}), ${r.gaps} loop gaps ≥ 8 ms, fsync median ${r.fsyncMs[0]} / p99 ${r.fsyncMs[1]} ms`,
    ],
    ...(r.holdParts?.unheld
      ? [
          [
            'tail: before the holds (median / max)',
            `unheld passes ${r.holdParts.unheld.passes.join(' / ')} in ${r.holdParts.unheld.ms.join(' / ')} ms (${r.holdParts.unheld.copied.join(' / ')} frames), their answer to loop ${r.holdParts.unheld.toLoop.join(' / ')} ms`,
          ],
        ]
      : []),
    ...(r.holdParts
      ? [
          [
            'tail: hold parts (median / max)',
            `request to worker ${r.holdParts.toWorker.join(' / ')} ms, held pass ${r.holdParts.pass.join(' / ')} ms (${r.holdParts.frames.join(' / ')} frames), answer to loop ${r.holdParts.toLoop.join(' / ')} ms${r.holdParts.worker ? `; worker in held passes: on a core ${r.holdParts.worker.cpu}, waiting ${r.holdParts.worker.runq}, asleep ${r.holdParts.worker.slept} ms in all` : ''}`,
          ],
        ]
      : []),
    ...episodes.map((e, i) => [i === 0 ? `tail: ${episodes.length} episodes (from ${EPISODE_LEAD_MS} ms before)` : '', e]),
  ];
}
