// Schema version 9 (storage/sqlite-schema.ts): idempotency records keyed sender, client id,
// recipient; message seqs from memory with a reservation on disk instead of AUTOINCREMENT; no
// global expiry index, the sweep walks the mailboxes that may hold expired rows
// (storage/sqlite-expiry.ts). A version-8 database keeps every row, counter and seq, and the
// sweep stays bounded per run and complete over runs. spec/09-relay.md §7.1.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, migrate } from '../src/storage/sqlite-schema.ts';
import { SWEEP_CHUNK_ROWS } from '../src/storage/rules/housekeeping.ts';
import { SWEEP_MAILBOXES, SqliteStorage } from '../src/storage/sqlite.ts';
import type { DeviceAddress } from '../src/storage/types.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDb = () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-schema9-'));
  dirs.push(dir);
  return join(dir, 'relay.sqlite');
};

const acct = (n: number) => Buffer.alloc(32, n);
const FAR = 9_000_000_000_000;

function device(db: Database.Database, account: Buffer, deviceId: number): void {
  db.prepare(
    `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
       signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem) VALUES (?, ?, ?, ?, ?, 1, 1, ?, 1, ?)`,
  ).run(account, deviceId, Buffer.from([1]), Buffer.alloc(32, 9), Buffer.alloc(32, 8), Buffer.from([2]), Buffer.from([3]));
}

const ROWS_SQL = `SELECT seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
  envelope, payload_id, payload_bytes, delivery FROM messages ORDER BY seq`;
const SENT_SQL = `SELECT sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at FROM sent_ids
  ORDER BY sender_account, sender_device, recipient_account, recipient_device, client_id`;

