/**
 * Group commit for a synchronous SQLite connection. spec/09-relay.md §7.1.
 *
 * Every write is a closure. Closures submitted during one turn of the event
 * loop run together in one transaction, each inside its own savepoint (so a
 * failing write rolls back alone), and the whole batch commits once: with
 * WAL and synchronous=FULL that is one fsync for the batch instead of one per
 * request. Each caller's promise settles only after the commit returned, so
 * nothing is acknowledged before it is on disk.
 *
 * While a commit blocks the thread, new requests queue up in the kernel; the
 * next turn parses them all and they form the next batch. Batches therefore
 * grow with load and durability costs little throughput.
 *
 * With a `sync` function (an on-disk database in WAL mode with
 * synchronous=NORMAL, sqlite.ts), the commit only writes the WAL and the
 * fsync that makes it durable runs off the event loop: a batch's callers are
 * answered once an fsync that started after their commit has finished. While
 * one fsync runs, the next batches commit and wait for the next one, so one
 * fsync covers several batches and the thread never blocks on the disk
 * (issue 15: the blocking fsync was most of the relay's time per send,
 * bench/results/relay-profile-before.md). Durable before answered still
 * holds; what changes is that another reader may see a batch between its
 * commit and its fsync (spec/09-relay.md §7.1).
 */
import type { Database } from 'better-sqlite3';
import { mainThreadSched, tailTrace } from '../tail-trace.ts';

