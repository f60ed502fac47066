/**
 * The contract every `ClientStore` must pass (spec/10-client.md §7). Run by
 * store.test.ts against the memory and SQLite stores; a new backend adds one
 * line there.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClientStore } from '../../src/store/types.ts';

/** Asynchronous backends (IndexedDB) open asynchronously; the store itself is synchronous once open. */
export type StoreFactory = (clock: () => number) => MadeStore | Promise<MadeStore>;
export type MadeStore = { store: ClientStore; reopen?: () => ClientStore | Promise<ClientStore> };

const bytes = (...b: number[]) => Uint8Array.from(b);

export function storeContract(name: string, make: StoreFactory): void {
  describe(`${name}: ClientStore contract`, () => {
    const open = async (now = 1000) => {
      const clock = { now };
      const made = await make(() => clock.now);
      return { ...made, clock };
    };

    it('reads back what it wrote, and copies values both ways', async () => {
      const { store } = await open();
      const value = bytes(1, 2, 3);
      store.put('sessions', 'a.1', value);
      value[0] = 9;
      const read = store.get('sessions', 'a.1') as Uint8Array;
      expect(read).toEqual(bytes(1, 2, 3));
      read[1] = 9;
      expect(store.get('sessions', 'a.1')).toEqual(bytes(1, 2, 3));
      expect(store.get('sessions', 'a.2')).toBeUndefined();
      expect(store.get('contacts', 'a.1')).toBeUndefined();
      store.close();
    });

    it('replaces and deletes', async () => {
      const { store } = await open();
      store.put('contacts', 'k', bytes(1));
      store.put('contacts', 'k', bytes(2));
      expect(store.get('contacts', 'k')).toEqual(bytes(2));
      store.delete('contacts', 'k');
      expect(store.get('contacts', 'k')).toBeUndefined();
      store.delete('contacts', 'never-there');
      store.close();
    });

    it('lists by prefix in key order, and only that table', async () => {
      const { store } = await open();
      for (const k of ['b/2', 'a/1', 'b/10', 'b/1', 'c', 'b']) store.put('messages', k, bytes(k.length));
      store.put('sent', 'b/3', bytes(0));
      expect(store.list('messages', 'b/').map((e) => e.key)).toEqual(['b/1', 'b/10', 'b/2']);
      expect(store.list('messages').map((e) => e.key)).toEqual(['a/1', 'b', 'b/1', 'b/10', 'b/2', 'c']);
      expect(store.list('messages', 'z')).toEqual([]);
      store.close();
    });

    it('orders and bounds prefixes the same way as JavaScript string comparison (property)', async () => {
      const { store } = await open();
      const key = fc.stringMatching(/^[ -~]{1,8}$/);
      fc.assert(
        fc.property(
          fc.uniqueArray(key, { maxLength: 20 }),
          fc.string({ unit: fc.constantFrom('a', 'b', '/', '~', ' '), maxLength: 2 }),
          (keys, prefix) => {
            store.transaction(() => {
              for (const e of store.list('processed')) store.delete('processed', e.key);
              for (const k of keys) store.put('processed', k, bytes(1));
            });
            const expected = keys.filter((k) => k.startsWith(prefix)).sort();
            expect(store.list('processed', prefix).map((e) => e.key)).toEqual(expected);
          },
        ),
        { numRuns: 100 },
      );
      store.close();
    });

    it('hides an expired entry at once and sweeps it later', async () => {
      const { store, clock } = await open(1000);
      store.put('messages', 'gone', bytes(1), 1500);
      store.put('messages', 'kept', bytes(2), 5000);
      store.put('messages', 'forever', bytes(3));
      expect(store.get('messages', 'gone')).toEqual(bytes(1));
      expect(store.list('messages')[1]?.expiresAt).toBe(1500);
      clock.now = 1500;
      expect(store.get('messages', 'gone')).toBeUndefined();
      expect(store.list('messages').map((e) => e.key)).toEqual(['forever', 'kept']);
      expect(store.sweep(1500)).toBe(1);
      expect(store.sweep(1500)).toBe(0);
      expect(store.sweep(5000)).toBe(1);
      expect(store.list('messages').map((e) => e.key)).toEqual(['forever']);
      store.close();
    });

    it('commits a transaction as a whole', async () => {
      const { store } = await open();
      const result = store.transaction(() => {
        store.put('sessions', 'x', bytes(1));
        store.put('outbox', 'y', bytes(2));
        return 42;
      });
      expect(result).toBe(42);
      expect(store.get('sessions', 'x')).toEqual(bytes(1));
      expect(store.get('outbox', 'y')).toEqual(bytes(2));
      store.close();
    });

    it('rolls back every write of a transaction that throws, including deletes and replacements', async () => {
      const { store } = await open();
      store.put('sessions', 'old', bytes(1));
      store.put('sessions', 'replaced', bytes(2));
      expect(() =>
        store.transaction(() => {
          store.delete('sessions', 'old');
          store.put('sessions', 'replaced', bytes(3));
          store.put('sessions', 'replaced', bytes(4));
          store.put('sessions', 'new', bytes(5), 99_999);
          store.transaction(() => store.put('processed', 'nested', bytes(6)));
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(store.get('sessions', 'old')).toEqual(bytes(1));
      expect(store.get('sessions', 'replaced')).toEqual(bytes(2));
      expect(store.get('sessions', 'new')).toBeUndefined();
      expect(store.get('processed', 'nested')).toBeUndefined();
      store.close();
    });

    it('refuses an async transaction function and keeps nothing it wrote synchronously', async () => {
      const { store } = await open();
      expect(() =>
        store.transaction(() => {
          store.put('sessions', 'async', bytes(1));
          return Promise.resolve(1);
        }),
      ).toThrow(TypeError);
      expect(store.get('sessions', 'async')).toBeUndefined();
      store.close();
    });

    it('refuses keys that are empty, too long or not printable ASCII, and unknown tables', async () => {
      const { store } = await open();
      expect(() => store.put('sessions', '', bytes(1))).toThrow(TypeError);
      expect(() => store.put('sessions', 'x'.repeat(1025), bytes(1))).toThrow(TypeError);
      expect(() => store.put('sessions', 'caf\u00e9', bytes(1))).toThrow(TypeError);
      expect(() => store.put('sessions', 'a\nb', bytes(1))).toThrow(TypeError);
      expect(() => store.put('nope' as 'sessions', 'k', bytes(1))).toThrow(TypeError);
      expect(() => store.get('nope' as 'sessions', 'k')).toThrow(TypeError);
      store.close();
    });

    it('keeps an empty value distinct from an absent one', async () => {
      const { store } = await open();
      store.put('processed', 'empty', new Uint8Array(0));
      expect(store.get('processed', 'empty')).toEqual(new Uint8Array(0));
      store.close();
    });
  });
}

/** For durable backends: what was committed is there after reopening; what was rolled back is not. */
export function durabilityContract(name: string, make: StoreFactory): void {
  describe(`${name}: durability`, () => {
    it('survives a reopen', async () => {
      const made = await make(() => 1000);
      const store = made.store;
      store.put('identity', 'device', bytes(7, 7));
      expect(() =>
        store.transaction(() => {
          store.put('identity', 'lost', bytes(1));
          throw new Error('no');
        }),
      ).toThrow();
      store.close();
      const again = await (made.reopen as () => ClientStore | Promise<ClientStore>)();
      expect(again.get('identity', 'device')).toEqual(bytes(7, 7));
      expect(again.get('identity', 'lost')).toBeUndefined();
      again.close();
    });
  });
}
