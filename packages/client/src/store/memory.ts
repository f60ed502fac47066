/**
 * In-memory `ClientStore`: for tests, for ephemeral clients, and as the
 * reference behaviour the contract suite pins. spec/10-client.md §7.
 *
 * Transactions keep an undo journal (the first previous value of each key
 * written) and replay it backwards when the function throws.
 */
import { type Clock, type ClientStore, type StoreEntry, type Table, TABLES, checkKey, checkTable, rejectAsync } from './types.ts';

interface Slot {
  readonly value: Uint8Array;
  readonly expiresAt: number | null;
}

type Undo = { readonly table: Table; readonly key: string; readonly previous: Slot | undefined };

export interface MemoryStoreOptions {
  /** Decides what has expired (default `Date.now`). */
  clock?: Clock;
}

export class MemoryStore implements ClientStore {
  readonly #tables = new Map<Table, Map<string, Slot>>(TABLES.map((t) => [t, new Map()]));
  readonly #clock: Clock;
  #journal: Undo[] | null = null;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
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
    this.#open();
    if (this.#journal) return fn();
    const journal: Undo[] = [];
    this.#journal = journal;
    try {
      const result = fn();
      rejectAsync(result);
      return result;
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
  }

  sweep(now: number): number {
    this.#open();
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

  close(): void {
    this.#closed = true;
  }

  #open(): void {
    if (this.#closed) throw new TypeError('store is closed');
  }

  #table(table: Table): Map<string, Slot> {
    this.#open();
    checkTable(table);
    return this.#tables.get(table) as Map<string, Slot>;
  }

  #expired(slot: Slot): boolean {
    return slot.expiresAt !== null && slot.expiresAt <= this.#clock();
  }

  #write(table: Table, key: string, slot: Slot | undefined): void {
    const t = this.#table(table);
    // Outside a transaction each write is its own (trivially atomic) change.
    this.#journal?.push({ table, key, previous: t.get(key) });
    if (slot) t.set(key, slot);
    else t.delete(key);
  }
}
