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
 */
import type { Database } from 'better-sqlite3';

interface PendingWrite {
  readonly run: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export type BatchObserver = (batchSize: number, seconds: number) => void;

export class WriteBatcher {
  readonly #db: Database;
  readonly #observe: BatchObserver | undefined;
  #queue: PendingWrite[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(db: Database, observe?: BatchObserver) {
    this.#db = db;
    this.#observe = observe;
  }

  /** Runs `write` in the next batch; resolves with its result after the batch committed. */
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
    this.#observe?.(batch.length, (performance.now() - started) / 1000);
    batch.forEach((write, i) => {
      const outcome = outcomes[i] as { ok: boolean; value: unknown };
      if (outcome.ok) write.resolve(outcome.value);
      else write.reject(outcome.value);
    });
  }

  /** Commits what is queued and refuses further writes. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
