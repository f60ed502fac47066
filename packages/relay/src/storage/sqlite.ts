/**
 * `RelayStorage` on embedded SQLite (better-sqlite3). spec/09-relay.md §7.
 * The rules live in storage/rules/; this file is SQLite's queries and its
 * way of running a write.
 *
 * Durability: WAL journal; every write goes through the `WriteBatcher`,
 * which commits concurrent writes together (group commit), each in its own
 * savepoint, and answers them once an fsync of the WAL (wal-sync.ts, off the
 * event loop) that started after the commit has finished. Reads run directly
 * and see committed data, possibly before its fsync (spec/09-relay.md §7.1).
 * Writes are serial (one connection, one thread), so the rules' lock
 * queries are no-ops here.
 *
 * secure_delete overwrites deleted rows in the database file, so
 * acknowledged envelopes do not linger in free pages. (Old page images can
 * stay in the WAL file until it is checkpointed and reused.)
 */
import Database from 'better-sqlite3';
import type { BucketRow, BucketWrite } from '../limits/prekey-budget.ts';
import {
  type AttachmentRow,
  type BundleRow,
  DEVICE_COLUMNS,
  type DeviceListRow,
  type DeviceRow,
  type KeyStateRow,
  type MessageRow,
  type ReportRow,
  buf,
  committed,
  sealedGroupEnvelope,
} from './rows.ts';
import type { PreKeyPool, ReadQueries, RecipientRow, StorageDriver, TransactOptions, UploadUsage, WriteQueries } from './rules/queries.ts';
import { RuleStorage } from './rules/storage.ts';
import { type Rule, runSync, unwrapAbort } from './rules/step.ts';
import { MailboxCounters, ROW_BYTES_SQL, mailboxKey } from './sqlite-counters.ts';
import { ExpiryQueue } from './sqlite-expiry.ts';
import { NewestSeqs } from './sqlite-newest.ts';
import { migrate } from './sqlite-schema.ts';
import { SeqAllocator } from './sqlite-seqs.ts';
import { sqliteTokenQueries } from './tokens-sqlite.ts';
import type {
  AttachmentRecord,
  CommittedMessage,
  DeviceAddress,
  MailboxesCommitted,
  OutgoingEnvelope,
  PreKeyCounts,
  QuotaPressure,
  QuotaThresholds,
  StorageStats,
  StoredPreKey,
} from './types.ts';
import { WalCheckpointer } from './wal-checkpointer.ts';
import { WalSync } from './wal-sync.ts';
import { type BatchJournal, type BatchObserver, type LargeWrites, WriteBatcher } from './write-batcher.ts';

export interface SqliteStorageOptions {
  /** A file path, or ':memory:' (tests). The folder must exist. */
  readonly path: string;
  /** Called after each group commit (batch size, seconds). */
  readonly observeBatch?: BatchObserver;
  /**
   * Called right after a commit that stored envelopes, with their mailboxes and the rows it
   * stored, before the commit is durable (write-batcher.ts `onCommit`): the relay pushes them to
   * the recipients' websockets then (live push, spec/09-relay.md §5.2.1).
   */
  readonly onMailboxesCommitted?: MailboxesCommitted;
}

/**
 * The newest unexpired row before an insert (CommittedMessage.previousSeq), when memory does not
 * know it (sqlite-newest.ts): messages_mailbox read backwards, stopping at the first unexpired row.
 * The unary + keeps the planner off messages_mailbox_expiry (it would sort the mailbox by seq).
 */
const PREVIOUS_SEQ_SQL = `SELECT seq FROM messages WHERE recipient_account = ? AND recipient_device = ? AND +expires_at > ?
  ORDER BY seq DESC LIMIT 1`;

/**
 * Most rows an account's own expired attachments (dropped before its quota refuses an upload) and
 * the frank-key sweep delete at once; both tables hold few rows per account or period. The main
 * sweep has its own, smaller bound (rules/housekeeping.ts SWEEP_CHUNK_ROWS).
 */
const EXPIRED_BATCH = 5000;

/**
 * Most mailboxes one sweep visits for expired rows (sqlite-expiry.ts). A visit is a DELETE and an
 * index search, and normally deletes a row or more (a mailbox is due only once its soonest expiry
 * has passed), so a sweep's time is its deleted rows', as with the global index before: 2,000 rows
 * of 1 KiB spread over as many mailboxes took 200-300 ms, 5,000 rows by the old global sweep
 * 430-740 ms (load average 12, bench/results/relay-latency.md "WAL volume per envelope"). The bound
 * caps visits that find nothing (rows acknowledged since their mailbox's bound was set); mailboxes
 * left over are due first in the next sweep.
 */
export const SWEEP_MAILBOXES = 2000;

/** The pool tables by name (never from input). */
const POOL_TABLE: Record<PreKeyPool, string> = { oneTime: 'one_time_prekeys', kem: 'kem_prekeys' };
const POOL_MARK: Record<PreKeyPool, string> = { oneTime: 'one_time_handed_max', kem: 'kem_handed_max' };

/**
 * Most rows one multi-row statement carries. A send frame's envelopes (8 in the load test, at most
 * a few dozen from a device) have one INSERT for their idempotency records, one lookup of known
 * client ids and one of the recipients' devices, instead of one statement of each per envelope
 * (issue 15: at 5,000 envelopes/s each statement's bind, step and reset showed). The mailbox rows
 * stay one INSERT each: live push hands over each row's seq and its mailbox's previous seq.
 * Longer lists (an HTTP send to a large group) go in chunks of this many, so at most this many
 * statements of each kind are prepared.
 */
const ROWS_PER_STATEMENT = 16;

