/**
 * The SQLite schema, versioned with `PRAGMA user_version`. spec/09-relay.md §7.
 *
 * Each migration moves the database from version i to i+1 inside one
 * transaction; a database newer than this code is refused rather than
 * misread.
 */
import type { Database } from 'better-sqlite3';

const MIGRATIONS: readonly string[] = [
  // 0 -> 1
  `
  CREATE TABLE devices (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    certificate BLOB NOT NULL,
    certificate_hash BLOB NOT NULL,
    signing_key BLOB NOT NULL,
    registered_at INTEGER NOT NULL,
    signed_prekey_id INTEGER NOT NULL,
    signed_prekey BLOB NOT NULL,
    last_resort_kem_id INTEGER NOT NULL,
    last_resort_kem BLOB NOT NULL,
    -- Highest one-time prekey id ever handed out: uploads at or below it are
    -- ignored, so a retried upload can never put a handed-out key back.
    one_time_handed_max INTEGER NOT NULL DEFAULT 0,
    kem_handed_max INTEGER NOT NULL DEFAULT 0,
    -- Maintained by triggers on messages; the mailbox limits read them.
    queued_messages INTEGER NOT NULL DEFAULT 0,
    queued_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, device_id)
  ) WITHOUT ROWID;

  CREATE TABLE revoked_certificates (
    certificate_hash BLOB PRIMARY KEY,
    revoked_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE one_time_prekeys (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    id INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (account, device_id, id)
  ) WITHOUT ROWID;

  CREATE TABLE kem_prekeys (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    id INTEGER NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (account, device_id, id)
  ) WITHOUT ROWID;

  -- AUTOINCREMENT: a seq is never reused, even after the newest row is deleted.
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient_account BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    sender_account BLOB NOT NULL,
    sender_device INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    server_ts INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    envelope BLOB NOT NULL
  );
  CREATE INDEX messages_mailbox ON messages (recipient_account, recipient_device, seq);
  CREATE INDEX messages_expiry ON messages (expires_at);

  CREATE TRIGGER messages_queued_insert AFTER INSERT ON messages BEGIN
    UPDATE devices SET queued_messages = queued_messages + 1, queued_bytes = queued_bytes + length(NEW.envelope)
    WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
  END;
  CREATE TRIGGER messages_queued_delete AFTER DELETE ON messages BEGIN
    UPDATE devices SET queued_messages = queued_messages - 1, queued_bytes = queued_bytes - length(OLD.envelope)
    WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
  END;

  -- Idempotency records: outlive the message (a retry after delivery stores nothing).
  CREATE TABLE sent_ids (
    sender_account BLOB NOT NULL,
    sender_device INTEGER NOT NULL,
    recipient_account BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sender_account, sender_device, recipient_account, recipient_device, client_id)
  ) WITHOUT ROWID;
  CREATE INDEX sent_ids_expiry ON sent_ids (expires_at);

  CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    owner_account BLOB NOT NULL,
    owner_device INTEGER NOT NULL,
    size INTEGER NOT NULL,
    received INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX attachments_expiry ON attachments (expires_at);
  CREATE INDEX attachments_pending ON attachments (owner_account, owner_device) WHERE complete = 0;
  `,
  // 1 -> 2: the latest account-signed device list per account (spec/09-relay.md §4.1).
  `
  CREATE TABLE device_lists (
    account BLOB PRIMARY KEY,
    revision INTEGER NOT NULL,
    list BLOB NOT NULL,
    updated_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`relay database schema ${current} is newer than this relay (${SCHEMA_VERSION}); refusing to open it`);
  }
  for (let v = current; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
