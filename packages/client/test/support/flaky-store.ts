/**
 * A store whose writes fail on demand, as a full disk or a locked database
 * would: for testing that only the local store's own failures hold an
 * envelope back, and only for a bounded number of tries.
 */
import type { ClientStore, StoreEntry, Table } from '../../src/store/types.ts';

export class FlakyStore implements ClientStore {
  readonly inner: ClientStore;
  /** When it returns true for a write, the write throws (an Error with `code`, like better-sqlite3's). */
  failWrite: (table: Table, key: string) => boolean = () => false;
  failures = 0;

  constructor(inner: ClientStore) {
    this.inner = inner;
  }

  get(table: Table, key: string): Uint8Array | undefined {
    return this.inner.get(table, key);
  }
  put(table: Table, key: string, value: Uint8Array, expiresAt?: number | null): void {
    if (this.failWrite(table, key)) {
      this.failures++;
      throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    }
    this.inner.put(table, key, value, expiresAt);
  }
  delete(table: Table, key: string): void {
    this.inner.delete(table, key);
  }
  list(table: Table, prefix?: string): StoreEntry[] {
    return this.inner.list(table, prefix);
  }
  transaction<T>(fn: () => T): T {
    return this.inner.transaction(fn);
  }
  sweep(now: number): number {
    return this.inner.sweep(now);
  }
  close(): void {
    this.inner.close();
  }
}
