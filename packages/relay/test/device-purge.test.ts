// The purge of a removed device's mailbox survives a crash (issue 15, spec/09-relay.md §4.1.2):
// killed with SIGKILL mid-purge, the relay opens the database with its counters rebuilt from the
// rows left, the id still refused, and the purge resumes (sweeper.ts purgeRemoved runs at start)
// until the mailbox is empty; the new device then gets no row of the old one. And schema
// migration 10 (the purge records) keeps a version-9 database's rows.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DEVICE_PURGE_CHUNK_ROWS } from '../src/storage/rules/devices.ts';
import { SCHEMA_VERSION, migrate } from '../src/storage/sqlite-schema.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress } from '../src/storage/types.ts';
import { killWhen } from './support/kill-when.ts';

/** Rows queued for the removed device: twelve purge writes and a few rows. */
const PURGE_LOAD_ROWS = 12 * DEVICE_PURGE_CHUNK_ROWS + 5;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = (tag: string) => {
  const dir = mkdtempSync(join(tmpdir(), `parley-${tag}-`));
  dirs.push(dir);
  return dir;
};

const phone: DeviceAddress = { accountKey: new Uint8Array(32).fill(1), deviceId: 1 };
const registration = (version: number) => ({
  device: {
    ...phone,
    certificate: Uint8Array.of(version),
    certificateHash: new Uint8Array(32).fill(0x80 + version),
    signingKey: new Uint8Array(32),
    registeredAt: 3000,
  },
  keys: { signedPreKey: { id: 1, encoded: Uint8Array.of(1) }, lastResortKemPreKey: { id: 1, encoded: Uint8Array.of(2) } },
  maxDevicesPerAccount: 5,
  preKeyLimits: { maxOneTimePreKeys: 10, maxKemPreKeys: 4 },
});

describe('a mailbox purge interrupted by kill -9', () => {
  it('resumes at open in bounded writes; the id waits for it and the new device gets no old row', async () => {
    const path = join(tempDir('purge-kill'), 'relay.sqlite');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./fixtures/purge-load.ts', import.meta.url)), path, String(PURGE_LOAD_ROWS)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    await killWhen(child, (out) => out.includes('purging'), 'the purge');

    const reader = new Database(path, { readonly: true });
    const left = () =>
      (reader.prepare('SELECT COUNT(*) AS n FROM messages WHERE recipient_account = ?').get(Buffer.from(phone.accountKey)) as { n: number })
        .n;
    const storage = new SqliteStorage({ path });
    try {
      const before = left();
      // At least the four purge writes the child never ran are left.
      expect(before).toBeGreaterThanOrEqual(4 * DEVICE_PURGE_CHUNK_ROWS);
      expect(before).toBeLessThan(PURGE_LOAD_ROWS);
      expect(reader.prepare('SELECT COUNT(*) AS n FROM purging_mailboxes').get()).toEqual({ n: 1 });
      // The counters are the rows': the rows left still count until purged.
      expect((await storage.stats()).queuedMessages).toBe(before);
      expect(await storage.registerDevice(registration(2))).toEqual({ status: 'purging' });
      const writes: number[] = [];
      for (let more = true; more; ) {
        const r = await storage.purgeRemovedMailboxes();
        writes.push(r.purged);
        more = r.more;
      }
      for (const n of writes) expect(n).toBeLessThanOrEqual(DEVICE_PURGE_CHUNK_ROWS);
      expect(left()).toBe(0);
      expect(reader.prepare('SELECT COUNT(*) AS n FROM purging_mailboxes').get()).toEqual({ n: 0 });
      expect((await storage.registerDevice(registration(2))).status).toBe('created');
      expect(await storage.fetchMessages(phone, 0, 1000, 1000)).toEqual([]);
      expect((await storage.stats()).queuedMessages).toBe(0);
    } finally {
      reader.close();
      await storage.close();
    }
  }, 30_000);
});

describe('schema 9 -> 10', () => {
  it('adds the purge records and keeps every row', async () => {
    const path = join(tempDir('schema-10'), 'relay.sqlite');
    const db = new Database(path);
    migrate(db, 9);
    db.prepare(
      `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
       VALUES (1, ?, 1, ?, 1, 'm', 1, 9000000000000, X'0102')`,
    ).run(Buffer.alloc(32, 1), Buffer.alloc(32, 2));
    db.prepare('UPDATE message_seq SET reserved = 1').run();
    db.close();
    const storage = new SqliteStorage({ path });
    try {
      expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(10);
      expect((await storage.fetchMessages(phone, 0, 10, 1000)).map((m) => m.clientId)).toEqual(['m']);
      expect((await storage.stats()).queuedMessages).toBe(1);
      expect(await storage.purgeRemovedMailboxes()).toEqual({ purged: 0, more: false });
    } finally {
      await storage.close();
    }
  });
});
