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
  // 2 -> 3: quotas and replay records that hold across restarts (spec/09-relay.md §3.3, §8).
  `
  -- Each sender account's share of each mailbox, kept by triggers like the queue counters.
  CREATE TABLE mailbox_shares (
    recipient_account BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    sender_account BLOB NOT NULL,
    messages INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (recipient_account, recipient_device, sender_account)
  ) WITHOUT ROWID;
  INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
    SELECT recipient_account, recipient_device, sender_account, COUNT(*), SUM(length(envelope))
    FROM messages GROUP BY recipient_account, recipient_device, sender_account;
  CREATE TRIGGER messages_share_insert AFTER INSERT ON messages BEGIN
    INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
    VALUES (NEW.recipient_account, NEW.recipient_device, NEW.sender_account, 1, length(NEW.envelope))
    ON CONFLICT (recipient_account, recipient_device, sender_account)
    DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER messages_share_delete AFTER DELETE ON messages BEGIN
    UPDATE mailbox_shares SET messages = messages - 1, bytes = bytes - length(OLD.envelope)
    WHERE recipient_account = OLD.recipient_account AND recipient_device = OLD.recipient_device
      AND sender_account = OLD.sender_account;
    DELETE FROM mailbox_shares WHERE recipient_account = OLD.recipient_account
      AND recipient_device = OLD.recipient_device AND sender_account = OLD.sender_account AND messages <= 0;
  END;
  -- A full-looking mailbox drops its own expired envelopes before refusing a send.
  CREATE INDEX messages_mailbox_expiry ON messages (recipient_account, recipient_device, expires_at);

  -- Stored bytes (declared sizes) per uploading device, kept by triggers.
  CREATE TABLE attachment_usage (
    owner_account BLOB NOT NULL,
    owner_device INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (owner_account, owner_device)
  ) WITHOUT ROWID;
  INSERT INTO attachment_usage (owner_account, owner_device, bytes)
    SELECT owner_account, owner_device, SUM(size) FROM attachments GROUP BY owner_account, owner_device;
  CREATE TRIGGER attachments_usage_insert AFTER INSERT ON attachments BEGIN
    INSERT INTO attachment_usage (owner_account, owner_device, bytes) VALUES (NEW.owner_account, NEW.owner_device, NEW.size)
    ON CONFLICT (owner_account, owner_device) DO UPDATE SET bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER attachments_usage_delete AFTER DELETE ON attachments BEGIN
    UPDATE attachment_usage SET bytes = bytes - OLD.size WHERE owner_account = OLD.owner_account AND owner_device = OLD.owner_device;
    DELETE FROM attachment_usage WHERE owner_account = OLD.owner_account AND owner_device = OLD.owner_device AND bytes <= 0;
  END;
  -- The creating request (its signed nonce): the same request again returns the same upload.
  ALTER TABLE attachments ADD COLUMN request_key BLOB;
  CREATE UNIQUE INDEX attachments_request ON attachments (owner_account, owner_device, request_key) WHERE request_key IS NOT NULL;
  -- An account over its quota drops its own expired attachments first.
  CREATE INDEX attachments_owner_expiry ON attachments (owner_account, expires_at);

  -- Replay records: one per verified signed request, per signer and nonce.
  CREATE TABLE seen_requests (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (account, device_id, nonce)
  ) WITHOUT ROWID;
  CREATE INDEX seen_requests_expiry ON seen_requests (expires_at);
  -- How many replay records each signer holds, counted per slot of expiry time.
  CREATE TABLE seen_request_slots (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (account, device_id, slot)
  ) WITHOUT ROWID;
  CREATE INDEX seen_request_slots_slot ON seen_request_slots (slot);

  -- Token buckets of the one-time prekey budget (limits/prekey-budget.ts).
  CREATE TABLE budgets (
    key TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated INTEGER NOT NULL,
    full_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX budgets_full ON budgets (full_at);
  `,
  // 3 -> 4: group fan-out stored once (spec/09-relay.md §4.3.1, §7.1).
  `
  -- One envelope sent to many devices, stored once; \`refs\` counts the mailbox rows that point to it.
  CREATE TABLE payloads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    envelope BLOB NOT NULL,
    refs INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX payloads_expiry ON payloads (expires_at);
  -- A mailbox row of a fan-out has an empty envelope, its payload's id, and the payload's size,
  -- which counts against the mailbox like an envelope of its own.
  ALTER TABLE messages ADD COLUMN payload_id INTEGER;
  ALTER TABLE messages ADD COLUMN payload_bytes INTEGER NOT NULL DEFAULT 0;
  DROP TRIGGER messages_queued_insert;
  DROP TRIGGER messages_queued_delete;
  DROP TRIGGER messages_share_insert;
  DROP TRIGGER messages_share_delete;
  CREATE TRIGGER messages_queued_insert AFTER INSERT ON messages BEGIN
    UPDATE devices SET queued_messages = queued_messages + 1,
      queued_bytes = queued_bytes + length(NEW.envelope) + NEW.payload_bytes
    WHERE account = NEW.recipient_account AND device_id = NEW.recipient_device;
  END;
  CREATE TRIGGER messages_queued_delete AFTER DELETE ON messages BEGIN
    UPDATE devices SET queued_messages = queued_messages - 1,
      queued_bytes = queued_bytes - length(OLD.envelope) - OLD.payload_bytes
    WHERE account = OLD.recipient_account AND device_id = OLD.recipient_device;
  END;
  CREATE TRIGGER messages_share_insert AFTER INSERT ON messages BEGIN
    INSERT INTO mailbox_shares (recipient_account, recipient_device, sender_account, messages, bytes)
    VALUES (NEW.recipient_account, NEW.recipient_device, NEW.sender_account, 1, length(NEW.envelope) + NEW.payload_bytes)
    ON CONFLICT (recipient_account, recipient_device, sender_account)
    DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;
  END;
  CREATE TRIGGER messages_share_delete AFTER DELETE ON messages BEGIN
    UPDATE mailbox_shares SET messages = messages - 1, bytes = bytes - length(OLD.envelope) - OLD.payload_bytes
    WHERE recipient_account = OLD.recipient_account AND recipient_device = OLD.recipient_device
      AND sender_account = OLD.sender_account;
    DELETE FROM mailbox_shares WHERE recipient_account = OLD.recipient_account
      AND recipient_device = OLD.recipient_device AND sender_account = OLD.sender_account AND messages <= 0;
  END;
  -- Every way a mailbox row goes (acknowledged, expired, purged, its device removed) releases its payload;
  -- the last one deletes it.
  CREATE TRIGGER messages_payload_release AFTER DELETE ON messages WHEN OLD.payload_id IS NOT NULL BEGIN
    UPDATE payloads SET refs = refs - 1 WHERE id = OLD.payload_id;
    DELETE FROM payloads WHERE id = OLD.payload_id AND refs <= 0;
  END;
  `,
  // 4 -> 5: relay franking and abuse reports (spec/14-franking.md §4, §7).
  `
  -- The delivery record (envelope id, acceptance time, frank key id, frank, franking tag) of a franked envelope.
  ALTER TABLE messages ADD COLUMN delivery BLOB;
  -- FK[key_id]: 32 random bytes per FRANK_KEY_PERIOD, deleted at destroy_at (FRANK_KEY_RETENTION after the period).
  CREATE TABLE frank_keys (
    key_id INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    destroy_at INTEGER NOT NULL
  );
  CREATE INDEX frank_keys_destroy ON frank_keys (destroy_at);
  -- Verified reports queued for moderators; one per (reporter account, reported envelope).
  CREATE TABLE reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_account BLOB NOT NULL,
    reporter_device INTEGER NOT NULL,
    envelope_id BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    report BLOB NOT NULL,
    UNIQUE (reporter_account, envelope_id)
  );
  CREATE INDEX reports_reporter ON reports (reporter_account, received_at);
  `,
  // 5 -> 6: the v2 form of the current signed prekey (spec/09-relay.md §4.2.1), NULL for v1-only devices.
  `
  ALTER TABLE devices ADD COLUMN signed_prekey_v2 BLOB;
  `,
  // 6 -> 7: the mailbox counters live in the relay's memory (sqlite-counters.ts, spec/09-relay.md §8.3),
  // rebuilt from the rows at every open; the four triggers that kept them in tables on every insert
  // and delete go with their columns and table. The payload's reference count stays a trigger.
  `
  DROP TRIGGER messages_queued_insert;
  DROP TRIGGER messages_queued_delete;
  DROP TRIGGER messages_share_insert;
  DROP TRIGGER messages_share_delete;
  DROP TABLE mailbox_shares;
  ALTER TABLE devices DROP COLUMN queued_messages;
  ALTER TABLE devices DROP COLUMN queued_bytes;
  `,
  // 7 -> 8: cheaper per envelope (issue 15, bench/results/relay-latency.md "SQLite cost per envelope").
  // (messages_mailbox_expiry stays although every envelope writes it: without it, each send to a
  // full mailbox would walk up to its 50,000 rows to find the expired ones, a cost any sender could
  // repeat.)
  `
  -- A send's device-list check reads (account, device_id, certificate_hash) of every recipient
  -- device: from this small index rather than from the device rows, which carry the certificate
  -- and prekeys (64 µs per 8-account lookup in the load test).
  CREATE INDEX devices_recipient ON devices (account, device_id, certificate_hash);
  `,
  // 8 -> 9: fewer WAL frames per envelope (issue 15; bench/results/relay-latency.md, "WAL volume per
  // envelope"). Every commit writes each page it changed to the WAL in full (4 KiB), so each b-tree
  // a row touches costs a page per commit.
  `
  -- Idempotency records keyed sender, client id, then recipient: a message's envelopes to all of
  -- its recipients' devices share one client id (client outbox.ts), so its records land in one leaf
  -- instead of one leaf per recipient (they were 17-40% of the WAL's frames under load).
  CREATE TABLE sent_ids_v9 (
    sender_account BLOB NOT NULL,
    sender_device INTEGER NOT NULL,
    recipient_account BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (sender_account, sender_device, client_id, recipient_account, recipient_device)
  ) WITHOUT ROWID;
  INSERT INTO sent_ids_v9 SELECT sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at
    FROM sent_ids;
  DROP TABLE sent_ids;
  ALTER TABLE sent_ids_v9 RENAME TO sent_ids;
  CREATE INDEX sent_ids_expiry ON sent_ids (expires_at);

  -- Seqs come from the relay's memory (sqlite-seqs.ts), not AUTOINCREMENT, which reads and rewrites
  -- sqlite_sequence in every insert (a page per commit); message_seq holds the highest seq handed out
  -- or reserved, written once per SEQ_RESERVATION seqs, so a seq is still never reused.
  CREATE TABLE message_seq (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    reserved INTEGER NOT NULL
  );
  INSERT INTO message_seq (id, reserved) VALUES (1, MAX(
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0),
    COALESCE((SELECT MAX(seq) FROM messages), 0)));
  -- The global expiry index goes: the sweep walks the mailboxes that may hold expired rows
  -- (sqlite-expiry.ts) through messages_mailbox_expiry.
  CREATE TABLE messages_v9 (
    seq INTEGER PRIMARY KEY,
    recipient_account BLOB NOT NULL,
    recipient_device INTEGER NOT NULL,
    sender_account BLOB NOT NULL,
    sender_device INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    server_ts INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    envelope BLOB NOT NULL,
    payload_id INTEGER,
    payload_bytes INTEGER NOT NULL DEFAULT 0,
    delivery BLOB
  );
  INSERT INTO messages_v9 (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts,
      expires_at, envelope, payload_id, payload_bytes, delivery)
    SELECT seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts,
      expires_at, envelope, payload_id, payload_bytes, delivery FROM messages;
  DROP TABLE messages;
  ALTER TABLE messages_v9 RENAME TO messages;
  CREATE INDEX messages_mailbox ON messages (recipient_account, recipient_device, seq);
  CREATE INDEX messages_mailbox_expiry ON messages (recipient_account, recipient_device, expires_at);
  CREATE TRIGGER messages_payload_release AFTER DELETE ON messages WHEN OLD.payload_id IS NOT NULL BEGIN
    UPDATE payloads SET refs = refs - 1 WHERE id = OLD.payload_id;
    DELETE FROM payloads WHERE id = OLD.payload_id AND refs <= 0;
  END;
  `,
  // 9 -> 10: the mailboxes of removed or replaced devices still being purged, in bounded writes
  // (rules/devices.ts DEVICE_PURGE_CHUNK_ROWS, spec/09-relay.md §4.1.2). A device id is not
  // registered again while its old mailbox is recorded here.
  `
  CREATE TABLE purging_mailboxes (
    account BLOB NOT NULL,
    device_id INTEGER NOT NULL,
    PRIMARY KEY (account, device_id)
  ) WITHOUT ROWID;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database up to `target` (default: this relay's version; tests build older databases). */
export function migrate(db: Database, target = SCHEMA_VERSION): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`relay database schema ${current} is newer than this relay (${SCHEMA_VERSION}); refusing to open it`);
  }
  for (let v = current; v < target; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
