/**
 * The PostgreSQL schema, versioned in the table `parley_schema`.
 * spec/09-relay.md §7.3.
 *
 * The tables mirror the SQLite schema (sqlite-schema.ts) one for one, so the
 * two backends answer the contract suite identically. Integers are BIGINT:
 * timestamps are milliseconds since the epoch, and prekey and device ids are
 * unsigned 32-bit on the wire.
 *
 * Several relay processes may start at once against one database: the
 * migration runs under a transaction-scoped advisory lock, so exactly one of
 * them migrates and the others then see the new version. A database newer
 * than this code is refused rather than misread.
 */
import type { PoolClient } from 'pg';

/** Key of the advisory lock held while migrating ("parley" in ASCII). */
const MIGRATION_LOCK = 0x706172_6c6579;

const MIGRATIONS: readonly string[] = [
  // 0 -> 1
  `
  CREATE TABLE devices (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    certificate BYTEA NOT NULL,
    certificate_hash BYTEA NOT NULL,
    signing_key BYTEA NOT NULL,
    registered_at BIGINT NOT NULL,
    signed_prekey_id BIGINT NOT NULL,
    signed_prekey BYTEA NOT NULL,
    last_resort_kem_id BIGINT NOT NULL,
    last_resort_kem BYTEA NOT NULL,
    -- Highest one-time prekey id ever handed out: uploads at or below it are
    -- ignored, so a retried upload can never put a handed-out key back.
    one_time_handed_max BIGINT NOT NULL DEFAULT 0,
    kem_handed_max BIGINT NOT NULL DEFAULT 0,
    -- Maintained by the triggers on messages; the mailbox limits read them.
    queued_messages BIGINT NOT NULL DEFAULT 0,
    queued_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account, device_id)
  );

  CREATE TABLE revoked_certificates (
    certificate_hash BYTEA PRIMARY KEY,
    revoked_at BIGINT NOT NULL
  );

  CREATE TABLE one_time_prekeys (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    key BYTEA NOT NULL,
    PRIMARY KEY (account, device_id, id)
  );

  CREATE TABLE kem_prekeys (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    key BYTEA NOT NULL,
    PRIMARY KEY (account, device_id, id)
  );

  -- An identity column draws from a sequence: a seq is never reused, even
  -- after the newest row is deleted or a transaction rolls back.
  CREATE TABLE messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient_account BYTEA NOT NULL,
    recipient_device BIGINT NOT NULL,
    sender_account BYTEA NOT NULL,
    sender_device BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    server_ts BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    envelope BYTEA NOT NULL
  );
  CREATE INDEX messages_mailbox ON messages (recipient_account, recipient_device, seq);
  CREATE INDEX messages_expiry ON messages (expires_at);

  CREATE FUNCTION messages_queued() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      UPDATE devices SET queued_messages = queued_messages + 1, queued_bytes = queued_bytes + octet_length(NEW.envelope)
      WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
    ELSE
      UPDATE devices SET queued_messages = queued_messages - 1, queued_bytes = queued_bytes - octet_length(OLD.envelope)
      WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER messages_queued AFTER INSERT OR DELETE ON messages FOR EACH ROW EXECUTE FUNCTION messages_queued();

  -- Idempotency records: outlive the message (a retry after delivery stores nothing).
  CREATE TABLE sent_ids (
    sender_account BYTEA NOT NULL,
    sender_device BIGINT NOT NULL,
    recipient_account BYTEA NOT NULL,
    recipient_device BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sender_account, sender_device, recipient_account, recipient_device, client_id)
  );
  CREATE INDEX sent_ids_expiry ON sent_ids (expires_at);

  CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    owner_account BYTEA NOT NULL,
    owner_device BIGINT NOT NULL,
    size BIGINT NOT NULL,
    received BIGINT NOT NULL,
    complete BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX attachments_expiry ON attachments (expires_at);
  CREATE INDEX attachments_pending ON attachments (owner_account, owner_device) WHERE NOT complete;
  `,
  // 1 -> 2: the latest account-signed device list per account (spec/09-relay.md §4.1).
  `
  CREATE TABLE device_lists (
    account BYTEA PRIMARY KEY,
    revision BIGINT NOT NULL,
    list BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
  );
  `,
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema in the connection's search_path up to date, creating
 * `schema` first when given (under the lock: concurrent CREATE SCHEMA IF NOT
 * EXISTS calls race). `schema` must already be a validated identifier.
 */
export async function migratePostgres(client: PoolClient, schema?: string): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query('CREATE TABLE IF NOT EXISTS parley_schema (version INTEGER NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM parley_schema');
    let current = rows[0]?.version ?? 0;
    if (rows.length === 0) await client.query('INSERT INTO parley_schema (version) VALUES (0)');
    if (current > POSTGRES_SCHEMA_VERSION) {
      throw new Error(`relay database schema ${current} is newer than this relay (${POSTGRES_SCHEMA_VERSION}); refusing to open it`);
    }
    for (; current < POSTGRES_SCHEMA_VERSION; current++) {
      await client.query(MIGRATIONS[current] as string);
      await client.query('UPDATE parley_schema SET version = $1', [current + 1]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
