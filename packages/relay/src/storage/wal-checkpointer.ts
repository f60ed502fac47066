/**
 * WAL checkpoints on a worker thread. spec/09-relay.md §7.1.
 *
 * SQLite's automatic checkpoint runs inside the commit that crosses
 * `wal_autocheckpoint` pages, on the committing connection: for the relay
 * that is the event loop. It copies the WAL into the database file and
 * fsyncs both, and measured here it was 40-55% of the cost of writing a row
 * and a 40 ms stall every few hundred commits (issue 15's latency work,
 * bench/results/relay-latency.md). So the relay's connection runs with
 * `wal_autocheckpoint = 0` and this worker, on a connection of its own, runs
 * `PRAGMA wal_checkpoint(PASSIVE)` at most every CHECKPOINT_INTERVAL_MS while
 * writes happen. PASSIVE never blocks the writer: it copies the frames no
 * reader still needs. Only a complete checkpoint lets the next write start
 * the WAL again from its beginning, and under a steady write rate the
 * worker's never is: frames are committed while it copies. So the worker
 * copies while writes go on (unheld passes); then the relay holds its writes
 * (`WriteBatcher.hold`: they queue, the event loop runs on) and a held pass
 * copies the frames committed since the last unheld one, with no writer
 * beside it, so it completes. The hold ends when it returns, or after
 * CHECKPOINT_HOLD_MAX_MS. The next write transaction then starts the WAL
 * again (the file is reused, so `WalSync`'s descriptor still names it). The
 * periodic checkpoint runs the held pass, and holds, only once the WAL is
 * past CHECKPOINT_HOLD_MIN_WAL_BYTES: each hold delays deliveries.
 *
 * What a hold costs is the held pass's fsync of the database file. SQLite
 * fsyncs the database only in a pass that catches up with the WAL's end, so
 * the unheld passes leave every page they copied dirty in the page cache, and
 * the held pass's fsync wrote them all: measured at 5,000 envelopes/s, held
 * passes of 11-33 ms that copied 146-677 frames and slept most of that time
 * (session 6, bench/results/relay-latency.md "Checkpoint holds"). So the
 * worker writes the database's dirty pages to disk itself (fdatasync through
 * `WalSync`'s descriptor) after every unheld pass, and before a hold it runs
 * catch-up passes, unheld, until one copies at most CHECKPOINT_CATCH_UP_FRAMES
 * (or CHECKPOINT_CATCH_UP_PASSES ran): the held pass then copies and syncs only
 * what was committed since that short pass.
 *
 * Until session 4 the held pass ran on the relay's connection, and only
 * when the worker's own result looked incomplete, which it never does (it
 * counts the frames of its own snapshot): under load the WAL never started
 * again and grew by about 16 MiB/s, and when a quiet moment finally let it
 * start again, SQLite cut it back to `journal_size_limit` inside that commit
 * (215 ms on the event loop for a 400 MiB WAL; "Loop stalls" in
 * bench/results/relay-latency.md).
 *
 * Durability is unchanged: a commit is durable once its WAL frames are
 * fsynced (wal-sync.ts); a checkpoint only moves durable frames into the
 * database file, SQLite fsyncing the WAL before and the database before the
 * WAL can start again; the worker's flushes only add fsyncs.
 *
 * If the worker fails, the relay's connection takes checkpoints back
 * (`wal_autocheckpoint` to SQLite's default), so the WAL stays bounded either way.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';
import { type TailTrace, tailTrace } from '../tail-trace.ts';

/**
 * Most often a checkpoint is asked for while writes happen. Each periodic pass copies what was
 * written since the last (at 5,000 envelopes/s the relay writes 56-72 MiB of WAL a second, so
 * 28-36 MiB at this interval, session 6) and then flushes it, and a page rewritten by many commits
 * is copied once per pass, so much shorter intervals cost more copying and fsyncs.
 */
export const CHECKPOINT_INTERVAL_MS = 500;

/**
 * Longest the relay's writes are held for the held pass. That pass copies what was committed
 * after the last unheld one began and fsyncs the WAL and the database: a few ms on a quiet machine,
 * 10-30 ms where the disk's fsyncs take 20-30 ms (session 6). A pass still running then completes
 * nothing, and the WAL starts again after a later checkpoint; the bound keeps a slow disk from
 * adding more than this to a write's latency.
 */
export const CHECKPOINT_HOLD_MAX_MS = 50;

