/**
 * `ClientStore` on IndexedDB, for browsers. spec/10-client.md §7.6.
 *
 * The store interface is synchronous (types.ts says why) and IndexedDB is
 * not, so this store is a write-behind cache:
 *
 * - `IndexedDbStore.open(name)` reads the whole database into memory once
 *   (a client's state is small: sessions, prekeys, history without
 *   attachment bytes) and answers every `get` and `list` from memory.
 * - Each top-level `transaction` (and each lone `put` or `delete`) runs in
 *   memory with an undo journal, in the very tables `MemoryStore` uses
 *   (memory-tables.ts). When it commits, the keys it touched are written in **one** IndexedDB
 *   readwrite transaction, opened at once; IndexedDB runs readwrite
 *   transactions on one store in the order they were opened, so the disk
 *   sees the same sequence of whole transactions as memory did. A
 *   transaction that throws is undone in memory and never reaches the disk.
 *   A reload therefore finds the state after some prefix of committed
 *   transactions, never half of one.
 * - `flushed()` resolves once everything committed so far is on disk. If
 *   IndexedDB ever refuses a write (quota, the database deleted under us),
 *   memory is ahead of the disk: the store turns failed, and every later
 *   call throws `STORE_WRITE_FAILED` so the app reloads from what is on
 *   disk rather than carrying on from state it cannot keep.
 * - One page at a time: where the Web Locks API exists, `open` takes an
 *   exclusive lock on the database name (two tabs with two caches would
 *   each overwrite the other's ratchet state), and refuses with
 *   `STORE_IN_USE` when another tab holds it.
 *
 * Deleted bytes: Chromium keeps IndexedDB in LevelDB, which drops deleted
 * and replaced values at its next compaction; a page cannot force one. So
 * `sweep` makes expired entries unreadable at once (and gone from the
 * database), but, unlike `SqliteStore`, cannot promise they are gone from
 * the browser's files before compaction (spec §7.6 states this).
 */
import { type Committed, MemoryTables } from './memory-tables.ts';
import type { Clock, ClientStore, StoreEntry, Table } from './types.ts';

/** The IndexedDB object store holding every entry, keyed by `[table, key]`. */
const OBJECT_STORE = 'entries';
/** Schema version of the database (one object store, array keys). */
const DB_VERSION = 1;
/** Prefix of the Web Lock held while a page has the database open. */
const LOCK_PREFIX = 'parley-store:';

/** What is written to IndexedDB per entry. */
interface Row {
  readonly v: Uint8Array;
  readonly e: number | null;
}

export type IndexedDbStoreErrorCode = 'STORE_WRITE_FAILED' | 'STORE_IN_USE' | 'STORE_OPEN_FAILED';

/** A failure of the IndexedDB store itself (not of a caller's argument). */
export class IndexedDbStoreError extends Error {
  readonly code: IndexedDbStoreErrorCode;
  constructor(code: IndexedDbStoreErrorCode, message: string) {
    super(message);
    this.name = 'IndexedDbStoreError';
    this.code = code;
  }
}

/** The Web Locks API, where the browser has it. */
interface LockManagerLike {
  request(name: string, options: { mode: 'exclusive'; ifAvailable: true }, cb: (lock: unknown) => Promise<void>): Promise<void>;
}

export interface IndexedDbStoreOptions {
  /** Decides what has expired (default `Date.now`). */
  clock?: Clock;
  /** The IndexedDB factory (default `globalThis.indexedDB`; tests pass fake-indexeddb's). */
  indexedDB?: IDBFactory;
  /** Web Locks (default `navigator.locks` when present; `null` opens without a lock). */
  locks?: LockManagerLike | null;
  /** Told once when a write to IndexedDB fails (the store is failed from then on). */
  onError?: (error: IndexedDbStoreError) => void;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function defaultLocks(): LockManagerLike | null {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  return nav?.locks ?? null;
}

export class IndexedDbStore implements ClientStore {
  readonly #tables: MemoryTables;
  readonly #db: IDBDatabase;
  readonly #onError: ((error: IndexedDbStoreError) => void) | undefined;
  readonly #releaseLock: () => void;
  /** Writes on disk are done when this settles (a chain of every IndexedDB transaction opened). */
  #lastWrite: Promise<void> = Promise.resolve();
  #failure: IndexedDbStoreError | null = null;
  #closed = false;

