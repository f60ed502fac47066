// The sweep deletes in bounded writes (rules/housekeeping.ts SWEEP_CHUNK_ROWS, spec/09-relay.md §6).
// A write holds the relay's writer (on SQLite its event loop) while it runs; until session 6 one
// sweep write deleted every expired idempotency record and budget bucket with no bound (at 5,000
// envelopes/s a minute of idempotency records is 300,000 rows) and up to 5,000 rows of each other
// table. Now each write deletes at most SWEEP_CHUNK_ROWS rows over all tables, and sweepOnce runs
// writes until nothing due at its start is left.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SWEEP_CHUNK_ROWS } from '../src/storage/rules/housekeeping.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import { sweepOnce } from '../src/sweeper.ts';
import { testRelay } from './support.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const EXPIRED = { messages: 300, sentIds: 3000, seenRequests: 500, budgets: 400 };
const KEPT = 50;
const DUE = 100;
const LATER = 9_000_000_000_000;
const SWEEP_AT = 1000;

/** A relay database with EXPIRED rows of each swept table due at DUE and KEPT of each that are not. */
async function seededDatabase(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-sweep-'));
  dirs.push(dir);
  const path = join(dir, 'relay.sqlite');
  await new SqliteStorage({ path }).close();
  const db = new Database(path);
  const acct = (n: number) => Buffer.alloc(32, n);
  const message = db.prepare(
    `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
     VALUES (?, ?, ?, ?, 1, ?, 1, ?, X'00')`,
  );
  const sent = db.prepare(
    `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
     VALUES (?, 1, ?, 1, ?, ?)`,
  );
  const seen = db.prepare('INSERT INTO seen_requests (account, device_id, nonce, expires_at) VALUES (?, 1, ?, ?)');
  const budget = db.prepare('INSERT INTO budgets (key, tokens, updated, full_at) VALUES (?, 1, 1, ?)');
  db.transaction(() => {
    let seq = 0;
    for (const [count, at] of [
      [EXPIRED.messages, DUE],
      [KEPT, LATER],
    ] as const) {
      for (let i = 0; i < count; i++) message.run(++seq, acct(1), 1 + (i % 3), acct(2), `m${seq}`, at);
    }
    db.prepare('UPDATE message_seq SET reserved = ?').run(seq);
    for (const [count, at, tag] of [
      [EXPIRED.sentIds, DUE, 'old'],
      [KEPT, LATER, 'new'],
    ] as const) {
      for (let i = 0; i < count; i++) sent.run(acct(2), acct(1), `${tag}${i}`, at);
    }
    for (const [count, at, tag] of [
      [EXPIRED.seenRequests, DUE, 1],
      [KEPT, LATER, 2],
    ] as const) {
      for (let i = 0; i < count; i++) seen.run(acct(3), Buffer.from(`${tag}:${i}`), at);
    }
    for (const [count, at, tag] of [
      [EXPIRED.budgets, DUE, 'full'],
      [KEPT, LATER, 'filling'],
    ] as const) {
      for (let i = 0; i < count; i++) budget.run(`${tag}:${i}`, at);
    }
  })();
  db.close();
  return path;
}

const rowsLeft = (path: string) => {
  const db = new Database(path, { readonly: true });
  try {
    const n = (sql: string) => db.prepare(sql).pluck().get() as number;
    return {
      messages: n('SELECT COUNT(*) FROM messages'),
      sentIds: n('SELECT COUNT(*) FROM sent_ids'),
      seenRequests: n('SELECT COUNT(*) FROM seen_requests'),
      budgets: n('SELECT COUNT(*) FROM budgets'),
    };
  } finally {
    db.close();
  }
};

describe('the sweep deletes in bounded writes', () => {
  it(`one sweep write deletes at most ${SWEEP_CHUNK_ROWS} rows over all tables and says when more is due`, async () => {
    const path = await seededDatabase();
    const storage = new SqliteStorage({ path });
    try {
      const writes: number[] = [];
      let more = true;
      const total = { messages: 0, sentIds: 0, seenRequests: 0, budgets: 0 };
      // Bounded: the rows due need (sum / bound) writes, plus one that finds the rest.
      const enough = Math.ceil(Object.values(EXPIRED).reduce((a, b) => a + b, 0) / SWEEP_CHUNK_ROWS) + 2;
      for (let i = 0; i < enough && more; i++) {
        const r = await storage.sweep(SWEEP_AT);
        writes.push(r.messages + r.sentIds + r.seenRequests + r.budgets + r.attachments.length);
        total.messages += r.messages;
        total.sentIds += r.sentIds;
        total.seenRequests += r.seenRequests;
        total.budgets += r.budgets;
        more = r.more;
      }
      for (const n of writes) expect(n).toBeLessThanOrEqual(SWEEP_CHUNK_ROWS);
      expect(writes[0]).toBe(SWEEP_CHUNK_ROWS);
      expect(more).toBe(false);
      expect(total).toEqual(EXPIRED);
    } finally {
      await storage.close();
    }
    expect(rowsLeft(path)).toEqual({ messages: KEPT, sentIds: KEPT, seenRequests: KEPT, budgets: KEPT });
  }, 30_000);

  it('sweepOnce runs bounded writes until nothing due at its start is left, and counts them all', async () => {
    const path = await seededDatabase();
    const relay = await testRelay({}, { storage: new SqliteStorage({ path }), clock: true });
    relay.clock.now = SWEEP_AT;
    const writes: number[] = [];
    const storage = relay.app.relay.storage;
    const sweep = storage.sweep.bind(storage);
    storage.sweep = async (now: number) => {
      const r = await sweep(now);
      writes.push(r.messages + r.sentIds + r.seenRequests + r.budgets + r.attachments.length);
      return r;
    };
    try {
      const swept = await sweepOnce(relay.app);
      expect(swept).toMatchObject({ ...EXPIRED, attachments: [] });
      expect(writes.length).toBeGreaterThan(1);
      for (const n of writes) expect(n).toBeLessThanOrEqual(SWEEP_CHUNK_ROWS);
      const metrics = await relay.app.relay.metrics.registry.getSingleMetricAsString('parley_relay_swept_total');
      expect(metrics).toContain(`kind="idempotency_records"} ${EXPIRED.sentIds}`);
    } finally {
      await relay.close();
    }
    expect(rowsLeft(path)).toEqual({ messages: KEPT, sentIds: KEPT, seenRequests: KEPT, budgets: KEPT });
  }, 30_000);
});