/**
 * The periodic checkpoint holds the writes for its held pass only once its first pass found the
 * WAL at least this large; below, the WAL grows on (the unheld passes still copy its frames into
 * the database every CHECKPOINT_INTERVAL_MS). Every hold delays the deliveries that arrive during
 * it, and the batch after it is large. Its floor is two fsyncs (the WAL before copying, the
 * database after), which this machine's shared disk stretches to 10-30 ms under load, so holds
 * must be rare: at 128 MiB (session 5) the relay held every 2-2.7 s at 5,000 envelopes/s (it wrote
 * 56-72 MiB of WAL a second there, 14,000-18,000 frames of 4 KiB, read from the tail trace's
 * checkpoints), and holds overlapped a third to a half of the slowest 1% of deliveries. At this
 * size it holds every 7-9 s at that rate. What it costs: the WAL file takes this much disk and
 * page cache under sustained load (at low rates a periodic pass completes between two commits and
 * the WAL starts again without a hold), and recovery after a crash replays up to this much
 * (measured: 1.7 s to open and count a database with an 869 MiB WAL after `kill -9`, 0.3 s with
 * 217 MiB, page cache warm). Reads do not pay for its length: a reader searches only the frames
 * after the last one copied, and the unheld passes keep that close to the end.
 */
export const CHECKPOINT_HOLD_MIN_WAL_BYTES = 512 * 1024 * 1024;

/**
 * Before a hold, unheld catch-up passes run until one copied at most this many frames (2 MiB of
 * 4 KiB pages): the held pass then copies what was committed during that short pass, its flush and
 * the two messages around the hold. Lower bounds cost more passes (each one fsyncs the WAL and the
 * database) for a held pass shorter by little.
 */
export const CHECKPOINT_CATCH_UP_FRAMES = 512;

/**
 * Most unheld passes before a hold (the first included). Each copies what came during the one
 * before, so the count of frames falls to what the relay commits during one pass's fixed cost (its
 * two fsyncs): on a quiet machine below CHECKPOINT_CATCH_UP_FRAMES after 2-3 passes; where the
 * disk's fsyncs take 20-30 ms, 300-600 frames after the second pass and no lower (measured with 6:
 * every catch-up ran all 6, session 6). The hold comes anyway after this many, so the WAL still
 * starts again (CHECKPOINT_HOLD_MAX_MS bounds the hold); more passes would only add fsyncs.
 */
export const CHECKPOINT_CATCH_UP_PASSES = 4;

/**
 * The event loop seeing the catch-up's answer later than this (a long turn, a GC pause) asks for one
 * more unheld pass before holding, within CHECKPOINT_CATCH_UP_PASSES: at 5,000 envelopes/s the relay
 * commits 20-30 frames a ms, and the held pass copies all that came since the last unheld one
 * (measured: answers 24-66 ms late made held passes of 328-866 frames, session 6).
 */
export const CHECKPOINT_HOLD_LATE_MS = 5;

/**
 * `journal_size_limit` set on the relay's connection: the size SQLite cuts the WAL back to when it
 * starts again. Above the size that triggers the hold (twice it: frames keep coming during the
 * first pass), so a restart reuses the file instead of truncating it inside a commit on the event
 * loop (26 ms for a 100 MiB WAL, "Loop stalls" in bench/results/relay-latency.md).
 */
const WAL_SIZE_LIMIT_FACTOR = 2;

