/**
 * Runs in Chromium (bundled by browser-store.test.ts with `vitest` aliased to
 * ./vitest-shim.ts): the ClientStore contract against the browser's real
 * IndexedDB, then, across a page reload (`?phase=write` then
 * `?phase=read`), what survives a reload and what a failed transaction
 * leaves behind.
 */
import { IndexedDbStore } from '../../src/store/indexeddb.ts';
import { durabilityContract, storeContract } from '../support/store-contract.ts';
import { cases } from './vitest-shim.ts';

export interface StoreBrowserResult {
  readonly passed: string[];
  readonly failed: { name: string; error: string }[];
  readonly reload?: { device: number[] | null; lost: boolean; messages: string[]; locked: string | null };
}

let n = 0;
const fresh = () => `contract-${Date.now()}-${n++}`;
const RELOAD_DB = 'parley-reload-test';

async function contract(): Promise<StoreBrowserResult> {
  storeContract('IndexedDbStore (Chromium)', async (clock) => ({ store: await IndexedDbStore.open(fresh(), { clock }) }));
  durabilityContract('IndexedDbStore (Chromium)', async (clock) => {
    const name = fresh();
    const store = await IndexedDbStore.open(name, { clock });
    return {
      store,
      reopen: async () => {
        await store.flushed();
        // The Web Lock is released once the closed store's writes are done.
        await new Promise((r) => setTimeout(r, 0));
        return IndexedDbStore.open(name, { clock });
      },
    };
  });
  const passed: string[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const c of cases) {
    try {
      await c.fn();
      passed.push(c.name);
    } catch (e) {
      failed.push({ name: c.name, error: String((e as Error)?.stack ?? e) });
    }
  }
  return { passed, failed };
}

async function write(): Promise<StoreBrowserResult> {
  const store = await IndexedDbStore.open(RELOAD_DB);
  store.put('identity', 'device', Uint8Array.from([7, 7]));
  store.transaction(() => {
    for (let i = 0; i < 50; i++) store.put('messages', `m${String(i).padStart(2, '0')}`, Uint8Array.from([i]));
  });
  try {
    store.transaction(() => {
      store.put('identity', 'lost', Uint8Array.from([1]));
      throw new Error('rolled back');
    });
  } catch {
    // expected
  }
  await store.flushed();
  // Still open (the page is about to reload without closing it): a second opener in this page is refused.
  let locked: string | null = null;
  await IndexedDbStore.open(RELOAD_DB).then(
    (s) => s.close(),
    (e) => (locked = (e as { code?: string }).code ?? 'unknown'),
  );
  return { passed: [], failed: [], reload: { device: null, lost: false, messages: [], locked } };
}

async function read(): Promise<StoreBrowserResult> {
  const store = await IndexedDbStore.open(RELOAD_DB);
  const device = store.get('identity', 'device');
  const result = {
    device: device ? [...device] : null,
    lost: store.get('identity', 'lost') !== undefined,
    messages: store.list('messages').map((e) => e.key),
    locked: null,
  };
  store.close();
  return { passed: [], failed: [], reload: result };
}

const phase = new URLSearchParams(location.search).get('phase');
const run = phase === 'write' ? write : phase === 'read' ? read : contract;
run().then(
  (r) => {
    (window as { __result?: unknown }).__result = r;
  },
  (e) => {
    (window as { __result?: unknown }).__result = { passed: [], failed: [{ name: 'page', error: String(e?.stack ?? e) }] };
  },
);
