// A checkpoint's write hold kept short (storage/wal-checkpointer.ts, spec/09-relay.md §7.1; issue 15,
// bench/results/relay-latency.md "Checkpoint holds"): before holding, the worker runs unheld catch-up
// passes, flushing the database after each, so the held pass copies and syncs only what was committed
// after a short pass; the count of those passes is bounded and the hold still comes (the WAL starts
// again); a loop that saw the answer late gets one more unheld pass; a flush that fails is a worker
// failure; and the database's descriptor used for the flushes never drops SQLite's locks.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { WalCheckpointer, type WalCheckpointerOptions } from '../src/storage/wal-checkpointer.ts';
import { WalSync } from '../src/storage/wal-sync.ts';
import { WriteBatcher } from '../src/storage/write-batcher.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

const walBytes = (path: string) => statSync(`${path}-wal`).size;

/** The relay's wiring on a fresh database: off-thread fsync, the worker with its flush descriptor, held writes. */
function wired(options: WalCheckpointerOptions = {}) {
  dir = mkdtempSync(join(tmpdir(), 'parley-holds-'));
  const path = join(dir, 'db.sqlite');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX tv ON t (v)');
  const sync = new WalSync(path);
  // No bound on the hold: on a busy machine a held pass may take longer than the relay's 50 ms, and
  // these tests need the WAL to start again after each (what the bound does is not their subject).
  const checkpointer = new WalCheckpointer(db, path, { databaseFd: sync.databaseFd, holdMaxMs: 60_000, ...options });
  const batcher = new WriteBatcher(db, undefined, sync, () => checkpointer.committed());
  let holds = 0;
  checkpointer.holdWritesWith(() => {
    holds++;
    return batcher.hold();
  });
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  let n = 0;
  const row = () => {
    const v = Buffer.alloc(1024, 1);
    v.writeUInt32BE(n++);
    return v;
  };
  const write = () => batcher.submit(() => insert.run(row()));
  /** A WAL of `rows` rows written in one transaction, asking for no pass (a backlog for the first pass). */
  const backlog = (rows: number) =>
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(row());
    })();
  /** Runs `checkpoint()` with writes submitted in every turn meanwhile, as under load; resolves with its result. */
  const underWrites = async () => {
    let done = false;
    const pending: Promise<unknown>[] = [];
    const result = checkpointer.checkpoint().then((r) => {
      done = true;
      return r;
    });
    let inFlight = 0;
    while (!done) {
      // A commit in every turn, but a bounded queue: turns are short while writes are held, and an
      // unbounded one would refill the WAL past its old size once they go on.
      if (inFlight < 64) {
        for (const p of [write(), write()]) {
          inFlight++;
          pending.push(p.finally(() => inFlight--));
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(pending);
    return result;
  };
  const close = async () => {
    batcher.close();
    await checkpointer.close();
    db.close();
    sync.close();
  };
  return { db, path, checkpointer, write, backlog, underWrites, close, holds: () => holds, count: () => n };
}

describe('checkpoint holds', () => {
  it('catches up before holding: the held pass copies what came after a short unheld pass, not what came during the first', async () => {
    const w = wired();
    // Tens of MiB of frames for the first pass: it runs long while a commit lands in every turn.
    w.backlog(20_000);
    const result = await w.underWrites();
    expect(result?.checkpointed).toBe(result?.log);
    const unheld = result?.unheld ?? { passes: 0, frames: 0 };
    // Before: one unheld pass, then the held one copied everything committed during it.
    expect(unheld.passes).toBeGreaterThanOrEqual(2);
    expect(w.holds()).toBe(1);
    // The held pass copied less than the catch-up passes after the first (what came during the first).
    expect(result?.heldFrames).toBeDefined();
    expect(result?.heldFrames ?? Number.POSITIVE_INFINITY).toBeLessThan(unheld.frames);
    // Complete: the next write starts the WAL again instead of appending to it.
    await w.write();
    const size = walBytes(w.path);
    await w.write();
    expect(walBytes(w.path)).toBe(size);
    expect(w.db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: w.count() });
    await w.close();
  });

  it('holds after at most the bounded count of unheld passes when they never get short, and still completes', async () => {
    // Never short enough: every pass that copied a frame asks for another, up to the bound.
    const w = wired({ catchUpFrames: 0, catchUpPasses: 3 });
    w.backlog(5_000);
    for (let round = 0; round < 3; round++) {
      const result = await w.underWrites();
      expect(result?.unheld.passes).toBeGreaterThanOrEqual(1);
      expect(result?.unheld.passes).toBeLessThanOrEqual(3);
      expect(result?.checkpointed).toBe(result?.log);
    }
    expect(w.holds()).toBe(3);
    // The WAL kept starting again: its file stays at the size the first backlog made.
    const size = walBytes(w.path);
    for (let i = 0; i < 50; i++) await w.write();
    expect(walBytes(w.path)).toBe(size);
    await w.close();
  });

  it('gives a loop that saw the catch-up late one more unheld pass before holding', async () => {
    const w = wired();
    // The worker is up, and the WAL small: the catch-up alone stops after one pass (it copied a few frames).
    await w.write();
    await w.checkpointer.checkpoint();
    await w.write();
    const asked = w.checkpointer.checkpoint();
    // The event loop is busy for 300 ms (a long turn): the worker's answer waits that long.
    const until = performance.now() + 300;
    while (performance.now() < until) {
      // busy
    }
    const late = await asked;
    // Before: one unheld pass, then the hold, whatever was committed while the loop was away.
    expect(late?.unheld.passes).toBeGreaterThanOrEqual(2);
    expect(late?.checkpointed).toBe(late?.log);
    expect(w.holds()).toBe(2);
    await w.close();
  });

  it('a flush of the database that fails is a worker failure: the connection takes checkpoints back', async () => {
    // A descriptor number no process has open: the flush after the first pass that copies a frame fails.
    const w = wired({ databaseFd: 1 << 20 });
    await w.write();
    await expect(w.checkpointer.checkpoint()).resolves.toBeUndefined();
    expect(w.checkpointer.healthy).toBe(false);
    expect(w.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    await w.close();
  });
});

describe('SqliteStorage with the flush descriptor', () => {
  it.runIf(existsSync('/proc/locks'))('keeps SQLite’s lock on the database while it runs, and leaves no WAL at close', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-holds-'));
    const path = join(dir, 'relay.sqlite');
    const storage = new SqliteStorage({ path });
    await storage.sweep(Date.now());
    await expect(storage.checkpointer?.checkpoint()).resolves.toMatchObject({ checkpointed: expect.any(Number) });
    // Closing any descriptor of the database would drop the shared lock SQLite holds on it in WAL mode.
    const inode = statSync(path).ino;
    const held = readFileSync('/proc/locks', 'utf8')
      .split('\n')
      .filter((l) => l.includes(`:${inode} `) && l.includes(` ${process.pid} `));
    expect(held.length).toBeGreaterThan(0);
    await storage.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});
