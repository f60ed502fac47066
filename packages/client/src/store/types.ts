/**
 * The storage interface under the SDK. spec/10-client.md §7.
 *
 * A deliberately small, synchronous key-value interface: named tables of
 * byte values under string keys, an optional expiry per entry, and one
 * `transaction(fn)`. Everything the SDK persists (identities, prekeys,
 * sessions, device lists, group state, history, deduplication records,
 * the outbox) is encoded by the typed layer above (state.ts) into these
 * tables, so a new backend implements six methods and passes the contract
 * suite in test/store-contract.ts.
 *
 * Why synchronous: all the work for one envelope (decrypt, update the
 * session, store the plaintext, remember the message id) is CPU work with no
 * I/O in between, and doing it inside one synchronous transaction is what
 * makes it atomic without locks. better-sqlite3 and an in-memory map are
 * both synchronous; the asynchronous backend (IndexedDB, indexeddb.ts) keeps
 * a write-behind copy in memory, writes each transaction as one IndexedDB
 * transaction, and offers `flushed()` for the SDK to await before sending.
 *
 * Expiry: an entry may carry `expiresAt` (ms since the epoch). From that
 * moment it is invisible to `get` and `list` (whatever the sweep schedule),
 * and `sweep` deletes it. Disappearing messages, deduplication records and
 * the retry window all expire this way.
 */

/** Every table the SDK uses. A backend may store them however it likes. */
export const TABLES = [
  /** This device: account (primary only), device identity, prekeys, own signed device list. */
  'identity',
  /** One SessionRecord per peer device. */
  'sessions',
  /** Verified device lists of accounts (own and contacts), with their signed lists. */
  'devices',
  /** Contacts: names, safety-number verification. */
  'contacts',
  /** Per-conversation settings (disappearing-message timer). */
  'conversations',
  /** Message history, ordered by conversation and time. */
  'messages',
  /** Message id -> history key (receipts find their message). */
  'message-index',
  /** Deduplication: processed message ids and envelope ids. */
  'processed',
  /** Envelopes that failed on this store again and again, parked for the app (engine/dead-letters.ts), and their attempt counts. */
  'dead-letters',
  /** Recently sent contents, kept for retry requests. */
  'sent',
  /** Sends not yet accepted by the relay. */
  'outbox',
  /** Group state: members and the core group session. */
  'groups',
  /** Downloaded attachment files to destroy when their message disappears (store/downloads.ts). */
  'downloads',
  /** Franked material of received v2 messages, for reports; expires with its message (franking/store.ts). */
  'franked',
] as const;

export type Table = (typeof TABLES)[number];

export interface StoreEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly expiresAt: number | null;
}

export interface ClientStore {
  /** The value under `key`, or undefined when absent or expired. */
  get(table: Table, key: string): Uint8Array | undefined;
  /** Inserts or replaces. `expiresAt` (ms since the epoch) makes the entry disappear at that time. */
  put(table: Table, key: string, value: Uint8Array, expiresAt?: number | null): void;
  delete(table: Table, key: string): void;
  /** Unexpired entries whose key starts with `prefix`, in ascending key order. */
  list(table: Table, prefix?: string): StoreEntry[];
  /**
   * Runs `fn` atomically: either every write inside it is kept, or (when it
   * throws) none is. Nested calls join the outer transaction. `fn` must be
   * synchronous; a function returning a promise is a TypeError.
   */
  transaction<T>(fn: () => T): T;
  /**
   * Deletes every entry whose expiry is at or before `now`; returns how many
   * went. A durable backend also makes every entry deleted or replaced so far
   * unrecoverable from its files here (free pages, journals): spec/10-client.md §7.4.
   */
  sweep(now: number): number;
  /**
   * For write-behind backends (IndexedDB): resolves once every committed
   * transaction is durable. The SDK awaits it before anything leaves the
   * device that depends on new state (an envelope encrypted with a new chain
   * step, an acknowledgement of a stored message). Synchronous backends,
   * durable at commit, leave it out.
   */
  flushed?(): Promise<void>;
  close(): void;
}

/** A clock for stores and the SDK: milliseconds since the epoch. */
export type Clock = () => number;

export function checkTable(table: string): asserts table is Table {
  if (!(TABLES as readonly string[]).includes(table)) throw new TypeError(`"table" unknown table ${table}`);
}

/**
 * Keys are printable ASCII (0x20-0x7e), 1..1024 characters: then UTF-16
 * order (JavaScript) and byte order (SQLite's BINARY collation) agree, and
 * `prefix + "\x7f"` bounds a prefix range.
 */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024 || !/^[\x20-\x7e]*$/.test(key)) {
    throw new TypeError('"key" expected 1..1024 printable ASCII characters');
  }
}

export function rejectAsync(result: unknown): void {
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    throw new TypeError('transaction: the function must be synchronous (it returned a promise)');
  }
}
