/**
 * Durable `ClientStore` on SQLite (better-sqlite3), for Node. spec/10-client.md §7.
 *
 * One table holds every SDK table: (tbl, key) -> value, expires_at. The
 * database runs in WAL mode with synchronous=FULL: the SDK acknowledges an
 * envelope to the relay right after its transaction commits, so a commit
 * must survive a power cut, or a message acknowledged (and deleted by the
 * relay) could vanish with the rolled-back write.
 *
 * Deleting must destroy (spec/10-client.md §7.4): a plain DELETE leaves the
 * row's bytes in free pages and in the -wal file until they happen to be
 * reused. So `secure_delete` is on (SQLite zeroes what a delete frees), and
 * `sweep` ends with a TRUNCATE checkpoint whenever anything was deleted
 * since the last one: the WAL's old frames (which still hold the rows as
 * they were before the delete) are copied over and the file cut to zero.
 *
 * Published as `@parley/client/sqlite` so that browser bundles of the SDK
 * never pull in a native module.
 */
import Database from 'better-sqlite3';
import { type Clock, type ClientStore, type StoreEntry, type Table, checkKey, checkTable, rejectAsync } from './types.ts';

/** Bumped when the schema changes; an unknown newer version is refused rather than misread. */
const SCHEMA_VERSION = 1;

export interface SqliteStoreOptions {
  /** Decides what has expired (default `Date.now`). */
  clock?: Clock;
}

interface Row {
  key: string;
  value: Buffer;
  expires_at: number | null;
}

export class SqliteStore implements ClientStore {
  readonly #db: Database.Database;
  readonly #clock: Clock;
  /** Something was deleted or replaced since the last checkpoint: its old bytes may still be in the WAL. */
  #dirty = false;
  readonly #stmt: {
    get: Database.Statement<[string, string, number], Row>;
    put: Database.Statement<[string, string, Uint8Array, number | null]>;
    del: Database.Statement<[string, string]>;
    listAll: Database.Statement<[string, number], Row>;
    listRange: Database.Statement<[string, string, string, number], Row>;
    sweep: Database.Statement<[number]>;
  };

  /** Opens (creating if needed) the database at `path`; ':memory:' for a throwaway one. */
  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
    this.#db = new Database(path);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      // Zeroes the bytes a delete frees, in the database and in the WAL frames it writes.
      this.#db.pragma('secure_delete = ON');
      const version = this.#db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) throw new Error(`client store schema ${version} is newer than this SDK (${SCHEMA_VERSION})`);
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS kv (
          tbl TEXT NOT NULL,
          key TEXT NOT NULL,
          value BLOB NOT NULL,
          expires_at INTEGER,
          PRIMARY KEY (tbl, key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
      `);
      this.#db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (e) {
      this.#db.close();
      throw e;
    }
    const live = '(expires_at IS NULL OR expires_at > ?)';
    this.#stmt = {
      get: this.#db.prepare(`SELECT key, value, expires_at FROM kv WHERE tbl = ? AND key = ? AND ${live}`),
      put: this.#db.prepare('INSERT OR REPLACE INTO kv (tbl, key, value, expires_at) VALUES (?, ?, ?, ?)'),
      del: this.#db.prepare('DELETE FROM kv WHERE tbl = ? AND key = ?'),
      listAll: this.#db.prepare(`SELECT key, value, expires_at FROM kv WHERE tbl = ? AND ${live} ORDER BY key`),
      listRange: this.#db.prepare(`SELECT key, value, expires_at FROM kv WHERE tbl = ? AND key >= ? AND key < ? AND ${live} ORDER BY key`),
      sweep: this.#db.prepare('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?'),
    };
  }

  get(table: Table, key: string): Uint8Array | undefined {
    checkTable(table);
    const row = this.#stmt.get.get(table, key, this.#clock());
    return row ? new Uint8Array(row.value) : undefined;
  }

  put(table: Table, key: string, value: Uint8Array, expiresAt: number | null = null): void {
    checkTable(table);
    checkKey(key);
    if (!(value instanceof Uint8Array)) throw new TypeError('"value" expected Uint8Array');
    if (expiresAt !== null && !Number.isSafeInteger(expiresAt)) throw new TypeError('"expiresAt" expected an integer or null');
    this.#stmt.put.run(table, key, value, expiresAt);
    // A replace frees the old row as a delete does (and most puts replace).
    this.#dirty = true;
  }

  delete(table: Table, key: string): void {
    checkTable(table);
    if (this.#stmt.del.run(table, key).changes > 0) this.#dirty = true;
  }

  list(table: Table, prefix = ''): StoreEntry[] {
    checkTable(table);
    const now = this.#clock();
    // Keys are printable ASCII, so every key with this prefix sorts below prefix + DEL.
    const rows = prefix === '' ? this.#stmt.listAll.all(table, now) : this.#stmt.listRange.all(table, prefix, `${prefix}\x7f`, now);
    return rows.map((r) => ({ key: r.key, value: new Uint8Array(r.value), expiresAt: r.expires_at }));
  }

  transaction<T>(fn: () => T): T {
    // Nested calls join the outer transaction (as the memory store does), rather than using savepoints.
    if (this.#db.inTransaction) return fn();
    return this.#db.transaction(() => {
      const result = fn();
      rejectAsync(result);
      return result;
    })();
  }

  sweep(now: number): number {
    const removed = this.#stmt.sweep.run(now).changes;
    if (removed > 0 || this.#dirty) this.#scrub();
    return removed;
  }

  /**
   * Makes deleted rows unrecoverable from the files: a TRUNCATE checkpoint
   * writes every WAL frame back (secure_delete already zeroed the freed
   * cells) and cuts the -wal file to zero bytes. Inside a transaction it
   * cannot run; the next sweep does it.
   */
  #scrub(): void {
    if (this.#db.inTransaction) return;
    const [result] = this.#db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    // busy: another connection holds a read snapshot; keep the flag so the next sweep tries again.
    this.#dirty = result !== undefined && result.busy !== 0;
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
