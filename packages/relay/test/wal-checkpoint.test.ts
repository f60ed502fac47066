// WAL checkpoints on a worker thread (storage/wal-checkpointer.ts, spec/09-relay.md §7.1): the
// relay's own connection never checkpoints inside a commit (wal_autocheckpoint = 0), the worker
// copies committed frames into the database so the WAL starts again from its beginning, a failed
// worker hands checkpoints back to the connection, and close() leaves no WAL behind.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { WalCheckpointer } from '../src/storage/wal-checkpointer.ts';
import { WalSync } from '../src/storage/wal-sync.ts';
import { WriteBatcher } from '../src/storage/write-batcher.ts';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function onDisk() {
  dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
  const path = join(dir, 'db.sqlite');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (v BLOB)');
  return { db, path };
}

const walBytes = (path: string) => statSync(`${path}-wal`).size;

describe('WalCheckpointer', () => {
  it('lets the WAL start again while writes go on during the checkpoint (the relay under steady load)', async () => {
    const { db, path } = onDisk();
    const checkpointer = new WalCheckpointer(db, path);
    const sync = new WalSync(path);
    const batcher = new WriteBatcher(db, undefined, sync, () => checkpointer.committed());
    checkpointer.holdWritesWith(() => batcher.hold());
    const row = Buffer.alloc(1024, 1);
    const write = () => batcher.submit(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(row));
    const sizes: number[] = [];
    let rows = 0;
    for (let round = 0; round < 6; round++) {
      await Promise.all(Array.from({ length: 200 }, write));
      rows += 200;
      // A batch commits in every turn while the worker copies, as under load.
      let done = false;
      const checkpoint = checkpointer.checkpoint().then((r) => {
        done = true;
        return r;
      });
      let during = 0;
      while (!done) {
        await Promise.all([write(), write()]);
        during += 2;
      }
      rows += during;
      expect(during).toBeGreaterThan(0);
      const result = await checkpoint;
      expect(result?.checkpointed).toBe(result?.log);
      sizes.push(walBytes(path));
    }
    // The WAL started again every round: the file stays at about one round's frames. (Before, it
    // never did under writes, and the file grew with every round.) The results' `log` is no measure
    // of that since the catch-up passes (session 6): a pass that happens to complete lets the next
    // commit start the WAL again before the hold, and the held pass then finds a few frames.
    expect(walBytes(path)).toBeLessThan(2 * (sizes[0] ?? 0));
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: rows });
    batcher.close();
    await checkpointer.close();
    db.close();
    sync.close();
  });

  it('holds writes for the periodic second pass only once the WAL is past its size (issue 15: every hold delays deliveries)', async () => {
    const { db, path } = onDisk();
    // 256 KiB: a few rounds of 1 KiB rows cross it (the relay's default is far larger).
    const holdAbove = 256 * 1024;
    const checkpointer = new WalCheckpointer(db, path, { intervalMs: 0, holdAboveBytes: holdAbove });
    const sync = new WalSync(path);
    const batcher = new WriteBatcher(db, undefined, sync, () => checkpointer.committed());
    let holds = 0;
    checkpointer.holdWritesWith(() => {
      holds++;
      return batcher.hold();
    });
    const row = Buffer.alloc(1024, 1);
    const write = () => batcher.submit(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(row));
    // Small rounds: each commit asks for a checkpoint (interval 0), and the worker's passes find a small WAL.
    for (let i = 0; i < 20; i++) {
      await write();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(walBytes(path)).toBeLessThan(holdAbove);
    // Before: every periodic checkpoint held the writes for its second pass, whatever the WAL's size.
    expect(holds).toBe(0);
    // One commit of 400 rows takes the WAL past the size: the next periodic checkpoint holds.
    await Promise.all(Array.from({ length: 400 }, write));
    let written = 400;
    while (holds === 0 && written < 2_400) {
      await write();
      written++;
    }
    expect(holds).toBeGreaterThan(0);
    // Writes in every turn while the worker copies (as under load): 4,000 rows, over 4 MB of frames.
    for (let i = 0; i < 2_000; i++) await Promise.all([write(), write()]);
    written += 4_000;
    // The WAL kept starting again once past the size: the file stays far below what was written.
    expect(walBytes(path)).toBeLessThan(4_000 * 1024);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 20 + written });
    batcher.close();
    await checkpointer.close();
    db.close();
    sync.close();
  });

  it('raises journal_size_limit above the size that triggers the hold (a restart never truncates on the loop)', () => {
    const { db, path } = onDisk();
    db.pragma('journal_size_limit = 67108864');
    const checkpointer = new WalCheckpointer(db, path, { holdAboveBytes: 64 * 1024 * 1024 });
    expect(Number(db.pragma('journal_size_limit', { simple: true }))).toBeGreaterThanOrEqual(2 * 64 * 1024 * 1024);
    void checkpointer.close();
    db.close();
  });

  it('takes checkpoints off the connection and lets the WAL start again from its beginning', async () => {
    const { db, path } = onDisk();
    const checkpointer = new WalCheckpointer(db, path);
    const sync = new WalSync(path);
    const batcher = new WriteBatcher(db, undefined, sync, () => checkpointer.committed());
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    const row = Buffer.alloc(1024, 1);
    const write = () => batcher.submit(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(row));
    // 2,000 rows of 1 KiB: past SQLite's default autocheckpoint (1,000 pages), which the connection no longer runs.
    for (let i = 0; i < 20; i++) await Promise.all(Array.from({ length: 100 }, write));
    const grown = walBytes(path);
    expect(grown).toBeGreaterThan(2_000 * 1024);
    const result = await checkpointer.checkpoint();
    expect(result?.log).toBeGreaterThan(0);
    expect(result?.checkpointed).toBe(result?.log);
    // Everything was copied: the next write starts the WAL again, so it stops growing.
    await write();
    await write();
    expect(walBytes(path)).toBe(grown);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2_002 });
    expect(checkpointer.healthy).toBe(true);
    batcher.close();
    await checkpointer.close();
    db.close();
    sync.close();
  });

  it('a checkpoint asked for while a periodic pass runs covers the commits made since that pass began', async () => {
    const { db, path } = onDisk();
    // Every commit may ask for a pass; no hold is wired, so a periodic pass is the worker's first pass only.
    const checkpointer = new WalCheckpointer(db, path, { intervalMs: 0 });
    const row = Buffer.alloc(1024, 1);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    // A WAL of about 40 MiB, written without asking for a pass, so the pass below has much to copy.
    db.transaction(() => {
      for (let i = 0; i < 40_000; i++) insert.run(row);
    })();
    checkpointer.committed();
    // While the worker copies, more commits land after its snapshot.
    await new Promise((resolve) => setTimeout(resolve, 2));
    db.transaction(() => {
      for (let i = 0; i < 100; i++) insert.run(row);
    })();
    const result = await checkpointer.checkpoint();
    expect(result?.checkpointed).toBe(result?.log);
    // Complete means complete: the next write starts the WAL again instead of appending to it.
    const before = walBytes(path);
    insert.run(row);
    expect(walBytes(path)).toBe(before);
    await checkpointer.close();
    db.close();
  });

  it('a worker that fails hands checkpoints back to the connection (the WAL stays bounded)', async () => {
    const { db } = onDisk();
    // The worker cannot open a folder as its database: its thread fails at start.
    const checkpointer = new WalCheckpointer(db, dir as string);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    await expect(checkpointer.checkpoint()).resolves.toBeUndefined();
    expect(checkpointer.healthy).toBe(false);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    // Later commits ask nothing of it, and closing does not wait for it.
    checkpointer.committed();
    await checkpointer.close();
    db.close();
  });
});

describe('SqliteStorage on disk', () => {
  it('checkpoints through its worker and closes without a WAL left', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
    const path = join(dir, 'relay.sqlite');
    const storage = new SqliteStorage({ path });
    await storage.sweep(Date.now());
    expect(storage.checkpointer?.healthy).toBe(true);
    await expect(storage.checkpointer?.checkpoint()).resolves.toMatchObject({ log: expect.any(Number) });
    await storage.close();
    expect(() => statSync(`${path}-wal`)).toThrow();
    // In memory there is no WAL and no worker.
    const memory = new SqliteStorage({ path: ':memory:' });
    expect(memory.checkpointer).toBeUndefined();
    await memory.close();
  });
});
