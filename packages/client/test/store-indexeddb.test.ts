/**
 * IndexedDbStore in Node on fake-indexeddb: the ClientStore contract, a
 * reload, and IndexedDB's own failures. The same contract runs against
 * Chromium's real IndexedDB in test/browser-store.test.ts.
 */
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import { IndexedDbStore, IndexedDbStoreError } from '../src/store/indexeddb.ts';
import { durabilityContract, storeContract } from './support/store-contract.ts';

let n = 0;
const fresh = () => `parley-test-${n++}`;
const bytes = (...b: number[]) => Uint8Array.from(b);

storeContract('IndexedDbStore', async (clock) => ({ store: await IndexedDbStore.open(fresh(), { clock, indexedDB: new IDBFactory() }) }));
durabilityContract('IndexedDbStore', async (clock) => {
  const factory = new IDBFactory();
  const name = fresh();
  const store = await IndexedDbStore.open(name, { clock, indexedDB: factory });
  return {
    store,
    reopen: async () => {
      await store.flushed();
      return IndexedDbStore.open(name, { clock, indexedDB: factory });
    },
  };
});

/** Counts readwrite transactions, and can make the Nth `put` of them throw (as a full disk would). */
function instrumented(factory: IDBFactory, failPutNumber: number | null = null) {
  const stats = { writes: 0, puts: 0 };
  const open = factory.open.bind(factory);
  factory.open = (name: string, version?: number) => {
    const req = open(name, version);
    req.addEventListener('success', () => {
      const db = req.result;
      const transaction = db.transaction.bind(db);
      db.transaction = ((names: string | string[], mode?: IDBTransactionMode) => {
        const tx = transaction(names, mode);
        if (mode !== 'readwrite') return tx;
        stats.writes++;
        const objectStore = tx.objectStore.bind(tx);
        tx.objectStore = (n: string) => {
          const os = objectStore(n);
          const put = os.put.bind(os);
          os.put = (value: unknown, key?: IDBValidKey) => {
            stats.puts++;
            if (stats.puts === failPutNumber) throw new DOMException('disk full', 'QuotaExceededError');
            return put(value, key);
          };
          return os;
        };
        return tx;
      }) as typeof db.transaction;
    });
    return req;
  };
  return stats;
}

describe('IndexedDbStore on IndexedDB', () => {
  it('writes one IndexedDB transaction per store transaction, and none for one that throws', async () => {
    const factory = new IDBFactory();
    const stats = instrumented(factory);
    const store = await IndexedDbStore.open('one-tx', { indexedDB: factory });
    store.transaction(() => {
      for (let i = 0; i < 10; i++) store.put('messages', `m${i}`, bytes(i));
    });
    expect(() =>
      store.transaction(() => {
        store.put('messages', 'x', bytes(1));
        throw new Error('no');
      }),
    ).toThrow('no');
    store.put('contacts', 'c', bytes(1));
    expect(stats.writes).toBe(2);
    await store.flushed();
    store.close();
    const again = await IndexedDbStore.open('one-tx', { indexedDB: factory });
    expect(again.list('messages').map((e) => e.key)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(again.get('contacts', 'c')).toEqual(bytes(1));
    again.close();
  });

  it('keeps expiry and sweeps through to disk', async () => {
    const factory = new IDBFactory();
    const clock = { now: 1000 };
    const store = await IndexedDbStore.open('expiry', { indexedDB: factory, clock: () => clock.now });
    store.put('messages', 'gone', bytes(1), 1500);
    store.put('messages', 'kept', bytes(2), 5000);
    expect(store.sweep(1500)).toBe(1);
    await store.flushed();
    store.close();
    clock.now = 0; // an entry swept from disk does not come back even if the clock says it has not expired
    const again = await IndexedDbStore.open('expiry', { indexedDB: factory, clock: () => clock.now });
    expect(again.list('messages')).toEqual([{ key: 'kept', value: bytes(2), expiresAt: 5000 }]);
    again.close();
  });

  it('a write IndexedDB refuses leaves none of its transaction on disk, and fails the store with a code', async () => {
    const factory = new IDBFactory();
    const errors: string[] = [];
    // Puts 1-2: the first transaction; put 4 is the second of the second transaction.
    instrumented(factory, 4);
    const store = await IndexedDbStore.open('refused', { indexedDB: factory, onError: (e) => errors.push(e.code) });
    store.transaction(() => {
      store.put('sessions', 'a', bytes(1));
      store.put('sessions', 'b', bytes(1));
    });
    store.transaction(() => {
      store.put('sessions', 'a', bytes(2));
      store.put('sessions', 'b', bytes(2));
      store.put('sessions', 'c', bytes(2));
    });
    await expect(store.flushed()).rejects.toMatchObject({ code: 'STORE_WRITE_FAILED' });
    expect(errors).toEqual(['STORE_WRITE_FAILED']);
    // Memory is ahead of the disk now: the store refuses to go on rather than lose state silently.
    expect(() => store.get('sessions', 'a')).toThrow(IndexedDbStoreError);
    expect(() => store.put('sessions', 'd', bytes(1))).toThrow(IndexedDbStoreError);
    store.close();
    const again = await IndexedDbStore.open('refused', { indexedDB: factory });
    expect(again.list('sessions').map((e) => [e.key, e.value[0]])).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    again.close();
  });

  it('refuses a second page while one holds the lock, and lets it in after close', async () => {
    const factory = new IDBFactory();
    const held = new Set<string>();
    const locks = {
      async request(name: string, _o: unknown, cb: (lock: unknown) => Promise<void>) {
        if (held.has(name)) return cb(null);
        held.add(name);
        try {
          await cb({ name });
        } finally {
          held.delete(name);
        }
      },
    };
    const first = await IndexedDbStore.open('locked', { indexedDB: factory, locks });
    await expect(IndexedDbStore.open('locked', { indexedDB: factory, locks })).rejects.toMatchObject({ code: 'STORE_IN_USE' });
    first.put('identity', 'x', bytes(1));
    first.close();
    await first.flushed();
    await new Promise((r) => setTimeout(r, 0));
    const second = await IndexedDbStore.open('locked', { indexedDB: factory, locks });
    expect(second.get('identity', 'x')).toEqual(bytes(1));
    second.close();
  });
});
