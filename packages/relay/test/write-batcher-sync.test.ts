// Group commit with the fsync off the event loop (storage/write-batcher.ts, wal-sync.ts;
// spec/09-relay.md §7.1): a write is answered only once an fsync that started after its commit
// has finished; batches committed while an fsync runs wait for the next one; a failed fsync
// answers nobody as durable; close() syncs what is left before it returns. On disk, a reopened
// database (no writes needed) still has the WAL that WalSync holds.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { MailboxCounters } from '../src/storage/sqlite-counters.ts';
import { type DurableSync, MAX_BATCH_ROWS, MAX_BATCH_WRITES, WriteBatcher } from '../src/storage/write-batcher.ts';

/** A DurableSync whose fsyncs finish when the test says so. */
function manualSync() {
  const calls: { resolve: () => void; reject: (e: Error) => void }[] = [];
  let now = 0;
  const sync: DurableSync = {
    sync: () => new Promise<void>((resolve, reject) => calls.push({ resolve, reject })),
    syncNow: () => {
      now++;
    },
  };
  return { sync, calls, syncNowCalls: () => now };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function table() {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (v INTEGER)');
  return db;
}

describe('WriteBatcher with an asynchronous fsync', () => {
  it('answers a write only after an fsync that started after its commit, and batches meanwhile wait for the next', async () => {
    const db = table();
    const m = manualSync();
    const batcher = new WriteBatcher(db, undefined, m.sync);
    const settled: string[] = [];
    const insert = (v: number) => () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    const a = batcher.submit(insert(1)).then(() => settled.push('a'));
    await tick();
    // Committed (visible) but not answered: the fsync has not finished.
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    expect(m.calls.length).toBe(1);
    const b = batcher.submit(insert(2)).then(() => settled.push('b'));
    await tick();
    // b committed while the first fsync ran: no second fsync yet, and a is still waiting.
    expect(m.calls.length).toBe(1);
    expect(settled).toEqual([]);
    m.calls[0]?.resolve();
    await a;
    expect(settled).toEqual(['a']);
    // The first fsync may have started before b's commit: b waits for the next one.
    await tick();
    expect(m.calls.length).toBe(2);
    expect(settled).toEqual(['a']);
    m.calls[1]?.resolve();
    await b;
    expect(settled).toEqual(['a', 'b']);
  });

  it('a failed fsync rejects every write it covered (none is answered as durable); the next one works', async () => {
    const db = table();
    const m = manualSync();
    const batcher = new WriteBatcher(db, undefined, m.sync);
    const first = batcher.submit(() => 1);
    await tick();
    m.calls[0]?.reject(new Error('EIO'));
    await expect(first).rejects.toThrow('EIO');
    const second = batcher.submit(() => 2);
    await tick();
    m.calls[1]?.resolve();
    await expect(second).resolves.toBe(2);
  });

  it('close() commits and syncs what is pending at once, then refuses writes', async () => {
    const db = table();
    const m = manualSync();
    const batcher = new WriteBatcher(db, undefined, m.sync);
    const inFlight = batcher.submit(() => 'running');
    await tick();
    const queued = batcher.submit(() => 'queued');
    batcher.close();
    expect(m.syncNowCalls()).toBe(1);
    await expect(inFlight).resolves.toBe('running');
    await expect(queued).resolves.toBe('queued');
    // The fsync that was running finishes late: nothing is answered twice, nothing throws.
    m.calls[0]?.resolve();
    await tick();
    await expect(batcher.submit(() => 1)).rejects.toThrow('closed');
  });
});

describe('SqliteStorage on disk', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reopens an existing database (no migration to write) and still syncs its WAL', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-walsync-'));
    const path = join(dir, 'relay.sqlite');
    const first = new SqliteStorage({ path });
    await first.sweep(Date.now());
    await first.close();
    // The last connection closed: SQLite checkpointed and removed the WAL.
    expect(existsSync(`${path}-wal`)).toBe(false);
    const again = new SqliteStorage({ path });
    expect(existsSync(`${path}-wal`)).toBe(true);
    await expect(again.sweep(Date.now())).resolves.toBeDefined();
    await again.close();
  });
});

