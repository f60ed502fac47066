/**
 * SqliteStore destroys what it deletes (spec/10-client.md §7.4): after a
 * sweep, no byte of a deleted, replaced or expired value is left in the
 * database file, its -wal or its -shm, with the store still open.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function holding(dir: string, needle: string): string[] {
  return readdirSync(dir).filter((f) => readFileSync(join(dir, f)).includes(Buffer.from(needle)));
}

describe('SqliteStore: deleting destroys', () => {
  it('deleted, replaced and expired values leave no bytes in any file after a sweep', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-secure-delete-'));
    dirs.push(dir);
    const clock = { now: 1_000_000 };
    const store = new SqliteStore(join(dir, 's.sqlite'), { clock: () => clock.now });
    const enc = (s: string) => new TextEncoder().encode(s);
    const tag = Math.random().toString(36).slice(2);
    // Enough rows that some pages go to the free list, and one value large enough for overflow pages.
    for (let i = 0; i < 200; i++) store.put('messages', `k/${i}`, enc(`keep-${i} `.repeat(20)));
    store.put('messages', 'deleted', enc(`DELETED-${tag} `.repeat(40)));
    store.put('messages', 'replaced', enc(`REPLACED-${tag} `.repeat(40)));
    store.put('sent', 'expiring', enc(`EXPIRED-${tag} `.repeat(600)), clock.now + 10);
    store.transaction(() => {
      for (let i = 0; i < 100; i++) store.delete('messages', `k/${i}`);
    });
    for (const what of ['DELETED', 'REPLACED', 'EXPIRED']) expect(holding(dir, `${what}-${tag}`).length).toBeGreaterThan(0);

    store.delete('messages', 'deleted');
    store.put('messages', 'replaced', enc('something else'));
    clock.now += 11;
    expect(store.sweep(clock.now)).toBe(1);
    for (const what of ['DELETED', 'REPLACED', 'EXPIRED'])
      expect({ what, files: holding(dir, `${what}-${tag}`) }).toEqual({ what, files: [] });
    // What was kept is intact.
    expect(new TextDecoder().decode(store.get('messages', 'k/150'))).toBe('keep-150 '.repeat(20));
    expect(store.list('messages').length).toBe(101);
    store.close();
  });
});
