/**
 * The in-memory tables behind `MemoryStore` and `IndexedDbStore`: entries
 * with an expiry, read and written synchronously, and transactions with an
 * undo journal (the first previous value of each key written) replayed
 * backwards when the function throws. `MemoryStore` is these tables;
 * `IndexedDbStore` answers from them and writes each committed change to
 * disk (`onCommit`). One implementation, so the two stores cannot differ in
 * what a read, a rollback or a sweep does. spec/10-client.md §7.
 */
import { type Clock, type StoreEntry, type Table, TABLES, checkKey, checkTable, rejectAsync } from './types.ts';

export interface Slot {
  readonly value: Uint8Array;
  readonly expiresAt: number | null;
}

/** The final state of one key a committed change wrote (`slot` undefined: deleted). */
export interface Committed {
  readonly table: Table;
  readonly key: string;
  readonly slot: Slot | undefined;
}

export interface MemoryTablesOptions {
  /** Decides what has expired. */
  readonly clock: Clock;
  /** Called before every operation; throws when the store may not be used (closed, failed). */
  readonly usable: () => void;
  /**
   * Told after each committed change (a top-level transaction that wrote,
   * or a lone put or delete) with every key it wrote, in first-write order.
   * Not told of a rolled-back transaction.
   */
  readonly onCommit?: (changes: readonly Committed[]) => void;
}

type Undo = { readonly table: Table; readonly key: string; readonly previous: Slot | undefined };

export class MemoryTables {
  readonly #tables = new Map<Table, Map<string, Slot>>(TABLES.map((t) => [t, new Map()]));
  readonly #options: MemoryTablesOptions;
  #journal: Undo[] | null = null;

  constructor(options: MemoryTablesOptions) {
    this.#options = options;
  }

  /**
   * Puts a row read from disk as it is (no journal, no commit, no checks).
   * A table this version does not know (a newer SDK wrote it) is skipped.
   */
  load(table: string, key: string, slot: Slot): void {
    this.#tables.get(table as Table)?.set(key, slot);
  }

  get(table: Table, key: string): Uint8Array | undefined {
    const slot = this.#table(table).get(key);
    if (!slot || this.#expired(slot)) return undefined;
    return slot.value.slice();
  }

  put(table: Table, key: string, value: Uint8Array, expiresAt: number | null = null): void {
    checkKey(key);
    if (!(value instanceof Uint8Array)) throw new TypeError('"value" expected Uint8Array');
    if (expiresAt !== null && !Number.isSafeInteger(expiresAt)) throw new TypeError('"expiresAt" expected an integer or null');
    this.#write(table, key, { value: value.slice(), expiresAt });
  }

  delete(table: Table, key: string): void {
    this.#write(table, key, undefined);
  }

  list(table: Table, prefix = ''): StoreEntry[] {
    const out: StoreEntry[] = [];
    for (const [key, slot] of this.#table(table)) {
      if (key.startsWith(prefix) && !this.#expired(slot)) out.push({ key, value: slot.value.slice(), expiresAt: slot.expiresAt });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  transaction<T>(fn: () => T): T {
    this.#options.usable();
    if (this.#journal) return fn();
    const journal: Undo[] = [];
    this.#journal = journal;
    let result: T;
    try {
      result = fn();
      rejectAsync(result);
    } catch (e) {
      for (let i = journal.length - 1; i >= 0; i--) {
        const u = journal[i] as Undo;
        const t = this.#table(u.table);
        if (u.previous) t.set(u.key, u.previous);
        else t.delete(u.key);
      }
      throw e;
    } finally {
      this.#journal = null;
    }
    if (journal.length > 0) this.#committed(journal);
    return result;
  }

  sweep(now: number): number {
    this.#options.usable();
    let removed = 0;
    this.transaction(() => {
      for (const table of TABLES) {
        for (const [key, slot] of this.#table(table)) {
          if (slot.expiresAt !== null && slot.expiresAt <= now) {
            this.#write(table, key, undefined);
            removed++;
          }
        }
      }
    });
    return removed;
  }

  #table(table: Table): Map<string, Slot> {
    this.#options.usable();
    checkTable(table);
    return this.#tables.get(table) as Map<string, Slot>;
  }

  #expired(slot: Slot): boolean {
    return slot.expiresAt !== null && slot.expiresAt <= this.#options.clock();
  }

  #write(table: Table, key: string, slot: Slot | undefined): void {
    const t = this.#table(table);
    const undo = { table, key, previous: t.get(key) };
    if (slot) t.set(key, slot);
    else t.delete(key);
    // Outside a transaction each write is its own (trivially atomic) change.
    if (this.#journal) this.#journal.push(undo);
    else this.#committed([undo]);
  }

  /** Hands the final state of every key the change wrote to `onCommit`. */
  #committed(journal: readonly Undo[]): void {
    const { onCommit } = this.#options;
    if (!onCommit) return;
    const touched = new Map<string, { table: Table; key: string }>();
    for (const u of journal) touched.set(`${u.table}\n${u.key}`, { table: u.table, key: u.key });
    onCommit([...touched.values()].map(({ table, key }) => ({ table, key, slot: this.#tables.get(table)?.get(key) })));
  }
}
