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

interface PendingWrite {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export type BatchObserver = (batchSize: number, seconds: number) => void;

/** Makes everything committed so far durable (fsync of the WAL); `syncNow` is the same, blocking (for close). */
export interface DurableSync {
  sync(): Promise<void>;
  syncNow(): void;
}

interface Committed {
  readonly batch: PendingWrite[];
  readonly outcomes: { ok: boolean; value: unknown }[];
  readonly started: number;
}

export class WriteBatcher {
  readonly #db: Database;
  readonly #observe: BatchObserver | undefined;
  readonly #sync: DurableSync | undefined;
  #queue: PendingWrite[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;
  /** Committed batches waiting for the next fsync. */
  #unsynced: Committed[] = [];
  /** The batches the running fsync covers (empty when none runs). */
  #inSync: Committed[] = [];
  #closing = false;

  constructor(db: Database, observe?: BatchObserver, sync?: DurableSync) {
    this.#db = db;
    this.#observe = observe;
    this.#sync = sync;
  }

  /** Runs `write` in the next batch; resolves with its result once the batch is committed and durable. */
  submit<T>(write: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('storage is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run: write, resolve: resolve as (v: unknown) => void, reject });
      this.#scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits everything queued now (also used on close). */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const batch = this.#queue;
    if (batch.length === 0) return;
    this.#queue = [];
    const started = performance.now();
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      this.#db.transaction(() => {
        for (const write of batch) {
          try {
            // A nested better-sqlite3 transaction is a savepoint.
            outcomes.push({ ok: true, value: this.#db.transaction(write.run)() });
          } catch (error) {
            outcomes.push({ ok: false, value: error });
          }
        }
      })();
    } catch (error) {
      // The commit itself failed: nothing in the batch is durable.
      for (const write of batch) write.reject(error);
      return;
    }
    const committed = { batch, outcomes, started };
    if (this.#sync) {
      this.#unsynced.push(committed);
      if (!this.#closing) this.#syncSoon();
    } else this.#settle(committed);
  }

  /** Starts an fsync for the batches committed so far, unless one runs (then the next one covers them). */
  #syncSoon(): void {
    if (this.#inSync.length > 0 || this.#unsynced.length === 0) return;
    const sync = this.#sync as DurableSync;
    const covered = this.#unsynced;
    this.#unsynced = [];
    this.#inSync = covered;
    const done = (error?: unknown) => {
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

  #settle({ batch, outcomes, started }: Committed): void {
    this.#observe?.(batch.length, (performance.now() - started) / 1000);
    batch.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.value);
    });
  }

  /** Commits what is queued, makes it durable, and refuses further writes. */
  close(): void {
    this.#closing = true;
    this.flush();
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
