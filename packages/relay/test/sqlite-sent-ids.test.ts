// The SQLite backend's idempotency records as keyed hashes (storage/sqlite-sent-ids.ts, schema 9):
// the keys tell tuples apart exactly as the tuples did, the records written by schema 8 still
// catch their retries after the migration, the secret lasts across reopening, and the table holds
// neither client ids nor account keys. spec/09-relay.md §4.3, §7.1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, migrate } from '../src/storage/sqlite-schema.ts';
import { SENT_ID_KEY_BYTES, sentIdKeyer } from '../src/storage/sqlite-sent-ids.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress, StoreMessagesInput } from '../src/storage/types.ts';

const recipient: DeviceAddress = { accountKey: new Uint8Array(32).fill(0x71), deviceId: 1 };
const sender: DeviceAddress = { accountKey: new Uint8Array(32).fill(0x72), deviceId: 2 };
const b = (a: Uint8Array) => Buffer.from(a);

const send = (clientId: string, expiresAt = 9_000_000_000_000): StoreMessagesInput => ({
  sender,
  envelopes: [{ recipient, clientId, envelope: new Uint8Array(10).fill(5) }],
  now: 2,
  expiresAt,
  maxQueuedMessages: 100,
  maxQueuedBytes: 1 << 20,
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const dbPath = () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-sent-ids-'));
  dirs.push(dir);
  return join(dir, 'relay.sqlite');
};

/** A schema-8 database: the recipient's device and the tuple-form records of `ids` (expiring at `expiresAt`). */
function version8(path: string, ids: readonly string[], expiresAt: number): void {
  const db = new Database(path);
  migrate(db, 8);
  db.prepare(
    `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
       signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem) VALUES (?, 1, ?, ?, ?, 1, 1, ?, 1, ?)`,
  ).run(b(recipient.accountKey), Buffer.from([1]), Buffer.alloc(32, 9), Buffer.alloc(32, 8), Buffer.from([2]), Buffer.from([3]));
  const insert = db.prepare(
    `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );
  for (const id of ids) insert.run(b(sender.accountKey), sender.deviceId, b(recipient.accountKey), recipient.deviceId, id, expiresAt);
  db.close();
}

describe('idempotency record keys', () => {
  const tuple = fc.record({
    sender: fc.uint8Array({ minLength: 0, maxLength: 40 }),
    senderDevice: fc.nat({ max: 2 ** 32 - 1 }),
    recipient: fc.uint8Array({ minLength: 0, maxLength: 40 }),
    recipientDevice: fc.nat({ max: 2 ** 32 - 1 }),
    clientId: fc.string({ maxLength: 12 }),
  });
  const key = sentIdKeyer(new Uint8Array(32).fill(1));
  const keyOf = (t: typeof tuple extends fc.Arbitrary<infer T> ? T : never) =>
    key(t.sender, t.senderDevice, t.recipient, t.recipientDevice, t.clientId);

  it('are equal exactly when the tuples are (fields moved across their boundaries included)', () => {
    fc.assert(
      fc.property(tuple, tuple, (x, y) => {
        const same =
          b(x.sender).equals(b(y.sender)) &&
          x.senderDevice === y.senderDevice &&
          b(x.recipient).equals(b(y.recipient)) &&
          x.recipientDevice === y.recipientDevice &&
          x.clientId === y.clientId;
        expect(keyOf(x).equals(keyOf(y))).toBe(same);
        expect(keyOf(x)).toHaveLength(SENT_ID_KEY_BYTES);
      }),
      { numRuns: 2000 },
    );
    // Bytes moved from one field into its neighbour (a plain concatenation would not tell these apart).
    const a = new Uint8Array([1, 2, 3]);
    expect(key(a, 1, a.subarray(0, 2), 1, 'x').equals(key(a.subarray(0, 2), 1, a, 1, 'x'))).toBe(false);
    expect(key(a, 1, a, 1, 'ab').equals(key(a, 1, a, 1, 'a'))).toBe(false);
    expect(key(a, 1, a, 2, 'x').equals(key(a, 2, a, 1, 'x'))).toBe(false);
  });

  it('depend on the secret', () => {
    const other = sentIdKeyer(new Uint8Array(32).fill(2));
    const t = [sender.accountKey, 1, recipient.accountKey, 1, 'id'] as const;
    expect(key(...t).equals(other(...t))).toBe(false);
  });
});

describe('SQLite idempotency records (schema 9)', () => {
  it('records written in tuple form by schema 8 still catch their retries, and expire when they did', async () => {
    const path = dbPath();
    version8(path, ['old-1', 'old-2'], 5_000);
    const storage = new SqliteStorage({ path });
    try {
      expect(storage.counters.totals().messages).toBe(0);
      const retry = await storage.storeMessages(send('old-1'));
      expect(retry).toMatchObject({ status: 'stored', stored: 0, duplicates: 1 });
      const fresh = await storage.storeMessages(send('new-1'));
      expect(fresh).toMatchObject({ status: 'stored', stored: 1, duplicates: 0 });
      // The old expiry came along: a sweep before it keeps both old records, one after it removes them.
      expect((await storage.sweep(4_999)).sentIds).toBe(0);
      expect((await storage.sweep(5_000)).sentIds).toBe(2);
      expect(await storage.storeMessages(send('old-2'))).toMatchObject({ stored: 1, duplicates: 0 });
    } finally {
      await storage.close();
    }
  });

  it('the secret lasts across reopening: a retry after a restart is still a retry', async () => {
    const path = dbPath();
    version8(path, [], 1);
    const first = new SqliteStorage({ path });
    expect(await first.storeMessages(send('m-1'))).toMatchObject({ stored: 1 });
    await first.close();
    const second = new SqliteStorage({ path });
    try {
      expect(await second.storeMessages(send('m-1'))).toMatchObject({ stored: 0, duplicates: 1 });
      expect(await second.storeMessages(send('m-2'))).toMatchObject({ stored: 1, duplicates: 0 });
    } finally {
      await second.close();
    }
  });

  it('stores neither the client id nor an account key in the records', async () => {
    const path = dbPath();
    version8(path, ['legacy-client-id'], 9_000_000_000_000);
    const storage = new SqliteStorage({ path });
    await storage.storeMessages(send('visible-client-id'));
    await storage.close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const rows = db.prepare<[], { id: Buffer; expires_at: number }>('SELECT id, expires_at FROM sent_ids').all();
      expect(rows).toHaveLength(2);
      for (const row of rows) {
        expect(Object.keys(row)).toEqual(['id', 'expires_at']);
        expect(row.id).toHaveLength(SENT_ID_KEY_BYTES);
        expect(row.id.includes(Buffer.from('client-id'))).toBe(false);
        expect(row.id.includes(b(sender.accountKey).subarray(0, 4))).toBe(false);
      }
    } finally {
      db.close();
    }
  });
});
