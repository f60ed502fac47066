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
  // 2 -> 3: quotas and replay records shared by every relay process (spec/09-relay.md §3.3, §8).
  `
  -- Each sender account's share of each mailbox, kept by the trigger like the queue counters.
  CREATE TABLE mailbox_shares (
    recipient_account BYTEA NOT NULL,
    recipient_device BIGINT NOT NULL,
    sender_account BYTEA NOT NULL,
    messages BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (recipient_account, recipient_device, sender_account)
  );
  INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
    SELECT recipient_account, recipient_device, sender_account, count(*), sum(octet_length(envelope))
    FROM messages GROUP BY recipient_account, recipient_device, sender_account;
  -- Callers lock the recipient's device row first, so share rows change one send at a time.
  CREATE OR REPLACE FUNCTION messages_queued() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      UPDATE devices SET queued_messages = queued_messages + 1, queued_bytes = queued_bytes + octet_length(NEW.envelope)
      WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
      INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
      VALUES (NEW.recipient_account, NEW.recipient_device, NEW.sender_account, 1, octet_length(NEW.envelope))
      ON CONFLICT (recipient_account, recipient_device, sender_account)
      DO UPDATE SET messages = mailbox_shares.messages + 1, bytes = mailbox_shares.bytes + excluded.bytes;
    ELSE
      UPDATE devices SET queued_messages = queued_messages - 1, queued_bytes = queued_bytes - octet_length(OLD.envelope)
      WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
      UPDATE mailbox_shares SET messages = messages - 1, bytes = bytes - octet_length(OLD.envelope)
      WHERE recipient_account = OLD.recipient_account AND recipient_device = OLD.recipient_device
        AND sender_account = OLD.sender_account;
      DELETE FROM mailbox_shares WHERE recipient_account = OLD.recipient_account
        AND recipient_device = OLD.recipient_device AND sender_account = OLD.sender_account AND messages <= 0;
    END IF;
    RETURN NULL;
  END $$;
  -- A full-looking mailbox drops its own expired envelopes before refusing a send.
  CREATE INDEX messages_mailbox_expiry ON messages (recipient_account, recipient_device, expires_at);

  -- Stored bytes (declared sizes) per uploading device, kept by a trigger.
  CREATE TABLE attachment_usage (
    owner_account BYTEA NOT NULL,
    owner_device BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    PRIMARY KEY (owner_account, owner_device)
  );
  INSERT INTO attachment_usage (owner_account, owner_device, bytes)
    SELECT owner_account, owner_device, sum(size) FROM attachments GROUP BY owner_account, owner_device;
  CREATE FUNCTION attachments_usage() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO attachment_usage (owner_account, owner_device, bytes) VALUES (NEW.owner_account, NEW.owner_device, NEW.size)
      ON CONFLICT (owner_account, owner_device) DO UPDATE SET bytes = attachment_usage.bytes + excluded.bytes;
    ELSE
      UPDATE attachment_usage SET bytes = bytes - OLD.size WHERE owner_account = OLD.owner_account AND owner_device = OLD.owner_device;
      DELETE FROM attachment_usage WHERE owner_account = OLD.owner_account AND owner_device = OLD.owner_device AND bytes <= 0;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER attachments_usage AFTER INSERT OR DELETE ON attachments FOR EACH ROW EXECUTE FUNCTION attachments_usage();
  -- The creating request (its signed nonce): the same request again returns the same upload.
  ALTER TABLE attachments ADD COLUMN request_key BYTEA;
  CREATE UNIQUE INDEX attachments_request ON attachments (owner_account, owner_device, request_key) WHERE request_key IS NOT NULL;
  -- An account over its quota drops its own expired attachments first.
  CREATE INDEX attachments_owner_expiry ON attachments (owner_account, expires_at);

  -- Replay records: one per verified signed request, per signer and nonce.
  CREATE TABLE seen_requests (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    nonce BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (account, device_id, nonce)
  );
  CREATE INDEX seen_requests_expiry ON seen_requests (expires_at);
  -- How many replay records each signer holds, counted per slot of expiry time.
  CREATE TABLE seen_request_slots (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    slot BIGINT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (account, device_id, slot)
  );
  CREATE INDEX seen_request_slots_slot ON seen_request_slots (slot);

  -- Token buckets of the one-time prekey budget (limits/prekey-budget.ts).
  CREATE TABLE budgets (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated BIGINT NOT NULL,
    full_at BIGINT NOT NULL
  );
  CREATE INDEX budgets_full ON budgets (full_at);
  `,
  // 3 -> 4: group fan-out stored once (spec/09-relay.md §4.3.1, §7.3).
  `
  -- One envelope sent to many devices, stored once; refs counts the mailbox rows that point to it.
  CREATE TABLE payloads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    envelope BYTEA NOT NULL,
    refs BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
  );
  CREATE INDEX payloads_expiry ON payloads (expires_at);
  -- A mailbox row of a fan-out has an empty envelope, its payload's id, and the payload's size,
  -- which counts against the mailbox like an envelope of its own.
  ALTER TABLE messages ADD COLUMN payload_id BIGINT;
  ALTER TABLE messages ADD COLUMN payload_bytes BIGINT NOT NULL DEFAULT 0;
  CREATE OR REPLACE FUNCTION messages_queued() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      UPDATE devices SET queued_messages = queued_messages + 1,
        queued_bytes = queued_bytes + octet_length(NEW.envelope) + NEW.payload_bytes
      WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
      INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
      VALUES (NEW.recipient_account, NEW.recipient_device, NEW.sender_account, 1, octet_length(NEW.envelope) + NEW.payload_bytes)
      ON CONFLICT (recipient_account, recipient_device, sender_account)
      DO UPDATE SET messages = mailbox_shares.messages + 1, bytes = mailbox_shares.bytes + excluded.bytes;
    ELSE
      UPDATE devices SET queued_messages = queued_messages - 1,
        queued_bytes = queued_bytes - octet_length(OLD.envelope) - OLD.payload_bytes
      WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
      UPDATE mailbox_shares SET messages = messages - 1, bytes = bytes - octet_length(OLD.envelope) - OLD.payload_bytes
      WHERE recipient_account = OLD.recipient_account AND recipient_device = OLD.recipient_device
        AND sender_account = OLD.sender_account;
      DELETE FROM mailbox_shares WHERE recipient_account = OLD.recipient_account
        AND recipient_device = OLD.recipient_device AND sender_account = OLD.sender_account AND messages <= 0;
      -- Every way a mailbox row goes releases its payload; the last one deletes it.
      IF OLD.payload_id IS NOT NULL THEN
        UPDATE payloads SET refs = refs - 1 WHERE id = OLD.payload_id;
        DELETE FROM payloads WHERE id = OLD.payload_id AND refs <= 0;
      END IF;
    END IF;
    RETURN NULL;
  END $$;
  `,
  // 4 -> 5: relay franking and abuse reports (spec/14-franking.md §4, §7).
  `
  -- The delivery record (envelope id, acceptance time, frank key id, frank, franking tag) of a franked envelope.
  ALTER TABLE messages ADD COLUMN delivery BYTEA;
  -- FK[key_id]: 32 random bytes per FRANK_KEY_PERIOD, deleted at destroy_at (FRANK_KEY_RETENTION after the period).
  CREATE TABLE frank_keys (
    key_id BIGINT PRIMARY KEY,
    key BYTEA NOT NULL,
    destroy_at BIGINT NOT NULL
  );
  CREATE INDEX frank_keys_destroy ON frank_keys (destroy_at);
  -- Verified reports queued for moderators; one per (reporter account, reported envelope).
  CREATE TABLE reports (
    id BIGSERIAL PRIMARY KEY,
    reporter_account BYTEA NOT NULL,
    reporter_device INTEGER NOT NULL,
    envelope_id BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    report BYTEA NOT NULL,
    UNIQUE (reporter_account, envelope_id)
  );
  CREATE INDEX reports_reporter ON reports (reporter_account, received_at);
  `,
  // 5 -> 6: the v2 form of the current signed prekey (spec/09-relay.md §4.2.1), NULL for v1-only devices.
  `
  ALTER TABLE devices ADD COLUMN signed_prekey_v2 BYTEA;
  `,
  // 6 -> 7: the mailbox counters move out of the device row into a narrow table of their own
  // (spec/09-relay.md §7.3). Every stored and every acknowledged envelope updates them, and
  // PostgreSQL writes a whole new version of a row it updates: on the device row, with its
  // certificate and its ML-KEM prekey inline (about 1.7 KB), that was some 3.4 KB of heap and WAL
  // per envelope delivered; here it is a row of about 60 bytes. An acknowledgement also no longer
  // waits for the device row, which every send to the device locks from its first flight.
  `
  CREATE TABLE mailbox_counters (
    account BYTEA NOT NULL,
    device_id BIGINT NOT NULL,
    queued_messages BIGINT NOT NULL DEFAULT 0,
    queued_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (account, device_id)
  );
  INSERT INTO mailbox_counters (account, device_id, queued_messages, queued_bytes)
    SELECT account, device_id, queued_messages, queued_bytes FROM devices;
  ALTER TABLE devices DROP COLUMN queued_messages, DROP COLUMN queued_bytes;
  -- A device's counters live exactly as long as its row.
  CREATE FUNCTION devices_counters() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      INSERT INTO mailbox_counters (account, device_id) VALUES (NEW.account, NEW.device_id) ON CONFLICT DO NOTHING;
    ELSE
      DELETE FROM mailbox_counters WHERE account = OLD.account AND device_id = OLD.device_id;
    END IF;
    RETURN NULL;
  END $$;
  CREATE TRIGGER devices_counters AFTER INSERT OR DELETE ON devices FOR EACH ROW EXECUTE FUNCTION devices_counters();
  CREATE OR REPLACE FUNCTION messages_queued() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP = 'INSERT' THEN
      UPDATE mailbox_counters SET queued_messages = queued_messages + 1,
        queued_bytes = queued_bytes + octet_length(NEW.envelope) + NEW.payload_bytes
      WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
      INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
      VALUES (NEW.recipient_account, NEW.recipient_device, NEW.sender_account, 1, octet_length(NEW.envelope) + NEW.payload_bytes)
      ON CONFLICT (recipient_account, recipient_device, sender_account)
      DO UPDATE SET messages = mailbox_shares.messages + 1, bytes = mailbox_shares.bytes + excluded.bytes;
    ELSE
      UPDATE mailbox_counters SET queued_messages = queued_messages - 1,
        queued_bytes = queued_bytes - octet_length(OLD.envelope) - OLD.payload_bytes
      WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
      UPDATE mailbox_shares SET messages = messages - 1, bytes = bytes - octet_length(OLD.envelope) - OLD.payload_bytes
      WHERE recipient_account = OLD.recipient_account AND recipient_device = OLD.recipient_device
        AND sender_account = OLD.sender_account;
      DELETE FROM mailbox_shares WHERE recipient_account = OLD.recipient_account
        AND recipient_device = OLD.recipient_device AND sender_account = OLD.sender_account AND messages <= 0;
      -- Every way a mailbox row goes releases its payload; the last one deletes it.
      IF OLD.payload_id IS NOT NULL THEN
        UPDATE payloads SET refs = refs - 1 WHERE id = OLD.payload_id;
        DELETE FROM payloads WHERE id = OLD.payload_id AND refs <= 0;
      END IF;
    END IF;
    RETURN NULL;
  END $$;
  `,
  // 7 -> 8: the mailboxes of removed or replaced devices still being purged, in bounded writes
  // (rules/devices.ts DEVICE_PURGE_CHUNK_ROWS, spec/09-relay.md §4.1.2). A device id is not
  // registered again while its old mailbox is recorded here.
  `
  CREATE TABLE purging_mailboxes (
    account BYTEA NOT NULL,
    device_id INTEGER NOT NULL,
    PRIMARY KEY (account, device_id)
  );
  `,
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the schema in the connection's search_path up to date, creating
 * `schema` first when given (under the lock: concurrent CREATE SCHEMA IF NOT
 * EXISTS calls race). `schema` must already be a validated identifier.
 * `target` (default: this relay's version) lets tests build older databases.
 */
export async function migratePostgres(client: PoolClient, schema?: string, target = POSTGRES_SCHEMA_VERSION): Promise<void> {
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
    for (; current < target; current++) {
      await client.query(MIGRATIONS[current] as string);
      await client.query('UPDATE parley_schema SET version = $1', [current + 1]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
