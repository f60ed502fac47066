/**
 * In-memory `ClientStore`: for tests, for ephemeral clients, and as the
 * reference behaviour the contract suite pins. spec/10-client.md §7.
 *
 * The tables and their transactions are memory-tables.ts (which the
 * IndexedDB store caches in too); this class adds only closing.
 */
import { MemoryTables } from './memory-tables.ts';
import type { Clock, ClientStore, StoreEntry, Table } from './types.ts';

export interface MemoryStoreOptions {
  /** Decides what has expired (default `Date.now`). */
  clock?: Clock;
}

export class MemoryStore implements ClientStore {
  readonly #tables: MemoryTables;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#tables = new MemoryTables({
      clock: options.clock ?? Date.now,
      usable: () => {
        if (this.#closed) throw new TypeError('store is closed');
      },
    });
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

  close(): void {
    this.#closed = true;
  }
}