/** The statement for `n` rows, prepared on first use. */
function byCount<T>(make: (n: number) => T): (n: number) => T {
  const made: T[] = [];
  return (n) => {
    let statement = made[n];
    if (statement === undefined) made[n] = statement = make(n);
    return statement;
  };
}

const tuples = (n: number, tuple: string): string => Array.from({ length: n }, () => tuple).join(', ');

function* chunks<T>(items: readonly T[]): Generator<readonly T[]> {
  for (let i = 0; i < items.length; i += ROWS_PER_STATEMENT) yield items.slice(i, i + ROWS_PER_STATEMENT);
}

function statements(db: Database.Database) {
  const pool = <T>(make: (pool: PreKeyPool) => T): Record<PreKeyPool, T> => ({ oneTime: make('oneTime'), kem: make('kem') });
  return {
    // The token tables (tokens-sqlite.ts), created if missing, outside the migrations.
    tokens: sqliteTokenQueries(db),
    device: db.prepare<[Buffer, number], DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = ? AND device_id = ?`),
    devices: db.prepare<[Buffer], DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = ? ORDER BY device_id`),
    certificateHash: db.prepare<[Buffer, number], { certificate_hash: Buffer }>(
      'SELECT certificate_hash FROM devices WHERE account = ? AND device_id = ?',
    ),
    // The counters come from memory (sqlite-counters.ts).
    recipientDevices: byCount((n) =>
      db.prepare<Buffer[], { account: Buffer; device_id: number; certificate_hash: Buffer }>(
        `SELECT account, device_id, certificate_hash FROM devices WHERE account IN (${tuples(n, '?')}) ORDER BY account, device_id`,
      ),
    ),
    // Every delete of message rows says what it deleted, for the counters: [sender account, bytes].
    purgeExpired: db
      .prepare<[Buffer, number, number], [Buffer, number]>(
        `DELETE FROM messages WHERE recipient_account = ? AND recipient_device = ? AND expires_at <= ?
         RETURNING sender_account, ${ROW_BYTES_SQL}`,
      )
      .raw(),
    deviceCount: db.prepare<[Buffer], { n: number }>('SELECT COUNT(*) AS n FROM devices WHERE account = ?'),
    insertDevice: db.prepare(
      `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
         signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteDevice: db.prepare('DELETE FROM devices WHERE account = ? AND device_id = ?'),
    deletePool: pool((p) => db.prepare(`DELETE FROM ${POOL_TABLE[p]} WHERE account = ? AND device_id = ?`)),
    // A removed device's mailbox, in bounded steps (rules/devices.ts), in seq order through messages_mailbox.
    purgeMailbox: db
      .prepare<[Buffer, number, number], [Buffer, number]>(
        `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE recipient_account = ? AND recipient_device = ?
           ORDER BY seq LIMIT ?) RETURNING sender_account, ${ROW_BYTES_SQL}`,
      )
      .raw(),
    markPurging: db.prepare('INSERT OR IGNORE INTO purging_mailboxes (account, device_id) VALUES (?, ?)'),
    isPurging: db.prepare<[Buffer, number], { n: number }>('SELECT 1 AS n FROM purging_mailboxes WHERE account = ? AND device_id = ?'),
    endPurge: db.prepare('DELETE FROM purging_mailboxes WHERE account = ? AND device_id = ?'),
    nextPurging: db.prepare<[], { account: Buffer; device_id: number }>(
      'SELECT account, device_id FROM purging_mailboxes ORDER BY account, device_id LIMIT 1',
    ),
    deviceList: db.prepare<[Buffer], DeviceListRow>('SELECT revision, list, updated_at FROM device_lists WHERE account = ?'),
    putDeviceList: db.prepare(
      `INSERT INTO device_lists (account, revision, list, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (account) DO UPDATE SET revision = excluded.revision, list = excluded.list, updated_at = excluded.updated_at`,
    ),
    isRevoked: db.prepare<[Buffer], { n: number }>('SELECT 1 AS n FROM revoked_certificates WHERE certificate_hash = ?'),
    revoke: db.prepare('INSERT OR IGNORE INTO revoked_certificates (certificate_hash, revoked_at) VALUES (?, ?)'),
    hasSignedV2: db.prepare<[Buffer, number], { v: number }>(
      'SELECT signed_prekey_v2 IS NOT NULL AS v FROM devices WHERE account = ? AND device_id = ?',
    ),
    keyState: db.prepare<[Buffer, number], KeyStateRow>(
      'SELECT signed_prekey_id, last_resort_kem_id, one_time_handed_max, kem_handed_max FROM devices WHERE account = ? AND device_id = ?',
    ),
    setSigned: db.prepare(
      'UPDATE devices SET signed_prekey_id = ?, signed_prekey = ?, signed_prekey_v2 = ? WHERE account = ? AND device_id = ?',
    ),
    setLastResort: db.prepare('UPDATE devices SET last_resort_kem_id = ?, last_resort_kem = ? WHERE account = ? AND device_id = ?'),
    insertKey: pool((p) => db.prepare(`INSERT OR IGNORE INTO ${POOL_TABLE[p]} (account, device_id, id, key) VALUES (?, ?, ?, ?)`)),
    countKeys: pool((p) =>
      db.prepare<[Buffer, number], { n: number }>(`SELECT COUNT(*) AS n FROM ${POOL_TABLE[p]} WHERE account = ? AND device_id = ?`),
    ),
    bundleParts: db.prepare<[Buffer, number], BundleRow>(
      'SELECT device_id, certificate, signed_prekey, signed_prekey_v2, last_resort_kem FROM devices WHERE account = ? AND device_id = ?',
    ),
    allBundleParts: db.prepare<[Buffer], BundleRow>(
      'SELECT device_id, certificate, signed_prekey, signed_prekey_v2, last_resort_kem FROM devices WHERE account = ? ORDER BY device_id',
    ),
    lowestKey: pool((p) =>
      db.prepare<[Buffer, number], { id: number; key: Buffer }>(
        `SELECT id, key FROM ${POOL_TABLE[p]} WHERE account = ? AND device_id = ? ORDER BY id LIMIT 1`,
      ),
    ),
    takeKey: pool((p) => db.prepare(`DELETE FROM ${POOL_TABLE[p]} WHERE account = ? AND device_id = ? AND id = ?`)),
    markKey: pool((p) => db.prepare(`UPDATE devices SET ${POOL_MARK[p]} = MAX(${POOL_MARK[p]}, ?) WHERE account = ? AND device_id = ?`)),
    // Each (recipient, client id) pair is a primary-key search.
    sentIds: byCount((n) =>
      db
        .prepare<unknown[], [Buffer, number, string]>(
          `SELECT recipient_account, recipient_device, client_id FROM sent_ids WHERE sender_account = ? AND sender_device = ?
             AND (recipient_account, recipient_device, client_id) IN (VALUES ${tuples(n, '(?, ?, ?)')})`,
        )
        .raw(),
    ),
    insertSentIds: byCount((n) =>
      db.prepare(
        `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
         VALUES ${tuples(n, '(?, ?, ?, ?, ?, ?)')}`,
      ),
    ),
    // Each mailbox row's seq comes from memory (sqlite-seqs.ts), first.
    insertMessage: db.prepare(
      `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
         envelope, delivery)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertPayload: db.prepare('INSERT INTO payloads (envelope, refs, expires_at) VALUES (?, ?, ?)'),
    insertReference: db.prepare(
      `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
         envelope, payload_id, payload_bytes, delivery)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, X'', ?, ?, ?)`,
    ),
    insertSealedReference: db.prepare(
      `INSERT INTO messages (seq, recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
         envelope, payload_id, payload_bytes, delivery)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    // A fan-out's row carries no envelope of its own, a sealed group row only its seal: rows.ts joins the payload.
    fetchMessages: db.prepare<[Buffer, number, number, number, number], MessageRow>(
      `SELECT m.seq, m.sender_account, m.sender_device, m.client_id, m.server_ts, m.expires_at, m.delivery,
         m.envelope, p.envelope AS payload
       FROM messages m LEFT JOIN payloads p ON p.id = m.payload_id
       WHERE m.recipient_account = ? AND m.recipient_device = ? AND m.seq > ? AND m.expires_at > ? ORDER BY m.seq LIMIT ?`,
    ),
    // One statement per acknowledgement frame (up to 1,000 seqs as a JSON array), not one per seq:
    // at 5,000 delivered envelopes/s each statement's bind/step/reset showed in the profile (issue 15).
    ack: db
      .prepare<[Buffer, number, string], [Buffer, number]>(
        `DELETE FROM messages WHERE recipient_account = ? AND recipient_device = ? AND seq IN (SELECT value FROM json_each(?))
         RETURNING sender_account, ${ROW_BYTES_SQL}`,
      )
      .raw(),
    insertAttachment: db.prepare(
      `INSERT INTO attachments (id, owner_account, owner_device, size, received, complete, created_at, expires_at, request_key)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    attachmentByRequest: db.prepare<[Buffer, number, Buffer], AttachmentRow>(
      'SELECT * FROM attachments WHERE owner_account = ? AND owner_device = ? AND request_key = ?',
    ),
    usageDevice: db.prepare<[Buffer, number], { n: number }>(
      'SELECT bytes AS n FROM attachment_usage WHERE owner_account = ? AND owner_device = ?',
    ),
    usageAccount: db.prepare<[Buffer], { n: number | null }>('SELECT SUM(bytes) AS n FROM attachment_usage WHERE owner_account = ?'),
    pendingUploads: db.prepare<[Buffer, number], { n: number }>(
      'SELECT COUNT(*) AS n FROM attachments WHERE owner_account = ? AND owner_device = ? AND complete = 0',
    ),
    expiredOfOwner: db.prepare<[Buffer, number], { id: string }>(
      `SELECT id FROM attachments WHERE owner_account = ? AND expires_at <= ? LIMIT ${EXPIRED_BATCH}`,
    ),
    attachment: db.prepare<[string], AttachmentRow>('SELECT * FROM attachments WHERE id = ?'),
    progress: db.prepare('UPDATE attachments SET received = ?, complete = ?, expires_at = ? WHERE id = ?'),
    deleteAttachment: db.prepare('DELETE FROM attachments WHERE id = ?'),
    insertSeen: db.prepare('INSERT OR IGNORE INTO seen_requests (account, device_id, nonce, expires_at) VALUES (?, ?, ?, ?)'),
    seenCount: db.prepare<[Buffer, number, number], { n: number | null }>(
      'SELECT SUM(n) AS n FROM seen_request_slots WHERE account = ? AND device_id = ? AND slot >= ?',
    ),
    bumpSlot: db.prepare(
      `INSERT INTO seen_request_slots (account, device_id, slot, n) VALUES (?, ?, ?, 1)
       ON CONFLICT (account, device_id, slot) DO UPDATE SET n = n + 1`,
    ),
    budget: db.prepare<[string], BucketRow>('SELECT key, tokens, updated FROM budgets WHERE key = ?'),
    putBudget: db.prepare(
      `INSERT INTO budgets (key, tokens, updated, full_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated, full_at = excluded.full_at`,
    ),
    // The sweep, one due mailbox at a time (sqlite-expiry.ts), through messages_mailbox_expiry.
    sweepMailbox: db
      .prepare<[Buffer, number, number, number], [Buffer, number]>(
        `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE recipient_account = ? AND recipient_device = ?
           AND expires_at <= ? LIMIT ?)
         RETURNING sender_account, ${ROW_BYTES_SQL}`,
      )
      .raw(),
    soonestExpiry: db
      .prepare<[Buffer, number], number>(
        'SELECT expires_at FROM messages WHERE recipient_account = ? AND recipient_device = ? ORDER BY expires_at LIMIT 1',
      )
      .pluck(),
    // Each sweep statement deletes at most its LIMIT (the sweep write's bound, rules/housekeeping.ts).
    sweepSentIds: db.prepare<[number, number]>(
      `DELETE FROM sent_ids WHERE (sender_account, sender_device, client_id, recipient_account, recipient_device) IN
         (SELECT sender_account, sender_device, client_id, recipient_account, recipient_device FROM sent_ids
          WHERE expires_at <= ? LIMIT ?)`,
    ),
    expiredAttachments: db.prepare<[number, number], { id: string }>('SELECT id FROM attachments WHERE expires_at <= ? LIMIT ?'),
    sweepSeen: db.prepare<[number, number]>(
      `DELETE FROM seen_requests WHERE (account, device_id, nonce) IN
         (SELECT account, device_id, nonce FROM seen_requests WHERE expires_at <= ? LIMIT ?)`,
    ),
    sweepSlots: db.prepare('DELETE FROM seen_request_slots WHERE slot < ?'),
    sweepBudgets: db.prepare<[number, number]>('DELETE FROM budgets WHERE key IN (SELECT key FROM budgets WHERE full_at <= ? LIMIT ?)'),
    insertFrankKey: db.prepare('INSERT INTO frank_keys (key_id, key, destroy_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    frankKey: db.prepare<[number], { key: Buffer }>('SELECT key FROM frank_keys WHERE key_id = ?'),
    sweepFrankKeys: db.prepare(
      `DELETE FROM frank_keys WHERE key_id IN (SELECT key_id FROM frank_keys WHERE destroy_at <= ? LIMIT ${EXPIRED_BATCH})`,
    ),
    countReports: db.prepare<[Buffer, number], { n: number }>(
      'SELECT count(*) AS n FROM reports WHERE reporter_account = ? AND received_at > ?',
    ),
    insertReport: db.prepare(
      `INSERT INTO reports (reporter_account, reporter_device, envelope_id, received_at, report) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (reporter_account, envelope_id) DO NOTHING`,
    ),
    reportedBefore: db.prepare<[Buffer, Buffer], { n: number }>(
      'SELECT 1 AS n FROM reports WHERE reporter_account = ? AND envelope_id = ?',
    ),
    reports: db.prepare<[number, number], ReportRow>('SELECT * FROM reports WHERE id > ? ORDER BY id LIMIT ?'),
    report: db.prepare<[number], ReportRow>('SELECT * FROM reports WHERE id = ?'),
    pressureDevice: db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM attachment_usage WHERE bytes >= ?'),
    pressureAccount: db.prepare<[number], { n: number }>(
      'SELECT COUNT(*) AS n FROM (SELECT owner_account FROM attachment_usage GROUP BY owner_account HAVING SUM(bytes) >= ?)',
    ),
    allDevices: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM devices'),
    attachmentCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM attachments'),
    payloadCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM payloads'),
    ping: db.prepare('SELECT 1'),
  };
}

type Statements = ReturnType<typeof statements>;

/** What the write queries keep in memory beside the rows (each follows the batches: see SqliteDriver). */
interface Memory {
  readonly counters: MailboxCounters;
  readonly newest: NewestSeqs;
  readonly seqs: SeqAllocator;
  readonly expiry: ExpiryQueue;
}

/**
 * The queries inside a write. Synchronous: `runSync` drives the rule. With `hand`, each stored
 * mailbox row is also handed over as it was written, with the seq it drew (live push).
 */
function writeQueries(s: Statements, memory: Memory, hand?: (row: CommittedMessage) => void): WriteQueries {
  const { counters, newest, seqs, expiry } = memory;
  /** Uncounts the rows a delete of one mailbox returned ([sender account, bytes] each). */
  const uncount = (recipient: Buffer, deviceId: number, deleted: readonly [Buffer, number][], key?: string): number => {
    if (deleted.length === 0) return 0;
    // The mailbox's key once per delete, not once per row.
    const k = key ?? mailboxKey(recipient, deviceId);
    for (const [sender, bytes] of deleted) counters.add(recipient, deviceId, sender, -1, -bytes, k);
    return deleted.length;
  };
  const counts = (account: Buffer, deviceId: number): PreKeyCounts | undefined => {
    const state = s.keyState.get(account, deviceId);
    if (!state) return undefined;
    return {
      oneTimePreKeys: s.countKeys.oneTime.get(account, deviceId)?.n ?? 0,
      kemPreKeys: s.countKeys.kem.get(account, deviceId)?.n ?? 0,
      signedPreKeyId: state.signed_prekey_id,
      signedPreKeyV2: s.hasSignedV2.get(account, deviceId)?.v === 1,
      lastResortKemPreKeyId: state.last_resort_kem_id,
    };
  };
  /**
   * One mailbox row: `insert` writes it with `columns` (its envelope, and for a fan-out or sealed
   * group row the payload reference) between the row's address and its delivery record; then its
   * seq goes to live push (`pushed` is what the device receives) and `bytes` count against the
   * mailbox. Returns the row's sent-id parameters: the caller keeps them with one statement per chunk.
   */
  const insertRow = (
    sender: DeviceAddress,
    e: OutgoingEnvelope,
    now: number,
    expiresAt: number,
    pushed: Uint8Array | (() => Uint8Array),
    bytes: number,
    insert: Database.Statement,
    columns: unknown[],
  ): unknown[] => {
    const account = buf(sender.accountKey);
    const recipient = buf(e.recipient.accountKey);
    // Built once per row for the maps in memory (counters, newest row, expiry).
    const key = mailboxKey(recipient, e.recipient.deviceId);
    // One statement per row: live push needs each row's seq and its mailbox's previous seq.
    const previous = hand ? newest.previousSeq(recipient, e.recipient.deviceId, now, key) : 0;
    const seq = seqs.take();
    insert.run(
      seq,
      recipient,
      e.recipient.deviceId,
      account,
      sender.deviceId,
      e.clientId,
      now,
      expiresAt,
      ...columns,
      e.delivery === undefined ? null : buf(e.delivery),
    );
    newest.inserted(recipient, e.recipient.deviceId, seq, expiresAt, key);
    hand?.(committed(e, previous, seq, sender, now, expiresAt, pushed));
    counters.add(recipient, e.recipient.deviceId, account, 1, bytes, key);
    expiry.lower(key, recipient, e.recipient.deviceId, expiresAt);
    return [account, sender.deviceId, recipient, e.recipient.deviceId, e.clientId, expiresAt];
  };
  /** Inserts each item's row (`row` returns its sent-id parameters) and keeps the sent ids, one statement per chunk. */
  const insertRows = <T>(items: readonly T[], row: (item: T) => unknown[]) => {
    for (const chunk of chunks(items)) {
      const sent = chunk.flatMap(row);
      s.insertSentIds(chunk.length).run(...sent);
    }
  };
  const noLock = () => {};
  return {
    ...s.tokens.write,
    lockAccount: noLock,
    isRevoked: (hash) => s.isRevoked.get(hash) !== undefined,
    revoke: (hash, now) => void s.revoke.run(hash, now),
    certificateHashOf: (account, deviceId) => s.certificateHash.get(account, deviceId)?.certificate_hash,
    countDevices: (account) => s.deviceCount.get(account)?.n ?? 0,
    insertDevice: (d, signed, lastResort) =>
      void s.insertDevice.run(
        d.account,
        d.device_id,
        d.certificate,
        d.certificate_hash,
        d.signing_key,
        d.registered_at,
        signed.id,
        buf(signed.encoded),
        lastResort.id,
        buf(lastResort.encoded),
      ),
    deleteDevice: (account, deviceId) => {
      s.deletePool.oneTime.run(account, deviceId);
      s.deletePool.kem.run(account, deviceId);
      s.deleteDevice.run(account, deviceId);
    },
    purgeMailbox: (account, deviceId, limit) => {
      const deleted = uncount(account, deviceId, s.purgeMailbox.all(account, deviceId, limit));
      // Live push's previous seq must not name a purged row (sqlite-newest.ts).
      newest.removed(account, deviceId);
      // The counters are exact (sqlite-counters.ts): no statement to know what is left.
      return { deleted, left: counters.queued(account, deviceId) > 0 };
    },
    markPurging: (account, deviceId) => void s.markPurging.run(account, deviceId),
    isPurging: (account, deviceId) => s.isPurging.get(account, deviceId) !== undefined,
    endPurge: (account, deviceId) => void s.endPurge.run(account, deviceId),
    nextPurging: () => s.nextPurging.get(),
    deviceList: (account) => s.deviceList.get(account),
    putDeviceList: (account, revision, list, now) => void s.putDeviceList.run(account, revision, list, now),

    keyState: (account, deviceId) => s.keyState.get(account, deviceId),
    setSignedPreKey: (account, deviceId, k: StoredPreKey, v2: StoredPreKey | null) =>
      void s.setSigned.run(k.id, buf(k.encoded), v2 ? buf(v2.encoded) : null, account, deviceId),
    setLastResortKemPreKey: (account, deviceId, k: StoredPreKey) => void s.setLastResort.run(k.id, buf(k.encoded), account, deviceId),
    insertPreKeys: (p, account, deviceId, keys) => {
      let n = 0;
      for (const k of keys) n += s.insertKey[p].run(account, deviceId, k.id, buf(k.encoded)).changes;
      return n;
    },
    preKeyCounts: counts,
    bundleParts: (account, deviceId) => {
      if (deviceId === 'all') return s.allBundleParts.all(account);
      const row = s.bundleParts.get(account, deviceId);
      return row ? [row] : [];
    },
    lowestPreKey: (p, account, deviceId) => s.lowestKey[p].get(account, deviceId),
    takePreKey: (p, account, deviceId, id) => {
      s.takeKey[p].run(account, deviceId, id);
      s.markKey[p].run(id, account, deviceId);
    },
    // A missing bucket is a full one (limits/prekey-budget.ts tokensAt); writes are serial, no lock needed.
    lockBuckets: (keys) => keys.flatMap((k) => s.budget.get(k) ?? []),
    putBuckets: (writes: readonly BucketWrite[]) => {
      for (const w of writes) s.putBudget.run(w.key, w.tokens, w.updated, w.fullAt);
    },

    lockMailboxes: noLock,
    recipientDevices: (accounts, sender) => {
      const rows: RecipientRow[] = [];
      for (const chunk of chunks(accounts)) {
        for (const d of s.recipientDevices(chunk.length).all(...chunk)) {
          const { mailbox, share } = counters.read(d.account, d.device_id, sender);
          rows.push({
            ...d,
            queued_messages: mailbox.messages,
            queued_bytes: mailbox.bytes,
            sender_messages: share.messages,
            sender_bytes: share.bytes,
          });
        }
      }
      return rows;
    },
    knownClientIds: (sender: DeviceAddress, envelopes: readonly OutgoingEnvelope[]) => {
      const account = buf(sender.accountKey);
      const sentKey = (recipient: Buffer, deviceId: number, clientId: string) => `${deviceId}:${clientId}:${recipient.toString('latin1')}`;
      const known = new Set<string>();
      for (const chunk of chunks(envelopes)) {
        const params: unknown[] = [account, sender.deviceId];
        for (const e of chunk) params.push(buf(e.recipient.accountKey), e.recipient.deviceId, e.clientId);
        for (const [recipient, deviceId, clientId] of s.sentIds(chunk.length).all(...params))
          known.add(sentKey(recipient, deviceId, clientId));
      }
      // Retries are rare: a fresh send builds no keys.
      if (known.size === 0) return envelopes.map(() => false);
      return envelopes.map((e) => known.has(sentKey(buf(e.recipient.accountKey), e.recipient.deviceId, e.clientId)));
    },
    purgeExpired: (devices, now) => {
      for (const d of devices) {
        const recipient = buf(d.accountKey);
        uncount(recipient, d.deviceId, s.purgeExpired.all(recipient, d.deviceId, now));
        newest.expired(recipient, d.deviceId, now);
      }
    },
    insertMessages: (sender, envelopes, now, expiresAt) =>
      insertRows(envelopes, (e) => insertRow(sender, e, now, expiresAt, e.envelope, e.envelope.length, s.insertMessage, [buf(e.envelope)])),
    insertFanout: (sender, recipients, envelope, now, expiresAt) => {
      const payload = s.insertPayload.run(buf(envelope), recipients.length, expiresAt).lastInsertRowid;
      // The row's own envelope is empty (X'' in the statement): the payload's bytes count against the mailbox.
      insertRows(recipients, (e) =>
        insertRow(sender, e, now, expiresAt, envelope, envelope.length, s.insertReference, [payload, envelope.length]),
      );
    },
    insertSealedGroup: (rows, payload, now, expiresAt) => {
      const stored = s.insertPayload.run(buf(payload), rows.length, expiresAt).lastInsertRowid;
      // Each row: its device's seal, the payload by reference; the sender slot holds the token hash.
      insertRows(rows, ({ sender, envelope: e }) => {
        const pushed = sealedGroupEnvelope(e.envelope, payload);
        const columns = [buf(e.envelope), stored, payload.length];
        return insertRow(sender, e, now, expiresAt, pushed, e.envelope.length + payload.length, s.insertSealedReference, columns);
      });
    },
    // One process: the routes wake local websockets themselves.
    notifyMailboxes: noLock,
    ackMessages: (recipient, seqs) => {
      const account = buf(recipient.accountKey);
      const key = mailboxKey(account, recipient.deviceId);
      newest.deleted(account, recipient.deviceId, seqs, key);
      return uncount(account, recipient.deviceId, s.ack.all(account, recipient.deviceId, JSON.stringify(seqs)), key);
    },

    lockUploads: noLock,
    attachmentByRequest: (owner, deviceId, key) => s.attachmentByRequest.get(owner, deviceId, key),
    uploadUsage: (owner, deviceId): UploadUsage => ({
      pending: s.pendingUploads.get(owner, deviceId)?.n ?? 0,
      deviceBytes: s.usageDevice.get(owner, deviceId)?.n ?? 0,
      accountBytes: s.usageAccount.get(owner)?.n ?? 0,
    }),
    purgeExpiredUploads: (owner, now) => {
      const ids = s.expiredOfOwner.all(owner, now).map((row) => row.id);
      for (const id of ids) s.deleteAttachment.run(id);
      return ids;
    },
    insertAttachment: (r: AttachmentRecord, key) =>
      void s.insertAttachment.run(
        r.id,
        buf(r.owner.accountKey),
        r.owner.deviceId,
        r.size,
        r.received,
        r.complete ? 1 : 0,
        r.createdAt,
        r.expiresAt,
        key,
      ),
    attachment: (id) => s.attachment.get(id),
    setUploadProgress: (id, received, complete, expiresAt) => void s.progress.run(received, complete ? 1 : 0, expiresAt, id),
    deleteAttachment: (id) => s.deleteAttachment.run(id).changes > 0,

    insertSeenRequest: (signer, nonce, expiresAt) =>
      s.insertSeen.run(buf(signer.accountKey), signer.deviceId, nonce, expiresAt).changes > 0,
    bumpSeenSlot: (signer, slot) => void s.bumpSlot.run(buf(signer.accountKey), signer.deviceId, slot),
    seenCount: (signer, fromSlot) => s.seenCount.get(buf(signer.accountKey), signer.deviceId, fromSlot)?.n ?? 0,

    // Bounded: at most `limit` rows and SWEEP_MAILBOXES mailboxes; what is left stays due.
    sweepMessages: (now, limit) => {
      let deleted = 0;
      for (let visits = 0; visits < SWEEP_MAILBOXES && deleted < limit; visits++) {
        const due = expiry.due(now);
        if (due === undefined) break;
        const { account, deviceId } = due;
        // Emptied by acknowledgements since: nothing to read.
        if (counters.queued(account, deviceId, due.key) > 0) {
          deleted += uncount(account, deviceId, s.sweepMailbox.all(account, deviceId, now, limit - deleted));
          newest.expired(account, deviceId, now);
        }
        const left = counters.queued(account, deviceId, due.key) > 0 ? s.soonestExpiry.get(account, deviceId) : undefined;
        expiry.visited(due, left);
      }
      return deleted;
    },
    sweepSentIds: (now, limit) => s.sweepSentIds.run(now, limit).changes,
    sweepAttachments: (now, limit) => {
      const ids = s.expiredAttachments.all(now, limit).map((r) => r.id);
      for (const id of ids) s.deleteAttachment.run(id);
      return ids;
    },
    sweepSeenRequests: (now, beforeSlot, limit) => {
      const n = s.sweepSeen.run(now, limit).changes;
      s.sweepSlots.run(beforeSlot);
      return n;
    },
    sweepBudgets: (now, limit) => s.sweepBudgets.run(now, limit).changes,
    insertFrankKey: (keyId, key, destroyAt) => void s.insertFrankKey.run(keyId, key, destroyAt),
    frankKey: (keyId) => s.frankKey.get(keyId)?.key,
    sweepFrankKeys: (now) => s.sweepFrankKeys.run(now).changes,
    countReports: (reporter, since) => s.countReports.get(reporter, since)?.n ?? 0,
    insertReport: (r) => {
      const run = s.insertReport.run(buf(r.reporter.accountKey), r.reporter.deviceId, buf(r.envelopeId), r.receivedAt, buf(r.report));
      return run.changes === 0 ? false : Number(run.lastInsertRowid);
    },
  };
}

/** Reads run directly on the connection (committed data only: writes happen inside the batcher's turns). */
function readQueries(s: Statements, write: WriteQueries, counters: MailboxCounters): ReadQueries {
  const devices = () => s.allDevices.get()?.n ?? 0;
  return {
    ...s.tokens.read,
    device: async (account, deviceId) => s.device.get(account, deviceId),
    devices: async (account) => s.devices.all(account),
    deviceList: async (account) => s.deviceList.get(account),
    preKeyCounts: async (account, deviceId) => write.preKeyCounts(account, deviceId) as PreKeyCounts | undefined,
    messages: async (r, afterSeq, limit, now) => s.fetchMessages.all(buf(r.accountKey), r.deviceId, afterSeq, now, limit),
    attachment: async (id) => s.attachment.get(id),
    quotaPressure: async (t: QuotaThresholds): Promise<QuotaPressure> => {
      return {
        ...counters.pressure(t, devices),
        attachmentBytesDevice: s.pressureDevice.get(t.attachmentBytesDevice)?.n ?? 0,
        attachmentBytesAccount: s.pressureAccount.get(t.attachmentBytesAccount)?.n ?? 0,
      };
    },
    stats: async (): Promise<StorageStats> => {
      const queued = counters.totals();
      return {
        devices: devices(),
        queuedMessages: queued.messages,
        queuedBytes: queued.bytes,
        attachments: s.attachmentCount.get()?.n ?? 0,
        payloads: s.payloadCount.get()?.n ?? 0,
      };
    },
    ping: async () => void s.ping.get(),
    frankKey: async (keyId) => s.frankKey.get(keyId)?.key,
    reportedBefore: async (reporter, envelopeId) => s.reportedBefore.get(reporter, envelopeId) !== undefined,
    reports: async (afterId, limit) => s.reports.all(afterId, limit),
    report: async (id) => s.report.get(id),
  };
}

class SqliteDriver implements StorageDriver {
  readonly #db: Database.Database;
  readonly #writes: WriteBatcher;
  readonly #wal: WalSync | undefined;
  /** On disk, checkpoints run on a worker thread, not inside the event loop's commits (wal-checkpointer.ts). */
  readonly checkpointer: WalCheckpointer | undefined;
  /** The mailbox counters in memory (sqlite-counters.ts). */
  readonly counters: MailboxCounters;
  /** Each mailbox's newest row, for live push (sqlite-newest.ts). */
  readonly newest: NewestSeqs;
  /** Which mailboxes may hold expired rows (sqlite-expiry.ts). */
  readonly expiry: ExpiryQueue;
  /** Message seqs (sqlite-seqs.ts). */
  readonly seqs: SeqAllocator;
  readonly #q: WriteQueries;
  readonly read: ReadQueries;
  readonly #onCommitted: MailboxesCommitted | undefined;
  /** Rows the running write stored and has not handed over yet. */
  #stored: CommittedMessage[] = [];

  constructor(options: SqliteStorageOptions) {
    const db = new Database(options.path);
    this.#db = db;
    const onDisk = options.path !== ':memory:';
    if (onDisk) db.pragma('journal_mode = WAL');
    // On disk, a commit writes the WAL and WalSync's fsync, off the event loop, makes it durable
    // before anyone is answered (wal-sync.ts): FULL's guarantee without blocking on the disk.
    db.pragma(onDisk ? 'synchronous = NORMAL' : 'synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_size_limit = 67108864');
    db.pragma('foreign_keys = OFF');
    migrate(db);
    // Migrations read the schema version, so the WAL exists.
    this.#wal = onDisk ? new WalSync(options.path) : undefined;
    const checkpointer = onDisk ? new WalCheckpointer(db, options.path, { databaseFd: this.#wal?.databaseFd }) : undefined;
    this.checkpointer = checkpointer;
    // The counters and the expiry bounds start from the rows: exact after any stop, clean or not
    // (spec/09-relay.md §8.3.1), in one pass.
    const counters = new MailboxCounters();
    const expiry = new ExpiryQueue();
    counters.rebuild(db, (key, recipient, deviceId, expiresAt) => expiry.lower(key, recipient, deviceId, expiresAt));
    this.counters = counters;
    this.expiry = expiry;
    // Each write runs in a savepoint, whose journal of the pages it changed SQLite spills to a
    // temporary file past 64 KiB: at 5,000 envelopes/s that was almost half of the main thread's
    // write() bytes, beside the WAL (bench/results/relay-latency.md, "WAL volume per envelope").
    // In memory it holds the pages one batch changes: up to MAX_BATCH_ROWS rows, or one write's
    // (an acknowledgement names at most 1,000 seqs, a sweep write SWEEP_CHUNK_ROWS rows). Writes that may change a whole
    // mailbox (TransactOptions.large) commit alone with it on disk again (`largeWrites`).
    // Set after the rebuild, whose temporary table (one row per share) and the migrations' sorts
    // stay on disk.
    db.pragma('temp_store = MEMORY');
    const largeWrites: LargeWrites = {
      before: () => db.pragma('temp_store = FILE'),
      after: () => db.pragma('temp_store = MEMORY'),
    };
    const seqs = new SeqAllocator(db);
    this.seqs = seqs;
    // Each mailbox's newest row (live push's previous seq) also follows the batches: a rollback forgets it.
    const previousSeq = db.prepare<[Buffer, number, number], { seq: number }>(PREVIOUS_SEQ_SQL);
    const newest = new NewestSeqs(counters, (recipient, deviceId, now) => previousSeq.get(recipient, deviceId, now)?.seq ?? 0);
    this.newest = newest;
    // Writes run one at a time, so the expiry queue's mark of the running write's savepoint is one variable.
    let expiryMark = 0;
    const journal: BatchJournal = {
      begin: () => {
        counters.begin();
        expiry.begin();
        seqs.begin();
      },
      savepoint: () => {
        expiryMark = expiry.savepoint();
        return counters.savepoint();
      },
      rollbackTo: (mark) => {
        counters.rollbackTo(mark);
        expiry.rollbackTo(expiryMark);
        seqs.rollback();
        newest.forgetAll();
      },
      commit: () => {
        counters.commit();
        expiry.commit();
        seqs.commit();
      },
      rollback: () => {
        counters.rollback();
        expiry.rollback();
        seqs.rollback();
        newest.forgetAll();
      },
      rows: () => counters.rows(),
    };
    this.#writes = new WriteBatcher(
      db,
      options.observeBatch,
      this.#wal,
      checkpointer && (() => checkpointer.committed()),
      journal,
      largeWrites,
    );
    const writes = this.#writes;
    checkpointer?.holdWritesWith(() => writes.hold());
    const s = statements(db);
    this.#onCommitted = options.onMailboxesCommitted;
    const memory: Memory = { counters, newest, seqs, expiry };
    this.#q = this.#onCommitted
      ? {
          ...writeQueries(s, memory, (row) => this.#stored.push(row)),
          // The rule asks to notify inside the write: the wake, with the rows stored so far, runs once the batch has committed.
          notifyMailboxes: (devices) => this.#handOver(devices),
        }
      : writeQueries(s, memory);
    this.read = readQueries(s, this.#q, counters);
  }

  /** The rule runs in the next group commit, in its own savepoint (an Abort rolls back only it). */
  transact<T>(rule: (q: WriteQueries) => Rule<T>, options?: TransactOptions): Promise<T> {
    const large = options?.large === true;
    if (!this.#onCommitted) return this.#writes.submit(() => runSync(rule(this.#q)), large).catch(unwrapAbort<T>);
    return this.#writes
      .submit(() => {
        // Writes run one at a time: what an earlier write stored was handed over or rolled back with it.
        this.#stored = [];
        const result = runSync(rule(this.#q));
        // Rows stored without a wake-up still go (a pump that missed one could skip it: §5.2.1).
        if (this.#stored.length > 0) this.#handOver([]);
        return result;
      }, large)
      .catch(unwrapAbort<T>);
  }

  /** Hands the rows this write stored so far, with `devices` to wake, to the listener once the batch commits. */
  #handOver(devices: readonly DeviceAddress[]): void {
    const rows = this.#stored;
    this.#stored = [];
    const listener = this.#onCommitted as MailboxesCommitted;
    this.#writes.onCommit(() => listener(devices, rows));
  }

  async close(): Promise<void> {
    this.#writes.close();
    // The worker's connection closes first: the relay's, closing last, checkpoints and removes the WAL.
    await this.checkpointer?.close();
    if (this.#db.open) this.#db.close();
    this.#wal?.close();
  }
}

export class SqliteStorage extends RuleStorage {
  /** On disk: the worker thread that checkpoints the WAL (spec/09-relay.md §7.1); none in memory. */
  readonly checkpointer: WalCheckpointer | undefined;
  readonly wakesOnCommit: boolean;
  /** Queued envelopes and bytes per mailbox and sender share, in memory (spec/09-relay.md §8.3). */
  readonly counters: MailboxCounters;
  /** Each mailbox's newest row, in memory (live push's previous seq). */
  readonly newest: NewestSeqs;
  /** Which mailboxes may hold expired rows, in memory (the sweep's queue). */
  readonly expiry: ExpiryQueue;
  /** Message seqs, handed out from memory and reserved on disk. */
  readonly seqs: SeqAllocator;

  constructor(options: SqliteStorageOptions) {
    const driver = new SqliteDriver(options);
    super(driver);
    this.checkpointer = driver.checkpointer;
    this.counters = driver.counters;
    this.newest = driver.newest;
    this.expiry = driver.expiry;
    this.seqs = driver.seqs;
    this.wakesOnCommit = options.onMailboxesCommitted !== undefined;
  }
}