describe('WriteBatcher batch bounds', () => {
  it(`closes a batch at ${MAX_BATCH_WRITES} writes and commits the rest in the next turn, in submission order`, async () => {
    const db = table();
    const sizes: number[] = [];
    const batcher = new WriteBatcher(db, (n) => sizes.push(n));
    const insert = (v: number) => () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
    const writes = Array.from({ length: MAX_BATCH_WRITES + 44 }, (_, i) => batcher.submit(insert(i)));
    await Promise.all(writes);
    expect(sizes).toEqual([MAX_BATCH_WRITES, 44]);
    const rows = db.prepare('SELECT v FROM t ORDER BY rowid').all() as { v: number }[];
    expect(rows.map((r) => r.v)).toEqual(Array.from({ length: MAX_BATCH_WRITES + 44 }, (_, i) => i));
  });

  it(`closes a batch once its writes changed ${MAX_BATCH_ROWS} mailbox rows, as the counters' journal counts them`, async () => {
    // The relay's journal: each inserted or deleted mailbox row is one `add` (sqlite.ts).
    const db = table();
    const counters = new MailboxCounters();
    const sizes: number[] = [];
    const batcher = new WriteBatcher(db, (n) => sizes.push(n), undefined, undefined, counters);
    const account = Buffer.alloc(32, 1);
    /** A write that stores `rows` mailbox rows (a send frame of that many envelopes), or removes them (`-rows`). */
    const frame =
      (rows: number, fail = false) =>
      () => {
        for (let i = 0; i < Math.abs(rows); i++) counters.add(account, 1, account, Math.sign(rows), Math.sign(rows) * 100);
        if (fail) throw new Error('rolled back');
        return rows;
      };
    const eights = MAX_BATCH_ROWS / 8;
    // Two full batches of 8-row frames, and 3 left over.
    const writes = Array.from({ length: eights * 2 + 3 }, () => batcher.submit(frame(8)));
    await Promise.all(writes);
    expect(sizes).toEqual([eights, eights, 3]);
    sizes.length = 0;
    // Deletions count as rows too; a write larger than the bound commits alone; a rolled-back write's rows do not count.
    const more = [
      batcher.submit(frame(-MAX_BATCH_ROWS)),
      batcher.submit(frame(1)),
      batcher.submit(frame(MAX_BATCH_ROWS * 2)),
      batcher.submit(frame(1)),
      batcher.submit(frame(MAX_BATCH_ROWS, true)).catch(() => 'refused'),
      batcher.submit(frame(MAX_BATCH_ROWS - 1)),
      batcher.submit(frame(1)),
    ];
    await expect(Promise.all(more)).resolves.toEqual([-MAX_BATCH_ROWS, 1, MAX_BATCH_ROWS * 2, 1, 'refused', MAX_BATCH_ROWS - 1, 1]);
    expect(sizes).toEqual([1, 2, 3, 1]);
    // The counters followed the commits and the rollback: 2 × 128 + 3 × 8, then − 128 + 1 + 256 + 1 + 127 + 1 rows.
    expect(counters.totals().messages).toBe(MAX_BATCH_ROWS * 4 + 24 + 2);
  });

  it('close() commits every queued write in one batch, past the bounds', async () => {
    const db = table();
    const sizes: number[] = [];
    const batcher = new WriteBatcher(db, (n) => sizes.push(n));
    const writes = Array.from({ length: MAX_BATCH_WRITES + 1 }, (_, i) => batcher.submit(() => i));
    batcher.close();
    await Promise.all(writes);
    expect(sizes).toEqual([MAX_BATCH_WRITES + 1]);
  });
});

describe('WriteBatcher onCommit (recipients woken before the fsync)', () => {
  it('runs after the commit and before the fsync finished; not for a write that rolled back', async () => {
    const db = table();
    const m = manualSync();
    const batcher = new WriteBatcher(db, undefined, m.sync);
    const seen: string[] = [];
    const kept = batcher.submit(() => {
      db.prepare('INSERT INTO t (v) VALUES (1)').run();
      batcher.onCommit(() => seen.push(`kept sees ${(db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n}`));
    });
    const failed = batcher.submit(() => {
      db.prepare('INSERT INTO t (v) VALUES (2)').run();
      batcher.onCommit(() => seen.push('rolled back'));
      throw new Error('refused');
    });
    failed.catch(() => {});
    await tick();
    // Committed, not yet durable: the kept write's callback ran and saw its row; the writer is not answered.
    expect(seen).toEqual(['kept sees 1']);
    let answered = false;
    void kept.then(() => {
      answered = true;
    });
    await tick();
    expect(answered).toBe(false);
    m.calls[0]?.resolve();
    await kept;
    await expect(failed).rejects.toThrow('refused');
    expect(seen).toEqual(['kept sees 1']);
  });
});
