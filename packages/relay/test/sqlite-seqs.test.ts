// Message seqs of the SQLite backend come from memory, reserved on disk in blocks
// (storage/sqlite-seqs.ts, spec/09-relay.md §7.1): a seq any committed row ever had is never
// handed out again, whatever rolled back, and after any stop, kill -9 included.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/storage/sqlite-schema.ts';
import { SeqAllocator } from '../src/storage/sqlite-seqs.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress } from '../src/storage/types.ts';
import { killWhen } from './support/kill-when.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A batch of writes, each drawing `n` seqs (a row each) and keeping or rolling back its savepoint; the commit may fail. */
const batch = fc.record({
  writes: fc.array(fc.record({ n: fc.integer({ min: 0, max: 5 }), rolledBack: fc.boolean() }), { minLength: 1, maxLength: 4 }),
  commitFails: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
  reopen: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
});

describe('SQLite message seqs', () => {
  it('never hand out a seq a committed row had, across rollbacks, failed commits and reopens (model against SQL)', () => {
    let raisesCrossed = 0;
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 25 }), fc.integer({ min: 1, max: 4 }), (batches, reservation) => {
        const db = new Database(':memory:');
        migrate(db);
        db.exec('CREATE TABLE rows (seq INTEGER PRIMARY KEY)');
        const insert = db.prepare('INSERT INTO rows (seq) VALUES (?)');
        let seqs = new SeqAllocator(db, reservation);
        let handedOut = 0;
        /** The highest seq any committed row ever had (rows may be deleted since). */
        let everCommitted = 0;
        const maxRow = () => (db.prepare('SELECT MAX(seq) AS m FROM rows').get() as { m: number | null }).m ?? 0;
        try {
          for (const b of batches) {
            const before = seqs.reserved;
            seqs.begin();
            try {
              db.transaction(() => {
                for (const w of b.writes) {
                  try {
                    db.transaction(() => {
                      for (let i = 0; i < w.n; i++) {
                        const seq = seqs.take();
                        // Strictly growing within a life, and above every row ever committed.
                        expect(seq).toBeGreaterThan(handedOut);
                        expect(seq).toBeGreaterThan(everCommitted);
                        handedOut = seq;
                        insert.run(seq);
                      }
                      if (w.rolledBack) throw new Error('rolled back');
                    })();
                  } catch {
                    seqs.rollback();
                  }
                }
                if (b.commitFails) throw new Error('commit failed');
              })();
              seqs.commit();
            } catch {
              seqs.rollback();
            }
            if (seqs.reserved > before) raisesCrossed++;
            // On disk, the reservation covers every committed row.
            const onDisk = (db.prepare('SELECT reserved FROM message_seq').get() as { reserved: number }).reserved;
            everCommitted = Math.max(everCommitted, maxRow());
            expect(onDisk).toBeGreaterThanOrEqual(everCommitted);
            // Memory never claims more than disk holds.
            expect(seqs.reserved).toBeLessThanOrEqual(onDisk);
            if (b.reopen) {
              // What a restart keeps: the rows and message_seq; memory starts again from disk.
              db.exec('DELETE FROM rows WHERE seq = (SELECT MAX(seq) FROM rows)');
              seqs = new SeqAllocator(db, reservation);
              handedOut = 0;
            }
          }
        } finally {
          db.close();
        }
      }),
      { numRuns: 200 },
    );
    expect(raisesCrossed).toBeGreaterThan(100);
  });

  it('after a kill -9, the reopened relay hands out seqs above every one the killed relay handed out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-seqs-kill-'));
    dirs.push(dir);
    const path = join(dir, 'relay.sqlite');
    let highest = 0;
    // Twice: killed, reopened by another child, killed again (each child acknowledges every row, so the newest is always gone).
    for (const tag of ['a', 'b']) {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', fileURLToPath(new URL('./fixtures/seqs-load.ts', import.meta.url)), path, tag],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let seen = 0;
      const out = await killWhen(child, (o) => o.split('\n').length > 40, 'the load getting going');
      for (const m of out.matchAll(/seq (\d+)/g)) seen = Math.max(seen, Number(m[1]));
      // Each life starts above everything before it.
      expect(seen).toBeGreaterThan(highest);
      highest = seen;
    }
    const storage = new SqliteStorage({ path });
    try {
      const to: DeviceAddress = { accountKey: new Uint8Array(32).fill(2), deviceId: 1 };
      const result = await storage.storeMessages({
        sender: { accountKey: new Uint8Array(32).fill(1), deviceId: 1 },
        envelopes: [{ recipient: to, clientId: 'after-kill', envelope: new Uint8Array(8) }],
        now: 1000,
        expiresAt: 1_000_000,
        maxQueuedMessages: 100_000,
        maxQueuedBytes: 1 << 30,
      });
      expect(result.status).toBe('stored');
      const seqs = (await storage.fetchMessages(to, 0, 1000, 1000)).map((m) => m.seq);
      expect(Math.min(...seqs.slice(-1))).toBeGreaterThan(highest);
    } finally {
      await storage.close();
    }
  }, 60_000);
});