/** SQLite's default `wal_autocheckpoint`, restored if the worker fails. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

// Plain JavaScript evaluated in the worker: no TypeScript loader needed, wherever the relay runs from.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { closeSync, fdatasyncSync, openSync, readSync } = require('node:fs');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const { databaseFd, catchUpFrames } = workerData;
// This thread's scheduler times (Linux): ms on a core and ms waiting for one; the rest of a pass it slept (fsync).
let schedFd;
try { schedFd = openSync('/proc/thread-self/schedstat', 'r'); } catch {}
const schedBuf = Buffer.alloc(128);
const sched = () => {
  if (schedFd === undefined) return undefined;
  try {
    const [cpu, runq] = schedBuf.toString('latin1', 0, readSync(schedFd, schedBuf, 0, 128, 0)).split(' ');
    return [Number(cpu) / 1e6, Number(runq) / 1e6];
  } catch { return undefined; }
};
// Wall-clock ms (the main thread's performance.now() has another origin).
const now = () => performance.timeOrigin + performance.now();
// The last pass's result: what the next one copied is the difference (the whole result after the WAL started again).
let last = { log: 0, checkpointed: 0 };
const pass = () => {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)');
  const copied = r.log >= last.log && r.checkpointed >= last.checkpointed ? r.checkpointed - last.checkpointed : r.checkpointed;
  last = r;
  return { log: r.log, checkpointed: r.checkpointed, copied };
};
// An unheld pass that did not reach the WAL's end left the pages it copied unsynced (SQLite syncs the
// database only in one that does): written now, while writes go on, the held pass's fsync has only its own.
const flush = (p) => {
  if (databaseFd !== undefined && p.copied > 0) fdatasyncSync(databaseFd);
};
parentPort.on('message', (m) => {
  if (m.kind === 'close') {
    db.close();
    if (schedFd !== undefined) closeSync(schedFd);
    parentPort.close();
    return;
  }
  try {
    if (m.kind === 'first') {
      const began = now();
      let p = pass();
      flush(p);
      let passes = 1;
      let copied = p.copied;
      const hold = m.hold || p.log >= m.holdAboveFrames;
      // Catch-up passes, unheld, until one copied little: the held pass copies what came during that one.
      while (hold && p.copied > catchUpFrames && passes < m.passes) {
        p = pass();
        flush(p);
        passes++;
        copied += p.copied;
      }
      parentPort.postMessage({ ok: true, kind: 'first', hold, log: p.log, checkpointed: p.checkpointed, passes, copied, began, ended: now() });
      return;
    }
    const s0 = sched();
    const began = now();
    const p = pass();
    const ended = now();
    const s1 = sched();
    parentPort.postMessage({
      ok: true, kind: 'held', log: p.log, checkpointed: p.checkpointed, copied: p.copied, began, ended,
      cpu: s0 && s1 ? s1[0] - s0[0] : undefined, runq: s0 && s1 ? s1[1] - s0[1] : undefined,
    });
  } catch (error) {
    parentPort.postMessage({ ok: false, message: String(error && error.message) });
  }
});
`;

/** What the worker answers for a pass (its times are wall-clock ms, `performance.timeOrigin + performance.now()`). */
interface PassMessage {
  readonly ok: boolean;
  /** `first`: the unheld passes (the first and the catch-up ones); `held`: the pass run while writes are held. */
  readonly kind?: 'first' | 'held';
  /** With `first`: whether a hold should follow (asked for by `checkpoint()`, or the WAL past the size). */
  readonly hold?: boolean;
  /** The last pass's result. */
  readonly log?: number;
  readonly checkpointed?: number;
  /** With `first`: unheld passes run. */
  readonly passes?: number;
  /** Frames copied into the database (`first`: by all its passes; `held`: by the held pass). */
  readonly copied?: number;
  readonly began?: number;
  readonly ended?: number;
  /** The worker thread's ms on a core and waiting for one during the pass (Linux). */
  readonly cpu?: number;
  readonly runq?: number;
}

export interface WalCheckpointerOptions {
  /** Least time between two periodic checkpoints (default CHECKPOINT_INTERVAL_MS). */
  readonly intervalMs?: number;
  /** WAL size from which a periodic checkpoint holds the writes for its held pass (default CHECKPOINT_HOLD_MIN_WAL_BYTES). */
  readonly holdAboveBytes?: number;
  /**
   * A descriptor of the database file, open for writing, that stays open until after the relay's
   * connection closed (`WalSync.databaseFd`): the worker flushes the database through it after its
   * unheld passes. Without it the held pass's fsync writes every page the unheld passes copied.
   */
  readonly databaseFd?: number;
  /** Longest hold (default CHECKPOINT_HOLD_MAX_MS; tests that need the WAL to start again on a busy machine raise it). */
  readonly holdMaxMs?: number;
  /** Catch-up bounds (defaults CHECKPOINT_CATCH_UP_FRAMES, CHECKPOINT_CATCH_UP_PASSES). */
  readonly catchUpFrames?: number;
  readonly catchUpPasses?: number;
}

export interface CheckpointResult {
  /** Frames in the WAL, and frames copied into the database, as the checkpoint's last pass found them. */
  readonly log: number;
  readonly checkpointed: number;
  /** Passes run while writes went on (the first and the catch-up ones), and the frames they copied. */
  readonly unheld: { readonly passes: number; readonly frames: number };
  /** With a hold: the frames its pass copied (what was committed after the last unheld pass began). */
  readonly heldFrames?: number;
}