describe('schema version 8 -> 9', () => {
  it('keeps every row, idempotency record, counter and payload reference; no seq comes back', async () => {
    const path = tempDb();
    const db = new Database(path);
    migrate(db, 8);
    expect(db.pragma('user_version', { simple: true })).toBe(8);
    const [alice, bob, carol] = [acct(1), acct(2), acct(3)];
    for (const a of [alice, bob, carol]) for (const d of [1, 2]) device(db, a, d);
    const insert = db.prepare(
      `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
         envelope, payload_id, payload_bytes, delivery) VALUES (?, ?, ?, 1, ?, 1, ?, ?, ?, ?, ?)`,
    );
    const sent = db.prepare(
      `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
       VALUES (?, 1, ?, ?, ?, ?)`,
    );
    for (let i = 0; i < 30; i++) {
      const to = i % 3 === 0 ? bob : carol;
      insert.run(
        to,
        1 + (i % 2),
        alice,
        `m${i}`,
        i % 5 === 0 ? 500 : FAR,
        Buffer.alloc(10 + i, i),
        null,
        0,
        i % 4 === 0 ? Buffer.from([i]) : null,
      );
      sent.run(alice, to, 1 + (i % 2), `m${i}`, FAR);
    }
    // A fan-out: one payload, two rows pointing to it.
    const payload = Number(
      db.prepare('INSERT INTO payloads (envelope, refs, expires_at) VALUES (?, 2, ?)').run(Buffer.alloc(77, 7), FAR).lastInsertRowid,
    );
    for (const d of [1, 2]) insert.run(bob, d, carol, 'fan', FAR, Buffer.alloc(0), payload, 77, null);
    // The newest rows acknowledged: AUTOINCREMENT remembers seqs no row holds any more.
    const newest = (db.prepare('SELECT MAX(seq) AS m FROM messages').get() as { m: number }).m;
    for (let i = 0; i < 3; i++) insert.run(carol, 1, alice, `gone${i}`, FAR, Buffer.alloc(5), null, 0, null);
    db.prepare('DELETE FROM messages WHERE seq > ?').run(newest);
    const highest = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").get() as { seq: number }).seq;
    expect(highest).toBe(newest + 3);
    const rows = db.prepare(ROWS_SQL).all();
    const sentRows = db.prepare(SENT_SQL).all();
    db.close();

    const storage = new SqliteStorage({ path });
    const reader = new Database(path, { readonly: true });
    try {
      expect(reader.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(9);
      expect(reader.prepare(ROWS_SQL).all()).toEqual(rows);
      expect(reader.prepare(SENT_SQL).all()).toEqual(sentRows);
      const names = reader
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE tbl_name = 'messages'")
        .all()
        .map((r) => r.name);
      expect(names.sort()).toEqual(['messages', 'messages_mailbox', 'messages_mailbox_expiry', 'messages_payload_release']);
      expect(reader.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages'").pluck().get()).not.toMatch(/AUTOINCREMENT/i);
      // The counters, rebuilt from the copied rows.
      const bobMailbox = storage.counters.read(bob, 1, alice);
      const expected = reader
        .prepare<[Buffer, number], { n: number; b: number }>(
          'SELECT COUNT(*) AS n, SUM(length(envelope) + payload_bytes) AS b FROM messages WHERE recipient_account = ? AND recipient_device = ?',
        )
        .get(bob, 1) as { n: number; b: number };
      expect({ messages: bobMailbox.mailbox.messages, bytes: bobMailbox.mailbox.bytes }).toEqual({
        messages: expected.n,
        bytes: expected.b,
      });

      const sender: DeviceAddress = { accountKey: alice, deviceId: 1 };
      const send = (clientId: string) =>
        storage.storeMessages({
          sender,
          envelopes: [1, 2].map((deviceId) => ({ recipient: { accountKey: carol, deviceId }, clientId, envelope: new Uint8Array(4) })),
          now: 1000,
          expiresAt: FAR,
          maxQueuedMessages: 1000,
          maxQueuedBytes: 1 << 20,
        });
      // A retry of a send made before the migration: both records were copied (m1 went to carol/2, m2 to carol/1).
      const again = await storage.storeMessages({
        sender,
        envelopes: [
          { recipient: { accountKey: carol, deviceId: 2 }, clientId: 'm1', envelope: new Uint8Array(4) },
          { recipient: { accountKey: carol, deviceId: 1 }, clientId: 'm1', envelope: new Uint8Array(4) },
        ],
        now: 1000,
        expiresAt: FAR,
        maxQueuedMessages: 1000,
        maxQueuedBytes: 1 << 20,
      });
      expect(again).toMatchObject({ status: 'stored', stored: 1, duplicates: 1 });
      // A new row's seq is above every seq AUTOINCREMENT ever handed out, acknowledged ones included.
      expect((await send('after')).status).toBe('stored');
      const fresh = reader.prepare<[], number>("SELECT seq FROM messages WHERE client_id = 'after'").pluck().all();
      expect(Math.min(...fresh)).toBeGreaterThan(highest);
      // The payload's reference count still follows its rows: the last acknowledgement deletes it.
      const fan = reader.prepare<[Buffer], number>("SELECT seq FROM messages WHERE client_id = 'fan' AND recipient_account = ?").pluck();
      const [fan1] = fan.all(bob);
      await storage.ackMessages({ accountKey: bob, deviceId: 1 }, [fan1 as number]);
      expect(reader.prepare('SELECT refs FROM payloads WHERE id = ?').pluck().get(payload)).toBe(1);
      await storage.ackMessages({ accountKey: bob, deviceId: 2 }, fan.all(bob));
      expect(reader.prepare('SELECT COUNT(*) FROM payloads WHERE id = ?').pluck().get(payload)).toBe(0);
      // The expired rows are found by the sweep without the global index.
      const swept = await storage.sweep(1000);
      expect(swept.messages).toBe(rows.filter((r) => (r as { expires_at: number }).expires_at <= 1000).length);
      expect(reader.prepare('SELECT COUNT(*) FROM messages WHERE expires_at <= 1000').pluck().get()).toBe(0);
    } finally {
      reader.close();
      await storage.close();
    }
  });
});

describe('the sweep without a global expiry index', () => {
  it(`deletes at most ${SWEEP_CHUNK_ROWS} rows per run over more than ${SWEEP_MAILBOXES} due mailboxes, and finishes over runs`, async () => {
    const path = tempDb();
    const setup = new SqliteStorage({ path });
    await setup.close();
    const db = new Database(path);
    const insert = db.prepare(
      `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
       VALUES (?, ?, ?, ?, 1, 'x', 1, ?, X'00')`,
    );
    let seq = 0;
    const many = SWEEP_MAILBOXES + 500;
    const LONG = 1200;
    db.transaction(() => {
      // One expired row in each of many mailboxes, and one unexpired row in each (they stay).
      for (let m = 0; m < many; m++) {
        insert.run(++seq, acct(1), m + 10, acct(2), 100);
        insert.run(++seq, acct(1), m + 10, acct(2), FAR);
      }
      // One mailbox with more expired rows than a sweep deletes.
      for (let i = 0; i < LONG; i++) insert.run(++seq, acct(3), 1, acct(2), 200 + (i % 50));
      db.prepare('UPDATE message_seq SET reserved = ?').run(seq);
    })();
    db.close();

    const storage = new SqliteStorage({ path });
    try {
      const counts: number[] = [];
      let more = true;
      for (let run = 0; run < 40 && more; run++) {
        const swept = await storage.sweep(1000);
        counts.push(swept.messages);
        more = swept.more;
      }
      // Each run stays within the row bound and says whether more is due; together they delete every
      // expired row and nothing else, and the last one says nothing is left.
      for (const n of counts) expect(n).toBeLessThanOrEqual(SWEEP_CHUNK_ROWS);
      expect(counts[0]).toBe(SWEEP_CHUNK_ROWS);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(many + LONG);
      expect(more).toBe(false);
      const reader = new Database(path, { readonly: true });
      try {
        expect(reader.prepare('SELECT COUNT(*) FROM messages WHERE expires_at <= 1000').pluck().get()).toBe(0);
        expect(reader.prepare('SELECT COUNT(*) FROM messages').pluck().get()).toBe(many);
      } finally {
        reader.close();
      }
      expect(storage.counters.totals().messages).toBe(many);
      // Emptied mailboxes leave the queue; the ones still holding rows stay, bounded by their count.
      expect(storage.expiry.size).toBe(many);
    } finally {
      await storage.close();
    }
  }, 30_000);
});
