// Schema version 3 (quotas and replay records) on a database written by
// version 2: the migration fills the per-sender mailbox shares and the
// attachment usage from the rows already there, and the triggers keep them
// from then on. Both backends. spec/09-relay.md §7.1, §7.3.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migratePostgres } from '../src/storage/postgres-schema.ts';
import { PostgresStorage } from '../src/storage/postgres.ts';
import { migrate } from '../src/storage/sqlite-schema.ts';
import { SqliteStorage } from '../src/storage/sqlite.ts';
import type { AttachmentRecord, DeviceAddress, RelayStorage, StoreMessagesInput } from '../src/storage/types.ts';

const victim: DeviceAddress = { accountKey: new Uint8Array(32).fill(0x71), deviceId: 1 };
const sender: DeviceAddress = { accountKey: new Uint8Array(32).fill(0x72), deviceId: 1 };
const uploader: DeviceAddress = { accountKey: new Uint8Array(32).fill(0x73), deviceId: 1 };
const b = (a: Uint8Array) => Buffer.from(a);

/** Version-2 rows: the victim's device, three envelopes from `sender`, one 500-byte upload. */
const V1_ROWS: [string, unknown[]][] = [
  [
    `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
       signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem) VALUES ($1, 1, $2, $3, $4, 1, 1, $5, 1, $6)`,
    [b(victim.accountKey), Buffer.from([1]), Buffer.alloc(32, 9), Buffer.alloc(32, 8), Buffer.from([2]), Buffer.from([3])],
  ],
  ...[1, 2, 3].map((i): [string, unknown[]] => [
    `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
     VALUES ($1, 1, $2, 1, $3, 1, 9000000000000, $4)`,
    [b(victim.accountKey), b(sender.accountKey), `old${i}`, Buffer.alloc(10, i)],
  ]),
  [
    `INSERT INTO attachments (id, owner_account, owner_device, size, received, complete, created_at, expires_at)
     VALUES ('${'u'.repeat(22)}', $1, 1, 500, 0, $2, 1, 9000000000000)`,
    [b(uploader.accountKey), false],
  ],
];

const send = (id: string, maxQueuedMessagesPerSender: number): StoreMessagesInput => ({
  sender,
  envelopes: [{ recipient: victim, clientId: id, envelope: new Uint8Array(10) }],
  now: 2,
  expiresAt: 9_000_000_000_000,
  maxQueuedMessages: 100,
  maxQueuedBytes: 1 << 20,
  maxQueuedMessagesPerSender,
});

const upload = (size: number): AttachmentRecord => ({
  id: randomBytes(16).toString('base64url'),
  owner: uploader,
  size,
  received: 0,
  complete: false,
  createdAt: 2,
  expiresAt: 9_000_000_000_000,
});

/** What version 3 must know about the version-2 rows, through the storage interface. */
async function expectMigratedQuotas(s: RelayStorage): Promise<void> {
  // The three old envelopes count against the sender's share...
  expect(await s.storeMessages(send('new1', 3))).toMatchObject({ status: 'mailbox-full', scope: 'sender-share' });
  expect(await s.storeMessages(send('new1', 4))).toMatchObject({ status: 'stored', stored: 1 });
  // ... and acknowledging an old one frees its place (the trigger runs on migrated rows).
  const [oldest] = await s.fetchMessages(victim, 0, 1, 2);
  expect(oldest?.clientId).toBe('old1');
  expect(await s.ackMessages(victim, [oldest?.seq as number])).toBe(1);
  expect(await s.storeMessages(send('new2', 4))).toMatchObject({ status: 'stored', stored: 1 });
  // The old upload's 500 bytes count against its device's quota.
  const quota = { maxPending: 10, maxBytesPerDevice: 600, maxBytesPerAccount: 10_000 };
  expect(await s.createAttachment(upload(200), randomBytes(16), quota)).toMatchObject({ status: 'quota-exceeded', scope: 'device' });
  expect(await s.createAttachment(upload(100), randomBytes(16), quota)).toMatchObject({ status: 'created' });
  expect(await s.rememberRequest({ signer: sender, nonce: randomBytes(16), now: 2, expiresAt: 10, maxPerSigner: 1 })).toBe('fresh');
}

describe('schema version 2 -> 3', () => {
  it('SQLite: fills the shares and usage from existing rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-migrate-'));
    const path = join(dir, 'relay.sqlite');
    const db = new Database(path);
    migrate(db, 2);
    for (const [sql, params] of V1_ROWS) db.prepare(sql.replace(/\$\d+/g, '?')).run(...params.map((p) => (p === false ? 0 : p)));
    db.close();
    const storage = new SqliteStorage({ path });
    try {
      await expectMigratedQuotas(storage);
    } finally {
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const url = process.env.PARLEY_TEST_POSTGRES_URL;
  it.skipIf(!url)('PostgreSQL: fills the shares and usage from existing rows', async () => {
    const schema = `parley_m_${randomBytes(6).toString('hex')}`;
    const pool = new pg.Pool({ connectionString: url, max: 1, options: `-c search_path=${schema}` });
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client, schema, 2);
        for (const [sql, params] of V1_ROWS) await client.query(sql, params);
      } finally {
        client.release();
      }
      const storage = await PostgresStorage.open({ connectionString: url as string, schema });
      try {
        await expectMigratedQuotas(storage);
      } finally {
        await storage.close();
      }
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await pool.end();
    }
  });
});
