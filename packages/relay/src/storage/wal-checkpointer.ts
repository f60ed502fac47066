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
 * reader still needs. Frames committed meanwhile are then copied by the
 * relay's connection between two batches (a few, not the whole WAL), so the
 * checkpoint completes and the next write transaction starts the WAL again
 * from its beginning (the file is reused, so `WalSync`'s descriptor still
 * names it).
 *
 * Durability is unchanged: a commit is durable once its WAL frames are
 * fsynced (wal-sync.ts); a checkpoint only moves durable frames into the
 * database file, fsyncing the WAL before and the database after.
 *
 * If the worker fails, the relay's connection takes checkpoints back
 * (`wal_autocheckpoint` to SQLite's default), so the WAL stays bounded either way.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';

/**
 * Most often a checkpoint is asked for while writes happen. The WAL grows by what is written
 * between two (measured: about 16 MiB/s at 8,000 rows/s of 1 KiB, so 8 MiB at this interval;
 * `journal_size_limit` cuts the file back to 64 MiB when it restarts), and a page rewritten by
 * many commits is copied once per checkpoint, so much shorter intervals cost more copying.
 */
export const CHECKPOINT_INTERVAL_MS = 500;

/** SQLite's default `wal_autocheckpoint`, restored if the worker fails. */
const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;

// Plain JavaScript evaluated in the worker: no TypeScript loader needed, wherever the relay runs from.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, log: r.log, checkpointed: r.checkpointed });
  } catch (error) {
    parentPort.postMessage({ ok: false, message: String(error && error.message) });
  }
});
`;

export interface CheckpointResult {
  /** Frames in the WAL, and frames copied into the database, as the checkpoint found them. */
  readonly log: number;
  readonly checkpointed: number;
}

export class WalCheckpointer {
  readonly #db: Database;
  readonly #worker: Worker;
  #running = false;
  #lastAsked = Number.NEGATIVE_INFINITY;
  #failed = false;
  #closed = false;
  #waiters: ((r: CheckpointResult | undefined) => void)[] = [];

  /** `db` is the relay's own connection (on disk, WAL mode) to `path`. */
  constructor(db: Database, path: string) {
    this.#db = db;
    db.pragma('wal_autocheckpoint = 0');
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module: createRequire(import.meta.url).resolve('better-sqlite3'), path },
    });
    // The relay's exit does not wait for it.
    this.#worker.unref();
    this.#worker.on('message', (m: { ok: boolean; log?: number; checkpointed?: number }) => {
      this.#running = false;
      let result = m.ok ? { log: m.log ?? 0, checkpointed: m.checkpointed ?? 0 } : undefined;
      if (!m.ok) this.#fail();
      else if (result && result.checkpointed < result.log && this.#db.open) result = this.#finish();
      for (const w of this.#waiters.splice(0)) w(result);
    });
    this.#worker.on('error', () => this.#fail());
    this.#worker.on('exit', () => {
      if (!this.#closed) this.#fail();
    });
  }

  /** Called after each commit: asks for a checkpoint unless one runs or one was asked for recently. */
  committed(now = performance.now()): void {
    if (this.#running || this.#failed || this.#closed || now - this.#lastAsked < CHECKPOINT_INTERVAL_MS) return;
    this.#ask(now);
  }

  /** Runs a checkpoint now (tests, operators); resolves with what it found, or undefined if the worker failed. */
  checkpoint(): Promise<CheckpointResult | undefined> {
    if (this.#failed || this.#closed) return Promise.resolve(undefined);
    const result = new Promise<CheckpointResult | undefined>((resolve) => this.#waiters.push(resolve));
    if (!this.#running) this.#ask(performance.now());
    return result;
  }

  /** Whether checkpoints still run on the worker (false once it failed and the connection took them back). */
  get healthy(): boolean {
    return !this.#failed;
  }

  /**
   * The frames committed while the worker copied: copied here, on the relay's connection,
   * between two batches (no write runs now, so this checkpoint completes). Only a complete
   * checkpoint lets the next write start the WAL again; under a steady write rate the worker's
   * own never is (new frames arrive while it copies), and the WAL would grow without end.
   * These are the few frames of one worker's run, not the whole WAL.
   */
  #finish(): CheckpointResult | undefined {
    try {
      const [r] = this.#db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
      return r && { log: r.log, checkpointed: r.checkpointed };
    } catch {
      return undefined;
    }
  }

  #ask(now: number): void {
    this.#running = true;
    this.#lastAsked = now;
    this.#worker.postMessage('checkpoint');
  }

  #fail(): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    this.#running = false;
    // The relay's connection checkpoints again itself: slower, but the WAL stays bounded.
    if (this.#db.open) this.#db.pragma(`wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    for (const w of this.#waiters.splice(0)) w(undefined);
    void this.#worker.terminate();
  }

  /** Closes the worker's connection first, so the relay's connection is the last one and closes the WAL itself. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w(undefined);
    if (this.#failed) return;
    const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    this.#worker.postMessage('close');
    // A worker that does not exit in time is ended: closing must not hang.
    const timer = setTimeout(() => void this.#worker.terminate(), 2000);
    await exited;
    clearTimeout(timer);
  }
}
