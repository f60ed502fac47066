/**
 * The tail trace: a debug hook that tells where the slowest deliveries' time went (issue 15,
 * bench/results/relay-latency.md "The slowest 1%"). Off unless the process starts with
 * `PARLEY_TAIL_TRACE=<file>` (cli/main.ts); off, each hook is one check of an undefined module
 * variable per group commit or checkpoint, and nothing is allocated, observed or timed.
 *
 * On, the relay keeps in memory, with their times (performance.now(), ms): every group commit
 * (its oldest and newest write's submit, transaction start, commit, the moment its callers were
 * answered, writes and mailbox rows), every fsync of the WAL, every checkpoint (and how long it
 * held the writes), every garbage collection pause, and every gap of the event loop of
 * TAIL_TRACE_GAP_MS or more. At exit it writes them as JSON lines to the file, with a header that
 * gives performance.timeOrigin, so another process (bench/src/relay/load.ts --tail) can lay them
 * beside its own send and delivery times. Nothing in it is secret: times and counts only. What it
 * keeps is bounded (TAIL_TRACE_MAX_EVENTS, within TAIL_TRACE_MAX_BYTES); later events are counted.
 *
 * Not a metric: the attribution needs each event's place in time, not a distribution.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';

/**
 * Loop gaps shorter than this are not recorded: the sampling timer fires every TAIL_TRACE_TICK_MS,
 * and the goal the trace serves is a 25 ms p99, so a few ms of gap is ordinary work.
 */
export const TAIL_TRACE_GAP_MS = 8;
const TAIL_TRACE_TICK_MS = 2;
/**
 * Memory the kept events may take at most, and so the events kept at most: a relay left running with
 * the trace on must not grow without bound. A commit event, the largest kind, takes about 230 bytes of
 * heap (10 numbers in an object; test/tail-trace.test.ts measures it), so 400,000 events stay under
 * 96 MiB; a load run of bench/src/relay/load.ts (10-60 s) records a few hundred events a second. Later
 * events are counted (`dropped` in the file's header), not kept.
 */
export const TAIL_TRACE_MAX_BYTES = 128 * 1024 * 1024;
export const TAIL_TRACE_MAX_EVENTS = 400_000;
/** Lines written per write call at exit: the file is written in pieces, never built as one string. */
const WRITE_LINES = 4096;

export type TailEvent =
  | {
      readonly t: 'commit';
      readonly first: number;
      readonly last: number;
      readonly start: number;
      readonly committed: number;
      readonly settled: number;
      readonly writes: number;
      readonly rows: number;
      /** As for gaps: the main thread's ms on a core and waiting for one during the transaction. */
      readonly cpu?: number;
      readonly runq?: number;
    }
  | { readonly t: 'fsync'; readonly start: number; readonly end: number }
  | {
      readonly t: 'checkpoint';
      readonly start: number;
      readonly held: number;
      readonly end: number;
      readonly log: number;
      readonly timedOut: boolean;
      /**
       * With a hold: the held pass on the worker, from its start to its end (this thread's clock), the
       * frames it copied, and the worker thread's ms on a core and waiting for one in it (the rest it
       * slept: the fsyncs). `held` → `pass[0]` is the request reaching the worker, `pass[1]` → `end`
       * the answer reaching the event loop.
       */
      readonly pass?: readonly [number, number];
      /**
       * The unheld passes (the first and the catch-up ones before a hold): from the first's start to
       * the last's end on the worker (this thread's clock), how many, and the frames they copied.
       * `unheld[1]` → `held` is the event loop seeing that they were done.
       */
      readonly unheld?: readonly [number, number];
      readonly passes?: number;
      readonly copied?: number;
      readonly frames?: number;
      readonly cpu?: number;
      readonly runq?: number;
    }
  | { readonly t: 'gc'; readonly start: number; readonly end: number; readonly kind: number }
  | {
      readonly t: 'gap';
      readonly start: number;
      readonly end: number;
      /** The main thread's ms on a core, and waiting for one (runnable), in the gap; the rest it slept (blocked in the kernel). */
      readonly cpu?: number;
      readonly runq?: number;
    };

