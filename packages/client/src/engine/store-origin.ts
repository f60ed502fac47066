/**
 * Telling our own failures from a peer's: spec/10-client.md §4.2.2.
 *
 * The receive loop may leave an envelope unacknowledged only when this
 * device's store failed (a read, a write, a commit): then the relay keeps
 * it and delivers it again. Every other failure, typed or not, was caused by
 * the input (or by a bug the input reached) and must not hold the inbox.
 * Listing the errors peers can cause does not scale (a RangeError from core,
 * a TypeError from a decoder, ...), so the boundary decides by origin
 * instead: the store handed to the receive path is wrapped, and whatever
 * escapes one of its methods is re-thrown as a LocalStoreFailure. Errors
 * raised by the code running inside `transaction(fn)` pass through as they
 * are; a failure to begin or commit the transaction is the store's.
 */
import type { ClientStore, StoreEntry, Table } from '../store/types.ts';

/** A failure of this device's store, with the original error as `cause`. Never shown to peers. */
export class LocalStoreFailure extends Error {
  constructor(cause: unknown) {
    super(`the local store failed: ${cause instanceof Error ? cause.name : typeof cause}`, { cause });
    this.name = 'LocalStoreFailure';
  }

  /** A short label for events and dead letters: the store error's `code` (SQLITE_FULL, ...) or its name. */
  get code(): string {
    const c = this.cause as { code?: unknown; name?: unknown } | undefined;
    if (typeof c?.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(c.code)) return c.code;
    if (typeof c?.name === 'string' && /^[A-Za-z]{1,64}$/.test(c.name)) return c.name;
    return 'STORE_FAILED';
  }
}

function tag(cause: unknown): LocalStoreFailure {
  return cause instanceof LocalStoreFailure ? cause : new LocalStoreFailure(cause);
}

/** `store`, with every failure of its own re-thrown as a LocalStoreFailure. */
export function taggingStoreFailures(store: ClientStore): ClientStore {
  const call = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw tag(e);
    }
  };
  return {
    get: (table: Table, key: string) => call(() => store.get(table, key)),
    put: (table: Table, key: string, value: Uint8Array, expiresAt?: number | null) => call(() => store.put(table, key, value, expiresAt)),
    delete: (table: Table, key: string) => call(() => store.delete(table, key)),
    list: (table: Table, prefix?: string): StoreEntry[] => call(() => store.list(table, prefix)),
    sweep: (now: number) => call(() => store.sweep(now)),
    close: () => call(() => store.close()),
    transaction<T>(fn: () => T): T {
      // Which error came out of `fn` (passed through untouched) and which from the store itself.
      let fromFn: { error: unknown } | null = null;
      try {
        return store.transaction(() => {
          try {
            return fn();
          } catch (error) {
            fromFn = { error };
            throw error;
          }
        });
      } catch (e) {
        if (fromFn !== null && (fromFn as { error: unknown }).error === e) throw e;
        throw tag(e);
      }
    },
  };
}
