// PostgreSQL schema 7 (storage/postgres-schema.ts): the mailbox counters
// moved from the device row to mailbox_counters. A database written by
// schema 6, with envelopes queued, must come through with its counters
// intact, and they must then follow every insert, acknowledgement and
// device removal (the mailbox limits read them: a lost count would let a
// mailbox overfill, a stale one would refuse sends for ever).
//
// Needs PARLEY_TEST_POSTGRES_URL; skipped without it, except under CI=true.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { POSTGRES_SCHEMA_VERSION, migratePostgres } from '../src/storage/postgres-schema.ts';
import { PostgresStorage } from '../src/storage/postgres.ts';
import { testPostgresUrl } from './support/backends.ts';

const PG_URL = testPostgresUrl('the counters migration test');

describe.skipIf(!PG_URL)('PostgreSQL schema 7: mailbox counters in their own table', () => {
  const schema = `parley_cm_${randomBytes(6).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${schema}` });

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await pool.end();
  });

  const device = (n: number) => [Buffer.alloc(32, n), 1] as const;
  const counters = async () =>
    (
      await pool.query<{ account: Buffer; queued_messages: string; queued_bytes: string }>(
        'SELECT account, queued_messages::text, queued_bytes::text FROM mailbox_counters ORDER BY account',
      )
    ).rows.map((r) => [r.account[0], Number(r.queued_messages), Number(r.queued_bytes)]);

  it('carries schema 6 counters over, then keeps them through inserts, acknowledgements and removals', async () => {
    const client = await pool.connect();
    try {
      await migratePostgres(client, schema, 6);
      for (const n of [1, 2]) {
        const [account, id] = device(n);
        await client.query(
          `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
             signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
           VALUES ($1, $2, '\\x00', $3, '\\x00', 0, 1, '\\x00', 1, '\\x00')`,
          [account, id, Buffer.alloc(32, 100 + n)],
        );
      }
      // Three envelopes for device 1 (10, 20 and 30 bytes), none for device 2, counted by schema 6's trigger.
      for (const size of [10, 20, 30]) {
        await client.query(
          `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
           VALUES ($1, 1, $2, 1, $3, 0, $4, $5)`,
          [device(1)[0], device(2)[0], `m${size}`, Date.now() + 3_600_000, Buffer.alloc(size)],
        );
      }
      await migratePostgres(client, schema);
    } finally {
      client.release();
    }
    expect((await pool.query('SELECT version FROM parley_schema')).rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
    expect(await counters()).toEqual([
      [1, 3, 60],
      [2, 0, 0],
    ]);
    // The device row no longer carries them.
    const columns = await pool.query(
      "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'devices' AND column_name LIKE 'queued%'",
      [schema],
    );
    expect(columns.rows).toEqual([]);

    const storage = await PostgresStorage.open({ connectionString: PG_URL as string, schema, poolSize: 2 });
    try {
      const bob = { accountKey: new Uint8Array(device(1)[0]), deviceId: 1 };
      expect((await storage.stats()).queuedMessages).toBe(3);
      const held = await storage.fetchMessages(bob, 0, 10, Date.now());
      expect(held).toHaveLength(3);
      // An acknowledgement takes its envelopes off the counters.
      await storage.ackMessages(bob, [held[0]?.seq as number]);
      expect(await counters()).toEqual([
        [1, 2, 50],
        [2, 0, 0],
      ]);
      // A device registered from now on gets its counters row; a removed one loses it.
      await pool.query(
        `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
           signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
         VALUES ($1, 1, '\\x00', $2, '\\x00', 0, 1, '\\x00', 1, '\\x00')`,
        [device(3)[0], Buffer.alloc(32, 103)],
      );
      await pool.query('DELETE FROM messages WHERE recipient_account = $1', [device(1)[0]]);
      await pool.query('DELETE FROM devices WHERE account = $1', [device(1)[0]]);
      expect(await counters()).toEqual([
        [2, 0, 0],
        [3, 0, 0],
      ]);
      expect((await storage.stats()).queuedMessages).toBe(0);
    } finally {
      await storage.close();
    }
  });
});