/** The events of one process (exported for its test; the relay uses the one `startTailTrace` makes). */
export class TailTrace {
  readonly #events: TailEvent[] = [];
  readonly #maxEvents: number;
  #dropped = 0;

  constructor(maxEvents = TAIL_TRACE_MAX_EVENTS) {
    this.#maxEvents = maxEvents;
  }

  add(e: TailEvent): void {
    if (this.#events.length < this.#maxEvents) this.#events.push(e);
    else this.#dropped++;
  }

  /**
   * Writes the header and every kept event as JSON lines, a piece at a time: joined into one string,
   * a full trace (tens of MB of text) would need its size again in memory at exit, and past V8's
   * longest string (about 512 MiB) it could not be written at all.
   */
  write(file: string): void {
    const header = {
      t: 'header',
      timeOrigin: performance.timeOrigin,
      dateNowMinusPerf: Date.now() - performance.now(),
      dropped: this.#dropped,
    };
    const fd = openSync(file, 'w');
    try {
      writeSync(fd, `${JSON.stringify(header)}\n`);
      const events = this.#events;
      for (let i = 0; i < events.length; i += WRITE_LINES) {
        let piece = '';
        for (const e of events.slice(i, i + WRITE_LINES)) piece += `${JSON.stringify(e)}\n`;
        writeSync(fd, piece);
      }
    } finally {
      closeSync(fd);
    }
  }
}

let active: TailTrace | undefined;

/**
 * The main thread's scheduler times (Linux /proc/self/schedstat: ns on a core, ns runnable but
 * waiting), in ms; undefined elsewhere. It tells a loop that worked from one that waited for a
 * core (other processes) or slept in a system call (a write blocked behind the disk's journal).
 */
let schedFd: number | undefined;
const schedBuf = Buffer.alloc(128);
export function mainThreadSched(): [cpu: number, runq: number] | undefined {
  if (schedFd === undefined) return undefined;
  try {
    const n = readSync(schedFd, schedBuf, 0, schedBuf.length, 0);
    const [cpu, runq] = schedBuf.toString('latin1', 0, n).split(' ');
    return [Number(cpu) / 1e6, Number(runq) / 1e6];
  } catch {
    return undefined;
  }
}

/** The trace when on, else undefined: hooks call `tailTrace()?.add(...)`. */
export function tailTrace(): TailTrace | undefined {
  return active;
}

/** Turns the trace on for this process; the file is written when the process exits. */
export function startTailTrace(file: string): void {
  if (active) return;
  const trace = new TailTrace();
  active = trace;
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      trace.add({ t: 'gc', start: entry.startTime, end: entry.startTime + entry.duration, kind: entry.detail?.kind ?? 0 });
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  try {
    schedFd = openSync('/proc/self/schedstat', 'r');
    if (!mainThreadSched()) throw new Error('unreadable');
  } catch {
    if (schedFd !== undefined) closeSync(schedFd);
    schedFd = undefined;
  }
  let last = performance.now();
  let lastSched = mainThreadSched();
  const tick = setInterval(() => {
    const now = performance.now();
    const sched = mainThreadSched();
    if (now - last >= TAIL_TRACE_GAP_MS + TAIL_TRACE_TICK_MS) {
      const split = sched && lastSched ? { cpu: sched[0] - lastSched[0], runq: sched[1] - lastSched[1] } : {};
      trace.add({ t: 'gap', start: last + TAIL_TRACE_TICK_MS, end: now, ...split });
    }
    last = now;
    lastSched = sched;
  }, TAIL_TRACE_TICK_MS);
  tick.unref();
  process.once('exit', () => {
    clearInterval(tick);
    gc.disconnect();
    try {
      trace.write(file);
    } catch (error) {
      process.stderr.write(`parley-relay: tail trace not written to ${file}: ${(error as Error).message}\n`);
    }
  });
}
