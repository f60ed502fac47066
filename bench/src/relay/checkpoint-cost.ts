/**
 * What SQLite's automatic WAL checkpoint costs the relay's event loop, and what one fsync costs
 * on this disk now (issue 15's latency work, bench/results/relay-latency.md).
 *
 *   node --import tsx bench/src/relay/checkpoint-cost.ts
 *
 * Writes 1 KiB rows with the relay's pragmas and message indexes, 150 per transaction, deleting
 * rows 2,000 behind (as acknowledgements do), once with SQLite's default `wal_autocheckpoint`
 * (1,000 pages: the checkpoint runs inside a commit, on the committing thread) and once with 0
 * (no checkpoint on this connection: what the relay does since it checkpoints on a worker,
 * packages/relay/src/storage/wal-checkpointer.ts). Then times 200 fsyncs of a 64 KiB write.
 */
import { fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const ROWS_PER_COMMIT = 150;
const COMMITS = 400;

function rowsWith(autocheckpoint: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-cost-'));
  try {
    const db = new Database(join(dir, 'x.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('secure_delete = ON');
    db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
    db.exec(`CREATE TABLE m (seq INTEGER PRIMARY KEY AUTOINCREMENT, a BLOB, d INT, e BLOB, x INT);
      CREATE INDEX mi ON m (a, d, seq); CREATE INDEX me ON m (x); CREATE INDEX mae ON m (a, d, x)`);
    const insert = db.prepare('INSERT INTO m (a, d, e, x) VALUES (?, ?, ?, ?)');
    const remove = db.prepare('DELETE FROM m WHERE seq = ?');
    const envelope = Buffer.alloc(1024, 7);
    const accounts = Array.from({ length: 24 }, (_, i) => Buffer.alloc(32, i));
    const commits: number[] = [];
    let seq = 0;
    let deleted = 0;
    const t0 = performance.now();
    for (let b = 0; b < COMMITS; b++) {
      const s = performance.now();
      db.transaction(() => {
        for (let i = 0; i < ROWS_PER_COMMIT; i++) insert.run(accounts[seq++ % 24], 1, envelope, Date.now() + 1e6);
        for (; deleted < seq - 2000; deleted++) remove.run(deleted + 1);
      })();
      commits.push(performance.now() - s);
    }
    const total = performance.now() - t0;
    db.close();
    commits.sort((a, b) => a - b);
    const at = (q: number) => (commits[Math.min(commits.length - 1, Math.floor(q * commits.length))] as number).toFixed(2);
    return `wal_autocheckpoint=${autocheckpoint}: ${((total / (COMMITS * ROWS_PER_COMMIT)) * 1000).toFixed(1)} µs per row (insert + delete), commit median ${at(0.5)} / p99 ${at(0.99)} / max ${at(1)} ms`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fsyncs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parley-fsync-'));
  try {
    const fd = openSync(join(dir, 'probe'), 'w');
    const block = Buffer.alloc(64 * 1024);
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      writeSync(fd, block);
      const t = performance.now();
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return `fsync after a 64 KiB write: median ${(times[100] as number).toFixed(2)} / p99 ${(times[198] as number).toFixed(2)} ms`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const auto of [1000, 0, 1000, 0]) console.log(rowsWith(auto));
console.log(fsyncs());