export class WalCheckpointer {
  readonly #db: Database;
  readonly #worker: Worker;
  #running = false;
  #lastAsked = Number.NEGATIVE_INFINITY;
  #failed = false;
  #closed = false;
  #waiters: ((r: CheckpointResult | undefined) => void)[] = [];
  /** `checkpoint()` calls made while a pass ran: answered by a pass that starts after that one. */
  #next: ((r: CheckpointResult | undefined) => void)[] = [];
  #holdWrites: (() => () => void) | undefined;
  #release: (() => void) | undefined;
  #holdTimer: NodeJS.Timeout | undefined;
  /** For the tail trace (tail-trace.ts): when this checkpoint was asked for, when its hold began, whether it timed out. */
  #askedAt = 0;
  #heldAt = 0;
  #timedOut = false;
  readonly #intervalMs: number;
  /** The hold's threshold in WAL frames (holdAboveBytes / page size). */
  readonly #holdAboveFrames: number;
  /** The running checkpoint's unheld passes, as the worker reported them (for the tail trace). */
  #unheld: PassMessage | undefined;
  readonly #catchUpPasses: number;
  readonly #holdMaxMs: number;

  /** `db` is the relay's own connection (on disk, WAL mode) to `path`. */
  constructor(db: Database, path: string, options: WalCheckpointerOptions = {}) {
    this.#db = db;
    this.#intervalMs = options.intervalMs ?? CHECKPOINT_INTERVAL_MS;
    this.#catchUpPasses = options.catchUpPasses ?? CHECKPOINT_CATCH_UP_PASSES;
    this.#holdMaxMs = options.holdMaxMs ?? CHECKPOINT_HOLD_MAX_MS;
    const holdAbove = options.holdAboveBytes ?? CHECKPOINT_HOLD_MIN_WAL_BYTES;
    this.#holdAboveFrames = Math.ceil(holdAbove / Number(db.pragma('page_size', { simple: true })));
    db.pragma('wal_autocheckpoint = 0');
    const limit = WAL_SIZE_LIMIT_FACTOR * holdAbove;
    if (Number(db.pragma('journal_size_limit', { simple: true })) < limit) db.pragma(`journal_size_limit = ${limit}`);
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        module: createRequire(import.meta.url).resolve('better-sqlite3'),
        path,
        databaseFd: options.databaseFd,
        catchUpFrames: options.catchUpFrames ?? CHECKPOINT_CATCH_UP_FRAMES,
      },
    });
    // The relay's exit does not wait for it.
    this.#worker.unref();
    this.#worker.on('message', (m: PassMessage) => {
      if (!m.ok) {
        this.#endHold();
        this.#fail();
        return;
      }
      if (m.kind === 'first') this.#addUnheld(m);
      // A periodic pass that found a small WAL ends here: the WAL grows on, no write is held.
      if (m.kind === 'first' && m.hold && this.#holdWrites && !this.#closed) {
        // The loop saw the answer late (a long turn, a GC pause): the held pass would copy all that
        // was committed meanwhile. One more unheld pass first, while the count allows.
        const late = performance.timeOrigin + performance.now() - (m.ended ?? 0);
        const passes = this.#unheld?.passes ?? 1;
        if (late > CHECKPOINT_HOLD_LATE_MS && passes < this.#catchUpPasses) {
          this.#worker.postMessage({ kind: 'first', hold: true, holdAboveFrames: 0, passes: this.#catchUpPasses - passes });
          return;
        }
        // Between two batches (this is a turn of its own): no write runs until the held pass returns.
        this.#release = this.#holdWrites();
        this.#heldAt = performance.now();
        this.#timedOut = false;
        this.#holdTimer = setTimeout(() => {
          this.#timedOut = true;
          this.#endHold();
        }, this.#holdMaxMs);
        this.#worker.postMessage({ kind: 'held' });
        return;
      }
      this.#endHold();
      this.#running = false;
      const result: CheckpointResult = {
        log: m.log ?? 0,
        checkpointed: m.checkpointed ?? 0,
        unheld: { passes: this.#unheld?.passes ?? 0, frames: this.#unheld?.copied ?? 0 },
        ...(m.kind === 'held' ? { heldFrames: m.copied ?? 0 } : {}),
      };
      const trace = tailTrace();
      if (trace) this.#trace(trace, m);
      this.#heldAt = 0;
      for (const w of this.#waiters.splice(0)) w(result);
      if (this.#next.length > 0 && !this.#closed) {
        this.#waiters.push(...this.#next.splice(0));
        this.#ask(performance.now(), true);
      }
    });
    this.#worker.on('error', () => this.#fail());
    this.#worker.on('exit', () => {
      if (!this.#closed) this.#fail();
    });
  }

  /**
   * How to hold the relay's writes for the held pass (`WriteBatcher.hold`). Without it the
   * checkpoint is the worker's first pass only, and the WAL starts again only when no write
   * happened to be committed while it ran.
   */
  holdWritesWith(hold: () => () => void): void {
    this.#holdWrites = hold;
  }

  /** Called after each commit: asks for a checkpoint unless one runs or one was asked for recently. */
  committed(now = performance.now()): void {
    if (this.#running || this.#failed || this.#closed || now - this.#lastAsked < this.#intervalMs) return;
    this.#ask(now, false);
  }

  /**
   * Runs a complete checkpoint now, with the hold whatever the WAL's size (tests, operators);
   * resolves with what it found, or undefined if the worker failed.
   */
  checkpoint(): Promise<CheckpointResult | undefined> {
    if (this.#failed || this.#closed) return Promise.resolve(undefined);
    if (!this.#running) {
      const result = new Promise<CheckpointResult | undefined>((resolve) => this.#waiters.push(resolve));
      this.#ask(performance.now(), true);
      return result;
    }
    // One asked for by a commit is running, on a snapshot taken before the commits that came since:
    // joining it would answer "complete" while those frames are still in the WAL, and the next write
    // would not start it again. A pass of its own follows once that one returns.
    return new Promise<CheckpointResult | undefined>((resolve) => this.#next.push(resolve));
  }

  /** Sums the unheld passes of this checkpoint (a late loop may have asked for more). */
  #addUnheld(m: PassMessage): void {
    const u = this.#unheld;
    this.#unheld = u ? { ...m, began: u.began, passes: (u.passes ?? 1) + (m.passes ?? 1), copied: (u.copied ?? 0) + (m.copied ?? 0) } : m;
  }

  /** The checkpoint's event for the tail trace: its unheld passes and, with a hold, the held pass's parts. */
  #trace(trace: TailTrace, m: PassMessage): void {
    // The worker's wall clock moved to this thread's performance.now().
    const local = (t: number) => t - performance.timeOrigin;
    const u = this.#unheld;
    const unheld =
      u?.began !== undefined && u.ended !== undefined
        ? { unheld: [local(u.began), local(u.ended)] as const, passes: u.passes ?? 1, copied: u.copied ?? 0 }
        : {};
    const held =
      m.kind === 'held' && this.#heldAt > 0 && m.began !== undefined && m.ended !== undefined
        ? {
            pass: [local(m.began), local(m.ended)] as const,
            frames: m.copied ?? 0,
            ...(m.cpu === undefined ? {} : { cpu: m.cpu, runq: m.runq ?? 0 }),
          }
        : {};
    trace.add({
      t: 'checkpoint',
      start: this.#askedAt,
      held: this.#heldAt,
      end: performance.now(),
      log: m.log ?? 0,
      timedOut: this.#timedOut,
      ...unheld,
      ...held,
    });
  }

  /** Whether checkpoints still run on the worker (false once it failed and the connection took them back). */
  get healthy(): boolean {
    return !this.#failed;
  }

  /** Writes go on (the held pass returned, failed, or took longer than CHECKPOINT_HOLD_MAX_MS). */
  #endHold(): void {
    if (this.#holdTimer) clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  #ask(now: number, explicit: boolean): void {
    this.#running = true;
    this.#lastAsked = now;
    this.#askedAt = now;
    this.#unheld = undefined;
    this.#worker.postMessage({ kind: 'first', hold: explicit, holdAboveFrames: this.#holdAboveFrames, passes: this.#catchUpPasses });
  }

  #fail(): void {
    this.#endHold();
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#running = false;
    // The relay's connection checkpoints again itself: slower, but the WAL stays bounded.
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    for (const w of [...this.#waiters.splice(0), ...this.#next.splice(0)]) w(undefined);
    void this.#worker.terminate();
  }

  /** Closes the worker's connection first, so the relay's connection is the last one and closes the WAL itself. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#endHold();
    for (const w of [...this.#waiters.splice(0), ...this.#next.splice(0)]) w(undefined);
    if (this.#failed) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage({ kind: 'close' });
    // A worker that does not exit in time is ended: closing must not hang.
    const timer = setTimeout(() => void this.#worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}