interface PendingWrite {
  readonly run: () => unknown;
  /** May change very many rows: committed in a batch of its own, inside `LargeWrites`' calls. */
  readonly large: boolean;
  /** Registered by the write while it ran (`onCommit`): run once its batch committed. */
  committed?: (() => void)[];
  /** performance.now() at submit: the batch's wait is its oldest write's. */
  readonly at: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Where one batch's time went, seconds (issue 15's latency breakdown,
 * bench/results/relay-latency.md): `wait` from its oldest write's submit to
 * the transaction's start, `transaction` the statements and the commit on
 * the event loop, `sync` from the commit to the loop seeing the fsync that
 * covers it done (the fsync on the thread pool plus any fsync it queued
 * behind, plus the loop's own lag in picking the completion up).
 */
export interface BatchPhases {
  readonly wait: number;
  readonly transaction: number;
  readonly sync: number;
}

/** `seconds`: from the transaction's start until the batch is durable and answered. */
/**
 * A batch closes at this many writes and the rest of the queue waits one turn: a burst (say,
 * after a pause of the process) then commits in several transactions with socket reads, answers
 * and pushes between them, instead of one that holds the event loop for its whole length.
 * Large enough that a batch's commit is still shared by many writes (batches under load were
 * 5-55 writes, bench/results/relay-latency.md). Not a time bound: on a machine short of CPU, a
 * wall-clock bound closed batches while the process waited for a core, and the many small commits
 * that followed cost more than they saved (measured there).
 */
export const MAX_BATCH_WRITES = 256;

/**
 * A batch also closes once its writes changed this many mailbox rows (inserted or deleted, as the
 * journal counts them), so a batch's length follows its work rather than its writes: a write is
 * a send frame of many envelopes or an acknowledgement of many. At 5,000 envelopes/s after a
 * hiccup, 256 writes of 8 envelopes (2,000-4,000 rows with the acknowledgements) held the loop
 * 127-150 ms on a quiet machine and up to 1.2 s on a loaded one, and decided the p99
 * (bench/results/relay-latency.md, "Loop stalls"); steady batches are 60-150 rows. 256 rows hold
 * it about 20-25 ms on a quiet machine. 128 was tried: the relay, near saturation at that rate,
 * then paid a commit per 128 rows and did not catch up with the backlog (writes waited 250-540 ms
 * in its queue against 15-35 ms at 256). Counted, not timed: a wall-clock bound closes batches
 * while the process waits for a core.
 */
export const MAX_BATCH_ROWS = 256;

export type BatchObserver = (batchSize: number, seconds: number, phases: BatchPhases) => void;

/**
 * Called around the batch of a large write (`submit(write, true)`), outside any transaction:
 * sqlite.ts moves the savepoint journal to disk for it (a whole mailbox's pages would not fit in
 * memory comfortably) and back to memory after.
 */
export interface LargeWrites {
  before(): void;
  after(): void;
}

/** Makes everything committed so far durable (fsync of the WAL); `syncNow` is the same, blocking (for close). */
export interface DurableSync {
  sync(): Promise<void>;
  syncNow(): void;
}

/**
 * State kept beside the database that must follow its transactions (sqlite-counters.ts: the
 * mailbox counters in memory). `begin` opens a batch; `savepoint` before each write returns a
 * mark that `rollbackTo` returns to when that write's savepoint rolls back; `commit` after the
 * batch committed, `rollback` when its commit failed (nothing in it happened).
 */
export interface BatchJournal {
  begin(): void;
  savepoint(): number;
  rollbackTo(mark: number): void;
  commit(): void;
  rollback(): void;
  /** Mailbox rows the open batch changed so far (rolled-back writes not counted): bounds it by MAX_BATCH_ROWS. */
  rows(): number;
}

interface Committed {
  readonly batch: PendingWrite[];
  readonly outcomes: { ok: boolean; value: unknown }[];
  readonly started: number;
  readonly committedAt: number;
  /** Mailbox rows the batch changed (the journal's count; 0 without one). */
  readonly rows: number;
  /** With the tail trace on: the main thread's ms on a core and waiting for one in the transaction. */
  readonly cpu?: number;
  readonly runq?: number;
}

export class WriteBatcher {
  readonly #db: Database;
  readonly #observe: BatchObserver | undefined;
  readonly #sync: DurableSync | undefined;
  readonly #afterCommit: (() => void) | undefined;
  readonly #journal: BatchJournal | undefined;
  #queue: PendingWrite[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  #holds = 0;
  /** Committed batches waiting for the next fsync. */
  #unsynced: Committed[] = [];
  /** The batches the running fsync covers (empty when none runs). */
  #inSync: Committed[] = [];
  #closing = false;
  /** The write whose closure runs now (for `onCommit`). */
  #current: PendingWrite | undefined;
  /**
   * Runs one write inside the batch's transaction, where better-sqlite3 makes a nested transaction
   * a savepoint. Built once: `transaction()` defines four wrapper functions on every call, which
   * cost 4.4 µs per envelope when built per write (loopjs's profile, bench/results/relay-latency.md).
   */
  readonly #savepoint: (run: () => unknown) => unknown;

  /**
   * `afterCommit`: told after every commit (sqlite.ts: the checkpoint worker, wal-checkpointer.ts).
   * `journal`: follows each batch's savepoints and commit (sqlite.ts: the mailbox counters).
   */
  readonly #large: LargeWrites | undefined;

  constructor(
    db: Database,
    observe?: BatchObserver,
    sync?: DurableSync,
    afterCommit?: () => void,
    journal?: BatchJournal,
    large?: LargeWrites,
  ) {
    this.#db = db;
    this.#large = large;
    this.#observe = observe;
    this.#sync = sync;
    this.#afterCommit = afterCommit;
    this.#journal = journal;
    this.#savepoint = db.transaction((run: () => unknown) => run());
  }

  /**
   * Runs `write` in the next batch; resolves with its result once the batch is committed and durable.
   * `large`: the write may change very many rows, and commits in a batch of its own.
   */
  submit<T>(write: () => T, large = false): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('storage is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: write, large, at: performance.now(), resolve: resolve as (v: unknown) => void, reject });
      this.#scheduled ??= setImmediate(() => this.flush());
    });
  }

  /**
   * Commits the queued writes (also used on close, which passes `all`). A batch closes
   * after MAX_BATCH_WRITES writes; what is left goes to the next turn, after the loop has
   * read sockets and answered the fsyncs that finished.
   */
  flush(all = false): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    // Held (a checkpoint finishing, wal-checkpointer.ts): the writes wait in the queue, the loop runs on.
    if (this.#holds > 0 && !all) return;
    const queue = this.#queue;
    // Writes submitted while this batch runs wait for the next one, as they always did.
    const queued = queue.length;
    if (queued === 0) return;
    const started = performance.now();
    const sched0 = tailTrace() && mainThreadSched();
    const outcomes: { ok: boolean; value: unknown }[] = [];
    const journal = this.#journal;
    // With a LargeWrites hook, a large write commits alone, and a batch closes before one (below).
    const hook = this.#large;
    const alone = hook !== undefined && (queue[0] as PendingWrite).large;
    if (alone) hook.before();
    journal?.begin();
    try {
      this.#db.transaction(() => {
        for (let i = 0; i < queued; i++) {
          // `i > 0`: a write larger than the bound still commits, alone.
          const write = queue[i] as PendingWrite;
          const full = journal !== undefined && journal.rows() >= MAX_BATCH_ROWS;
          if (!all && (i === MAX_BATCH_WRITES || (i > 0 && (full || alone || (hook !== undefined && write.large))))) break;
          this.#current = write;
          const mark = journal ? journal.savepoint() : 0;
          try {
            // A nested better-sqlite3 transaction is a savepoint.
            outcomes.push({ ok: true, value: this.#savepoint(write.run) });
          } catch (error) {
            // Rolled back: what it asked to run after the commit does not run, what it counted is undone.
            journal?.rollbackTo(mark);
            write.committed = undefined;
            outcomes.push({ ok: false, value: error });
          } finally {
            this.#current = undefined;
          }
        }
      })();
    } catch (error) {
      // The commit itself failed: nothing in the batch is durable.
      journal?.rollback();
      const failed = queue.splice(0, Math.max(1, outcomes.length));
      for (const write of failed) write.committed = undefined;
      if (alone) hook.after();
      this.#rest();
      for (const write of failed) write.reject(error);
      return;
    }
    const rows = journal ? journal.rows() : 0;
    journal?.commit();
    if (alone) hook.after();
    const batch = queue.splice(0, outcomes.length);
    this.#rest();
    const sched1 = sched0 && mainThreadSched();
    const committed: Committed = {
      batch,
      outcomes,
      started,
      committedAt: performance.now(),
      rows,
      ...(sched0 && sched1 ? { cpu: sched1[0] - sched0[0], runq: sched1[1] - sched0[1] } : {}),
    };
    this.#afterCommit?.();
    // The fsync starts first, then the recipients are woken (their pushes run while it does).
    if (this.#sync) {
      this.#unsynced.push(committed);
      if (!this.#closing) this.#syncSoon();
      for (const write of batch) this.#runCommitted(write);
    } else {
      for (const write of batch) this.#runCommitted(write);
      this.#settle(committed);
    }
  }

  /**
   * Called inside a write: runs `fn` once the write's batch has committed (its rows are
   * visible to reads), before the fsync that makes it durable, and not at all if the write
   * rolled back. sqlite.ts wakes the recipients' websockets this way: spec/09-relay.md §7.1
   * lets an envelope reach its recipient before its sender is answered, and waiting for the
   * fsync added one to two fsyncs to every delivery (bench/results/relay-latency.md).
   * Outside a write, `fn` runs at once.
   */
  onCommit(fn: () => void): void {
    const write = this.#current;
    if (!write) {
      fn();
      return;
    }
    if (write.committed) write.committed.push(fn);
    else write.committed = [fn];
  }

  #runCommitted(write: PendingWrite): void {
    const fns = write.committed;
    if (!fns) return;
    write.committed = undefined;
    for (const fn of fns) {
      try {
        fn();
      } catch {
        // A listener's failure is not the write's: the write is committed and will be answered.
      }
    }
  }

  /**
   * Starts no transaction until the returned release is called (once; later calls do nothing).
   * Writes still queue, and the event loop is not blocked: wal-checkpointer.ts holds writes while
   * its worker copies the last frames, so its checkpoint completes and the WAL can start again.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0 && !this.#closed) this.#rest();
    };
  }

  /** Writes left after a batch closed early run in the next turn. */
  #rest(): void {
    if (this.#queue.length > 0) this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Starts an fsync for the batches committed so far, unless one runs (then the next one covers them). */
  #syncSoon(): void {
    if (this.#inSync.length > 0 || this.#unsynced.length === 0) return;
    const sync = this.#sync as DurableSync;
    const covered = this.#unsynced;
    this.#unsynced = [];
    this.#inSync = covered;
    const trace = tailTrace();
    const syncStart = trace ? performance.now() : 0;
    const done = (error?: unknown) => {
      trace?.add({ t: 'fsync', start: syncStart, end: performance.now() });
      // close() made these durable and settled them already.
      if (this.#inSync !== covered) return;
      this.#inSync = [];
      for (const c of covered) {
        // Not known to be durable: nobody is told it is (a retry with the same ids is idempotent).
        if (error === undefined) this.#settle(c);
        else for (const write of c.batch) write.reject(error);
      }
      if (!this.#closing) this.#syncSoon();
    };
    sync.sync().then(
      () => done(),
      (error: unknown) => done(error ?? new Error('fsync failed')),
    );
  }

  #settle({ batch, outcomes, started, committedAt, rows, cpu, runq }: Committed): void {
    const trace = tailTrace();
    if (trace) {
      const first = (batch[0] as PendingWrite).at;
      const last = (batch[batch.length - 1] as PendingWrite).at;
      trace.add({
        t: 'commit',
        first,
        last,
        start: started,
        committed: committedAt,
        settled: performance.now(),
        writes: batch.length,
        rows,
        ...(cpu === undefined ? {} : { cpu, runq }),
      });
    }
    if (this.#observe) {
      const now = performance.now();
      this.#observe(batch.length, (now - started) / 1000, {
        wait: (started - (batch[0] as PendingWrite).at) / 1000,
        transaction: (committedAt - started) / 1000,
        sync: (now - committedAt) / 1000,
      });
    }
    batch.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.value);
    });
  }

  /** Commits what is queued, makes it durable, and refuses further writes. */
  close(): void {
    this.#closing = true;
    this.flush(true);
    this.#closed = true;
    const waiting = [...this.#inSync, ...this.#unsynced];
    this.#inSync = [];
    this.#unsynced = [];
    if (waiting.length === 0) return;
    try {
      (this.#sync as DurableSync).syncNow();
    } catch (error) {
      for (const c of waiting) for (const write of c.batch) write.reject(error);
      return;
    }
    for (const c of waiting) this.#settle(c);
  }
}
