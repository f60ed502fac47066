import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemoryStore } from '../src/store/memory.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { durabilityContract, storeContract } from './support/store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeContract('MemoryStore', (clock) => ({ store: new MemoryStore({ clock }) }));
storeContract('SqliteStore', (clock) => ({ store: new SqliteStore(':memory:', { clock }) }));
durabilityContract('SqliteStore', (clock) => {
  const path = join(dir, `store-${n++}.sqlite`);
  return { store: new SqliteStore(path, { clock }), reopen: () => new SqliteStore(path, { clock }) };
});