  private constructor(db: IDBDatabase, rows: [Table, string, Row][], options: IndexedDbStoreOptions, releaseLock: () => void) {
    this.#db = db;
    this.#onError = options.onError;
    this.#releaseLock = releaseLock;
    this.#tables = new MemoryTables({
      clock: options.clock ?? Date.now,
      usable: () => this.#usable(),
      onCommit: (changes) => this.#persist(changes),
    });
    // A table this version does not know (a newer SDK wrote it) is left alone on disk.
    for (const [table, key, row] of rows) this.#tables.load(table, key, { value: row.v, expiresAt: row.e });
    db.onversionchange = () => {
      // Another page wants to upgrade or delete the database: let it, and stop writing.
      this.#fail('the database was upgraded or deleted by another page');
      db.close();
    };
  }

  /** Opens (creating if needed) the database `name` and reads it into memory. */
  static async open(name: string, options: IndexedDbStoreOptions = {}): Promise<IndexedDbStore> {
    const factory = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!factory) throw new IndexedDbStoreError('STORE_OPEN_FAILED', 'this environment has no IndexedDB');
    const releaseLock = await acquireLock(name, options.locks === undefined ? defaultLocks() : options.locks);
    try {
      const opening = factory.open(name, DB_VERSION);
      opening.onupgradeneeded = () => {
        const db = opening.result;
        if (!db.objectStoreNames.contains(OBJECT_STORE)) db.createObjectStore(OBJECT_STORE);
      };
      let db: IDBDatabase;
      try {
        db = await request(opening);
      } catch {
        throw new IndexedDbStoreError('STORE_OPEN_FAILED', `IndexedDB refused to open "${name}"`);
      }
      const tx = db.transaction(OBJECT_STORE, 'readonly');
      const os = tx.objectStore(OBJECT_STORE);
      // getAllKeys and getAll in one transaction see the same snapshot in the same (key) order.
      const [keys, values] = await Promise.all([request(os.getAllKeys()), request(os.getAll())]);
      const rows = keys.map((k, i) => {
        const [table, key] = k as [Table, string];
        return [table, key, values[i] as Row] as [Table, string, Row];
      });
      return new IndexedDbStore(db, rows, options, releaseLock);
    } catch (e) {
      releaseLock();
      throw e;
    }
  }

  /** Deletes the database `name` (the store must be closed). */
  static async destroy(
    name: string,
    factory: IDBFactory | undefined = (globalThis as { indexedDB?: IDBFactory }).indexedDB,
  ): Promise<void> {
    if (!factory) return;
    await request(factory.deleteDatabase(name) as IDBRequest<unknown>);
  }

  get(table: Table, key: string): Uint8Array | undefined {
    return this.#tables.get(table, key);
  }

  put(table: Table, key: string, value: Uint8Array, expiresAt: number | null = null): void {
    this.#tables.put(table, key, value, expiresAt);
  }

  delete(table: Table, key: string): void {
    this.#tables.delete(table, key);
  }

  list(table: Table, prefix = ''): StoreEntry[] {
    return this.#tables.list(table, prefix);
  }

  transaction<T>(fn: () => T): T {
    return this.#tables.transaction(fn);
  }

  sweep(now: number): number {
    return this.#tables.sweep(now);
  }

  /**
   * Resolves once every transaction committed so far is on disk; rejects
   * with `STORE_WRITE_FAILED` if one could not be written.
   */
  flushed(): Promise<void> {
    return this.#lastWrite;
  }

  /** Stops accepting calls. Writes already handed to IndexedDB still complete (the connection closes after them). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
    // The lock is released once the queued writes are done, so a page opening next reads them.
    this.#lastWrite.then(this.#releaseLock, this.#releaseLock);
  }

  #usable(): void {
    if (this.#closed) throw new TypeError('store is closed');
    if (this.#failure) throw this.#failure;
  }

  /** Writes the final value of every key a committed change touched, as one IndexedDB transaction. */
  #persist(changes: readonly Committed[]): void {
    let tx: IDBTransaction;
    try {
      tx = this.#db.transaction(OBJECT_STORE, 'readwrite');
    } catch {
      this.#fail('IndexedDB would not start a write');
      return;
    }
    const done = new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(this.#fail('IndexedDB aborted a write (storage full, or the database went away)'));
      tx.onerror = (ev) => ev.preventDefault(); // reported once, by onabort
    });
    try {
      const os = tx.objectStore(OBJECT_STORE);
      for (const { table, key, slot } of changes) {
        if (slot) os.put({ v: slot.value, e: slot.expiresAt } satisfies Row, [table, key]);
        else os.delete([table, key]);
      }
    } catch {
      // Nothing of this transaction may land: abort it as a whole.
      try {
        tx.abort();
      } catch {
        // already finished or aborted
      }
      this.#fail('IndexedDB refused a write');
    }
    done.catch(() => {}); // observed through #lastWrite and onError
    const previous = this.#lastWrite;
    this.#lastWrite = previous.then(() => done);
    // A rejection is reported through onError and the next call; keep it from being "unhandled".
    this.#lastWrite.catch(() => {});
  }

  #fail(message: string): IndexedDbStoreError {
    if (!this.#failure) {
      this.#failure = new IndexedDbStoreError('STORE_WRITE_FAILED', message);
      this.#onError?.(this.#failure);
    }
    return this.#failure;
  }
}

/** Takes the page-exclusive lock for `name`; returns its release. */
async function acquireLock(name: string, locks: LockManagerLike | null): Promise<() => void> {
  if (!locks) return () => {};
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const granted = await new Promise<boolean>((resolve, reject) => {
    locks
      .request(`${LOCK_PREFIX}${name}`, { mode: 'exclusive', ifAvailable: true }, async (lock) => {
        resolve(lock !== null);
        if (lock !== null) await held;
      })
      .catch(reject);
  });
  if (!granted) throw new IndexedDbStoreError('STORE_IN_USE', `the store "${name}" is open in another page`);
  return release;
}
