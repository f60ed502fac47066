// SqliteStorage: the storage contract in memory and on disk, plus what is
// specific to SQLite (group commit, schema versions). spec/09-relay.md §7.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../src/storage/sqlite-schema.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { WriteBatcher } from '../src/storage/write-batcher.ts';
import { describeStorageContract } from './storage-contract.ts';

describeStorageContract(
  'SQLite in memory',
  async () => {
    const storage = new SqliteStorage({ path: ':memory:' });
    return { storage, cleanup: () => storage.close() };
  },
  { durable: false },
);

describeStorageContract(
  'SQLite file (WAL)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    const path = join(dir, 'relay.sqlite');
    let storage = new SqliteStorage({ path });
    return {
      get storage() {
        return storage;
      },
      reopen: async () => {
        await storage.close();
        storage = new SqliteStorage({ path });
        return storage;
      },
      cleanup: async () => {
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { durable: true },
);

describe('group commit', () => {
  it('commits writes submitted in the same turn as one batch, and answers after the commit', async () => {
    const batches: number[] = [];
    const storage = new SqliteStorage({ path: ':memory:', observeBatch: (n) => batches.push(n) });
    const owner = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };
    const writes = Array.from({ length: 20 }, (_, i) =>
      storage.createAttachment(
        { id: String(i).padStart(22, 'x'), owner, size: 1, received: 0, complete: false, createdAt: 0, expiresAt: 9 },
        new Uint8Array(16).fill(i),
        { maxPending: 100, maxBytesPerDevice: 100, maxBytesPerAccount: 100 },
      ),
    );
    expect(batches).toEqual([]); // nothing committed (or answered) yet
    expect((await Promise.all(writes)).map((r) => r.status)).toEqual(Array(20).fill('created'));
    expect(batches).toEqual([20]);
    await storage.close();
  });

  it('a failing write rolls back alone; the rest of its batch commits', async () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (v INTEGER PRIMARY KEY)');
    const batcher = new WriteBatcher(db);
    const insert = (v: number) => batcher.submit(() => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes);
    const results = await Promise.allSettled([
      insert(1),
      batcher.submit(() => {
        db.prepare('INSERT INTO t (v) VALUES (?)').run(2);
        throw new Error('boom');
      }),
      insert(3),
      insert(1), // constraint violation
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect(db.prepare('SELECT v FROM t ORDER BY v').pluck().all()).toEqual([1, 3]);
    batcher.close();
    await expect(batcher.submit(() => 1)).rejects.toThrow('closed');
    db.close();
  });
});

describe('schema', () => {
  it('refuses a database written by a newer relay', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    const path = join(dir, 'relay.sqlite');
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new SqliteStorage({ path })).toThrow(/newer than this relay/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('leaves the database file in WAL mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-sqlite-'));
    const path = join(dir, 'relay.sqlite');
    const storage = new SqliteStorage({ path });
    await storage.close();
    const db = new Database(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
