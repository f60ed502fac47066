// The franked-material table (franking/store.ts) on every store backend:
// rows round-trip exactly, are found by message id and listed by
// conversation (bounded), disappear with their message's expiry, are
// dropped oldest first past the bound, and a rolled-back transaction
// leaves none behind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, describe, expect, it } from 'vitest';
import {
  FRANKED_PRUNE_EVERY,
  type FrankedMessage,
  MAX_FRANKED_LIST,
  acceptedAtBytes,
  deleteFranked,
  findFranked,
  getFranked,
  listFranked,
  pruneFranked,
  putFranked,
} from '../src/franking/store.ts';
import { historyKey } from '../src/state/history.ts';
import { accountId } from '../src/state/ids.ts';
import { IndexedDbStore } from '../src/store/indexeddb.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import type { ClientStore } from '../src/store/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-franked-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let now = 1_780_000_000_000;
const clock = () => now;

const backends: [string, () => Promise<ClientStore>][] = [
  ['memory', async () => new MemoryStore({ clock })],
  ['sqlite', async () => new SqliteStore(join(dir, `s${Math.random()}.sqlite`), { clock })],
  ['indexeddb', async () => IndexedDbStore.open(`f${Math.random()}`, { clock, indexedDB: new IDBFactory() })],
];

const sender = new Uint8Array(32).fill(0xaa);
const conversation = accountId(sender);

function row(i: number, over: Partial<FrankedMessage> = {}): FrankedMessage {
  const messageId = new Uint8Array(16).fill(i % 256);
  messageId[0] = i >> 8;
  const receivedAt = now + i;
  return {
    messageKey: historyKey(over.conversation ?? conversation, receivedAt, messageId),
    conversation,
    group: null,
    messageId,
    sender: { accountKey: sender, deviceId: 3 },
    recipientDevice: 2,
    delivery: {
      envelopeId: new Uint8Array(16).fill(1),
      acceptedAt: receivedAt - 5,
      frankKeyId: 20_601,
      frank: new Uint8Array(32).fill(2),
      frankingTag: new Uint8Array(32).fill(3),
    },
    frankingKey: new Uint8Array(32).fill(4),
    plaintext: new Uint8Array([0x89, 1, 2, 3, i % 256]),
    attestation: null,
    sealed: false,
    receivedAt,
    expiresAt: null,
    ...over,
  };
}

for (const [name, open] of backends) {
  describe(`franked rows on the ${name} store`, () => {
    it('round-trips every field, is found by message id through the history index, and is deleted', async () => {
      const store = await open();
      const m = row(1, { group: new Uint8Array(32).fill(9), attestation: new Uint8Array(64).fill(8), sealed: true });
      store.transaction(() => {
        putFranked(store, m);
        // What the history writes for the same message (state/history.ts addMessage): the index finds the row.
        store.put('message-index', `${accountId(sender)}/${toB64(m.messageId)}`, new TextEncoder().encode(m.messageKey));
      });
      expect(getFranked(store, m.messageKey)).toEqual(m);
      expect(findFranked(store, sender, m.messageId)).toEqual(m);
      expect(findFranked(store, new Uint8Array(32), m.messageId)).toBeNull();
      store.transaction(() => deleteFranked(store, m.messageKey));
      expect(getFranked(store, m.messageKey)).toBeNull();
      // Only the write counter of the bound is left.
      expect(store.list('franked').map((e) => e.key)).toEqual(['n']);
      store.close();
    });

    it('lists a conversation oldest first, at most the limit, and pages back', async () => {
      const store = await open();
      store.transaction(() => {
        for (let i = 0; i < 5; i++) putFranked(store, row(i));
        putFranked(store, row(9, { conversation: 'g.other' }));
      });
      const all = listFranked(store, conversation);
      expect(all.map((r) => r.receivedAt)).toEqual([0, 1, 2, 3, 4].map((i) => now + i));
      expect(listFranked(store, conversation, { limit: 2 }).map((r) => r.receivedAt)).toEqual([now + 3, now + 4]);
      expect(listFranked(store, conversation, { limit: 2, before: all[3]?.messageKey }).map((r) => r.receivedAt)).toEqual([
        now + 1,
        now + 2,
      ]);
      expect(() => listFranked(store, conversation, { limit: 0 })).toThrow(RangeError);
      expect(listFranked(store, conversation, { limit: MAX_FRANKED_LIST * 10 }).length).toBe(5);
      store.close();
    });

    it('a row disappears with its message: at the expiry, for every reader, and the sweep deletes it', async () => {
      const store = await open();
      const m = row(1, { expiresAt: now + 1000 });
      store.transaction(() => putFranked(store, m));
      expect(getFranked(store, m.messageKey)?.expiresAt).toBe(now + 1000);
      now += 1000;
      expect(getFranked(store, m.messageKey)).toBeNull();
      expect(listFranked(store, conversation)).toEqual([]);
      store.sweep(now);
      expect(store.list('franked').filter((e) => e.key !== 'n')).toEqual([]);
      store.close();
    });

    it('a rolled-back transaction leaves no row', async () => {
      const store = await open();
      expect(() =>
        store.transaction(() => {
          putFranked(store, row(1));
          throw new Error('decrypt failed later in the same transaction');
        }),
      ).toThrow();
      expect(store.list('franked')).toEqual([]);
      store.close();
    });
  });
}

describe('the bound on franked rows', () => {
  it('drops the oldest rows first, enforced every FRANKED_PRUNE_EVERY writes', () => {
    const store = new MemoryStore({ clock });
    const rows = Array.from({ length: 3 * FRANKED_PRUNE_EVERY }, (_, i) => row(i));
    store.transaction(() => {
      for (const r of rows) putFranked(store, r);
    });
    // Nothing past the default bound yet; an explicit prune to 10 keeps the 10 newest.
    expect(listFranked(store, conversation, { limit: MAX_FRANKED_LIST }).length).toBe(MAX_FRANKED_LIST);
    expect(store.transaction(() => pruneFranked(store, 10))).toBe(rows.length - 10);
    const kept = store.list('franked', 'm/').map((e) => e.key.slice(2));
    expect(kept.sort()).toEqual(
      rows
        .slice(-10)
        .map((r) => r.messageKey)
        .sort(),
    );
    expect(store.list('franked', 'o/').length).toBe(10);
  });

  it('putFranked enforces MAX_FRANKED_MESSAGES by itself', async () => {
    const { MAX_FRANKED_MESSAGES } = await import('../src/franking/store.ts');
    const store = new MemoryStore({ clock });
    const total = MAX_FRANKED_MESSAGES + 3 * FRANKED_PRUNE_EVERY + 5;
    store.transaction(() => {
      for (let i = 0; i < total; i++) putFranked(store, row(i, { plaintext: new Uint8Array([i & 0xff]) }));
    });
    const kept = store.list('franked', 'o/');
    expect(kept.length).toBeLessThanOrEqual(MAX_FRANKED_MESSAGES);
    expect(kept.length).toBeGreaterThan(MAX_FRANKED_MESSAGES - 2 * FRANKED_PRUNE_EVERY);
    expect(store.list('franked', 'm/').length).toBe(kept.length);
    // The oldest went: the first row written is gone, the last is there.
    expect(getFranked(store, row(0).messageKey)).toBeNull();
    expect(getFranked(store, row(total - 1).messageKey)).not.toBeNull();
  });

  it('acceptedAt converts to the 8 bytes a report item carries', () => {
    expect([...acceptedAtBytes(0x0102030405)]).toEqual([0, 0, 0, 1, 2, 3, 4, 5]);
  });
});

function toB64(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}
