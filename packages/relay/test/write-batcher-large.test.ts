// Large writes (a device's whole mailbox, a sweep) commit in a group commit of their own, with the
// savepoint journal on disk; every other write keeps it in memory (storage/write-batcher.ts
// LargeWrites, storage/sqlite.ts, spec/09-relay.md §7.1).
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { StorageDriver } from '../src/storage/rules/queries.ts';
import { RuleStorage } from '../src/storage/rules/storage.ts';
import { WriteBatcher } from '../src/storage/write-batcher.ts';

describe('large writes', () => {
  it('commit alone, inside the hook that moves the savepoint journal to disk; the writes around them batch as before', async () => {
    const db = new Database(':memory:');
    db.pragma('temp_store = MEMORY');
    const calls: string[] = [];
    const batches: number[] = [];
    const batcher = new WriteBatcher(db, (n) => batches.push(n), undefined, undefined, undefined, {
      before: () => {
        calls.push('before');
        db.pragma('temp_store = FILE');
      },
      after: () => {
        calls.push('after');
        db.pragma('temp_store = MEMORY');
      },
    });
    const write = (name: string) => () => {
      calls.push(name);
      // 1 = FILE, 2 = MEMORY.
      return db.pragma('temp_store', { simple: true }) as number;
    };
    const answers = await Promise.all([
      batcher.submit(write('a')),
      batcher.submit(write('b')),
      batcher.submit(write('large 1'), true),
      batcher.submit(write('large 2'), true),
      batcher.submit(write('c')),
      batcher.submit(write('d')),
    ]);
    expect(answers).toEqual([2, 2, 1, 1, 2, 2]);
    expect(calls).toEqual(['a', 'b', 'before', 'large 1', 'after', 'before', 'large 2', 'after', 'c', 'd']);
    expect(batches).toEqual([2, 1, 1, 2]);
    // A large write that fails still restores the journal's place.
    await expect(
      batcher.submit(() => {
        throw new Error('refused');
      }, true),
    ).rejects.toThrow('refused');
    expect(db.pragma('temp_store', { simple: true })).toBe(2);
    batcher.close();
    db.close();
  });

  it('are the device registration (a replaced device loses its mailbox), the removal and the sweep', async () => {
    const options: [string, unknown][] = [];
    let current = '';
    const driver = {
      transact: (_rule: unknown, o?: unknown) => {
        options.push([current, o]);
        return Promise.resolve(undefined);
      },
      read: {},
    } as unknown as StorageDriver;
    const storage = new RuleStorage(driver);
    const device = { accountKey: new Uint8Array(32), deviceId: 1 };
    const run = async (name: string, f: () => Promise<unknown>) => {
      current = name;
      await f().catch(() => undefined);
    };
    await run('register', () => storage.registerDevice({} as never));
    await run('remove', () => storage.removeDevice(device, new Uint8Array(32), 1));
    await run('sweep', () => storage.sweep(1));
    await run('ack', () => storage.ackMessages(device, [1]));
    await run('send', () => storage.storeMessages({} as never));
    expect(options).toEqual([
      ['register', { large: true }],
      ['remove', { large: true }],
      ['sweep', undefined],
      ['ack', undefined],
      ['send', undefined],
    ]);
  });
});
