/**
 * `RelayStorage` on embedded SQLite (better-sqlite3). spec/09-relay.md §7.
 *
 * Durability: WAL journal with synchronous=FULL, so a commit is on disk
 * (fsync of the WAL) when it returns; every write goes through the
 * `WriteBatcher`, which commits concurrent writes together (group commit).
 * Reads run directly and see only committed data.
 *
 * secure_delete overwrites deleted rows in the database file, so
 * acknowledged envelopes do not linger in free pages. (Old page images can
 * stay in the WAL file until it is checkpointed and reused.)
 */
import Database from 'better-sqlite3';
import { judgeDeviceList } from './device-lists.ts';
import { type BucketRow, budgetKeys, spendOneTime } from '../limits/prekey-budget.ts';
import { attachmentQuotaVerdict, checkSend, mailboxesToPurge } from './send-checks.ts';
import { migrate } from './sqlite-schema.ts';
import {
  REPLAY_SLOT_MS,
  type AccountKey,
  type AttachmentQuota,
  type AttachmentRecord,
  type ClaimInput,
  type ClaimedKeysResult,
  type CreateAttachmentResult,
  type DeviceAddress,
  type DeviceRecord,
  type PreKeyCounts,
  type PreKeyLimits,
  type PreKeyUpload,
  type PreKeyUploadResult,
  type QuotaPressure,
  type QuotaThresholds,
  type RegisterInput,
  type RegisterResult,
  type RelayStorage,
  type SeenRequest,
  type SeenVerdict,
  type StorageStats,
  type StoreMessagesInput,
  type StoreMessagesResult,
  type StoredMessage,
  type SweepResult,
  type PutDeviceListResult,
  type RemoveDeviceResult,
  type StoredDeviceList,
} from './types.ts';
import { type BatchObserver, WriteBatcher } from './write-batcher.ts';

export interface SqliteStorageOptions {
  /** A file path, or ':memory:' (tests). The folder must exist. */
  readonly path: string;
  /** Called after each group commit (batch size, seconds). */
  readonly observeBatch?: BatchObserver;
}

/** Most rows one sweep deletes per table, so a sweep never holds the writer for long. */
const SWEEP_BATCH = 5000;

/** Thrown inside a write to roll back its savepoint and return `result` instead. */
class Abort<T> extends Error {
  constructor(readonly result: T) {
    super('aborted write');
  }
}

interface DeviceRow {
  account: Buffer;
  device_id: number;
  certificate: Buffer;
  certificate_hash: Buffer;
  signing_key: Buffer;
  registered_at: number;
}

interface MessageRow {
  seq: number;
  sender_account: Buffer;
  sender_device: number;
  client_id: string;
  server_ts: number;
  expires_at: number;
  envelope: Buffer;
}

interface AttachmentRow {
  id: string;
  owner_account: Buffer;
  owner_device: number;
  size: number;
  received: number;
  complete: number;
  created_at: number;
  expires_at: number;
}

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    accountKey: bytes(r.account),
    deviceId: r.device_id,
    certificate: bytes(r.certificate),
    certificateHash: bytes(r.certificate_hash),
    signingKey: bytes(r.signing_key),
    registeredAt: r.registered_at,
  };
}

function toAttachment(r: AttachmentRow): AttachmentRecord {
  return {
    id: r.id,
    owner: { accountKey: bytes(r.owner_account), deviceId: r.owner_device },
    size: r.size,
    received: r.received,
    complete: r.complete === 1,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

export class SqliteStorage implements RelayStorage {
  readonly #db: Database.Database;
  readonly #writes: WriteBatcher;
  readonly #s;

  constructor(options: SqliteStorageOptions) {
    const db = new Database(options.path);
    this.#db = db;
    if (options.path !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('secure_delete = ON');
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_size_limit = 67108864');
    db.pragma('foreign_keys = OFF');
    migrate(db);
    this.#writes = new WriteBatcher(db, options.observeBatch);
    this.#s = {
      device: db.prepare<[Buffer, number], DeviceRow>(
        'SELECT account, device_id, certificate, certificate_hash, signing_key, registered_at FROM devices WHERE account = ? AND device_id = ?',
      ),
      devices: db.prepare<[Buffer], DeviceRow>(
        'SELECT account, device_id, certificate, certificate_hash, signing_key, registered_at FROM devices WHERE account = ? ORDER BY device_id',
      ),
      deviceState: db.prepare<
        [Buffer, Buffer],
        {
          device_id: number;
          certificate_hash: Buffer;
          queued_messages: number;
          queued_bytes: number;
          sender_messages: number;
          sender_bytes: number;
        }
      >(
        `SELECT d.device_id, d.certificate_hash, d.queued_messages, d.queued_bytes,
           coalesce(s.messages, 0) AS sender_messages, coalesce(s.bytes, 0) AS sender_bytes
         FROM devices d LEFT JOIN mailbox_shares s
           ON s.recipient_account = d.account AND s.recipient_device = d.device_id AND s.sender_account = ?
         WHERE d.account = ?`,
      ),
      purgeExpired: db.prepare('DELETE FROM messages WHERE recipient_account = ? AND recipient_device = ? AND expires_at <= ?'),
      deviceCount: db.prepare<[Buffer], { n: number }>('SELECT COUNT(*) AS n FROM devices WHERE account = ?'),
      insertDevice: db.prepare(
        `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
           signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteDevice: db.prepare('DELETE FROM devices WHERE account = ? AND device_id = ?'),
      deviceList: db.prepare<[Buffer], { revision: number; list: Buffer; updated_at: number }>(
        'SELECT revision, list, updated_at FROM device_lists WHERE account = ?',
      ),
      putDeviceList: db.prepare(
        `INSERT INTO device_lists (account, revision, list, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (account) DO UPDATE SET revision = excluded.revision, list = excluded.list, updated_at = excluded.updated_at`,
      ),
      isRevoked: db.prepare<[Buffer], { n: number }>('SELECT 1 AS n FROM revoked_certificates WHERE certificate_hash = ?'),
      revoke: db.prepare('INSERT OR IGNORE INTO revoked_certificates (certificate_hash, revoked_at) VALUES (?, ?)'),
      keyState: db.prepare<
        [Buffer, number],
        { signed_prekey_id: number; last_resort_kem_id: number; one_time_handed_max: number; kem_handed_max: number }
      >(
        'SELECT signed_prekey_id, last_resort_kem_id, one_time_handed_max, kem_handed_max FROM devices WHERE account = ? AND device_id = ?',
      ),
      setSigned: db.prepare('UPDATE devices SET signed_prekey_id = ?, signed_prekey = ? WHERE account = ? AND device_id = ?'),
      setLastResort: db.prepare('UPDATE devices SET last_resort_kem_id = ?, last_resort_kem = ? WHERE account = ? AND device_id = ?'),
      insertOneTime: db.prepare('INSERT OR IGNORE INTO one_time_prekeys (account, device_id, id, key) VALUES (?, ?, ?, ?)'),
      insertKem: db.prepare('INSERT OR IGNORE INTO kem_prekeys (account, device_id, id, key) VALUES (?, ?, ?, ?)'),
      countOneTime: db.prepare<[Buffer, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM one_time_prekeys WHERE account = ? AND device_id = ?',
      ),
      countKem: db.prepare<[Buffer, number], { n: number }>('SELECT COUNT(*) AS n FROM kem_prekeys WHERE account = ? AND device_id = ?'),
      deleteOneTimeAll: db.prepare('DELETE FROM one_time_prekeys WHERE account = ? AND device_id = ?'),
      deleteKemAll: db.prepare('DELETE FROM kem_prekeys WHERE account = ? AND device_id = ?'),
      bundleParts: db.prepare<[Buffer, number], { certificate: Buffer; signed_prekey: Buffer; last_resort_kem: Buffer }>(
        'SELECT certificate, signed_prekey, last_resort_kem FROM devices WHERE account = ? AND device_id = ?',
      ),
      lowestOneTime: db.prepare<[Buffer, number], { id: number; key: Buffer }>(
        'SELECT id, key FROM one_time_prekeys WHERE account = ? AND device_id = ? ORDER BY id LIMIT 1',
      ),
      lowestKem: db.prepare<[Buffer, number], { id: number; key: Buffer }>(
        'SELECT id, key FROM kem_prekeys WHERE account = ? AND device_id = ? ORDER BY id LIMIT 1',
      ),
      takeOneTime: db.prepare('DELETE FROM one_time_prekeys WHERE account = ? AND device_id = ? AND id = ?'),
      takeKem: db.prepare('DELETE FROM kem_prekeys WHERE account = ? AND device_id = ? AND id = ?'),
      markOneTime: db.prepare('UPDATE devices SET one_time_handed_max = MAX(one_time_handed_max, ?) WHERE account = ? AND device_id = ?'),
      markKem: db.prepare('UPDATE devices SET kem_handed_max = MAX(kem_handed_max, ?) WHERE account = ? AND device_id = ?'),
      sentId: db.prepare<[Buffer, number, Buffer, number, string], { n: number }>(
        `SELECT 1 AS n FROM sent_ids WHERE sender_account = ? AND sender_device = ? AND recipient_account = ?
           AND recipient_device = ? AND client_id = ?`,
      ),
      insertSentId: db.prepare(
        `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      insertMessage: db.prepare(
        `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      fetchMessages: db.prepare<[Buffer, number, number, number, number], MessageRow>(
        `SELECT seq, sender_account, sender_device, client_id, server_ts, expires_at, envelope FROM messages
         WHERE recipient_account = ? AND recipient_device = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?`,
      ),
      ack: db.prepare('DELETE FROM messages WHERE seq = ? AND recipient_account = ? AND recipient_device = ?'),
      deleteMailbox: db.prepare('DELETE FROM messages WHERE recipient_account = ? AND recipient_device = ?'),
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
      expiredOfOwner: db.prepare<[Buffer, number], { id: string }>(
        `SELECT id FROM attachments WHERE owner_account = ? AND expires_at <= ? LIMIT ${SWEEP_BATCH}`,
      ),
      insertSeen: db.prepare('INSERT OR IGNORE INTO seen_requests (account, device_id, nonce, expires_at) VALUES (?, ?, ?, ?)'),
      seenCount: db.prepare<[Buffer, number, number], { n: number | null }>(
        'SELECT SUM(n) AS n FROM seen_request_slots WHERE account = ? AND device_id = ? AND slot >= ?',
      ),
      bumpSlot: db.prepare(
        `INSERT INTO seen_request_slots (account, device_id, slot, n) VALUES (?, ?, ?, 1)
         ON CONFLICT (account, device_id, slot) DO UPDATE SET n = n + 1`,
      ),
      sweepSeen: db.prepare(
        `DELETE FROM seen_requests WHERE (account, device_id, nonce) IN
           (SELECT account, device_id, nonce FROM seen_requests WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`,
      ),
      sweepSlots: db.prepare('DELETE FROM seen_request_slots WHERE slot < ?'),
      budget: db.prepare<[string], BucketRow>('SELECT key, tokens, updated FROM budgets WHERE key = ?'),
      putBudget: db.prepare(
        `INSERT INTO budgets (key, tokens, updated, full_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated, full_at = excluded.full_at`,
      ),
      sweepBudgets: db.prepare('DELETE FROM budgets WHERE full_at <= ?'),
      pressureMailbox: db.prepare<[number, number], { messages: number | null; bytes: number | null }>(
        'SELECT SUM(queued_messages >= ?) AS messages, SUM(queued_bytes >= ?) AS bytes FROM devices',
      ),
      pressureShares: db.prepare<[number, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM mailbox_shares WHERE messages >= ? OR bytes >= ?',
      ),
      pressureDevice: db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM attachment_usage WHERE bytes >= ?'),
      pressureAccount: db.prepare<[number], { n: number }>(
        'SELECT COUNT(*) AS n FROM (SELECT owner_account FROM attachment_usage GROUP BY owner_account HAVING SUM(bytes) >= ?)',
      ),
      pendingUploads: db.prepare<[Buffer, number], { n: number }>(
        'SELECT COUNT(*) AS n FROM attachments WHERE owner_account = ? AND owner_device = ? AND complete = 0',
      ),
      attachment: db.prepare<[string], AttachmentRow>('SELECT * FROM attachments WHERE id = ?'),
      progress: db.prepare('UPDATE attachments SET received = ?, complete = ?, expires_at = ? WHERE id = ?'),
      deleteAttachment: db.prepare('DELETE FROM attachments WHERE id = ?'),
      sweepMessages: db.prepare(`DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE expires_at <= ? LIMIT ${SWEEP_BATCH})`),
      sweepSentIds: db.prepare('DELETE FROM sent_ids WHERE expires_at <= ?'),
      expiredAttachments: db.prepare<[number], { id: string }>(`SELECT id FROM attachments WHERE expires_at <= ? LIMIT ${SWEEP_BATCH}`),
      stats: db.prepare<[], { devices: number; messages: number | null; bytes: number | null }>(
        'SELECT COUNT(*) AS devices, SUM(queued_messages) AS messages, SUM(queued_bytes) AS bytes FROM devices',
      ),
      attachmentCount: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM attachments'),
      ping: db.prepare('SELECT 1'),
    };
  }

  // ---- devices ---------------------------------------------------------

  registerDevice(input: RegisterInput): Promise<RegisterResult> {
    const d = input.device;
    const account = buf(d.accountKey);
    return this.#writes
      .submit((): RegisterResult => {
        if (this.#s.isRevoked.get(buf(d.certificateHash))) return { status: 'revoked' };
        const existing = this.#s.device.get(account, d.deviceId);
        let status: 'created' | 'replaced' | 'unchanged';
        if (existing && Buffer.compare(existing.certificate_hash, buf(d.certificateHash)) === 0) {
          status = 'unchanged';
        } else {
          if (existing) {
            this.#dropDevice(account, d.deviceId, existing.certificate_hash, d.registeredAt);
            status = 'replaced';
          } else {
            if ((this.#s.deviceCount.get(account)?.n ?? 0) >= input.maxDevicesPerAccount) {
              return { status: 'too-many-devices', limit: input.maxDevicesPerAccount };
            }
            status = 'created';
          }
          const k = input.keys;
          this.#s.insertDevice.run(
            account,
            d.deviceId,
            buf(d.certificate),
            buf(d.certificateHash),
            buf(d.signingKey),
            d.registeredAt,
            k.signedPreKey.id,
            buf(k.signedPreKey.encoded),
            k.lastResortKemPreKey.id,
            buf(k.lastResortKemPreKey.encoded),
          );
        }
        const uploaded = this.#upload(account, d.deviceId, input.keys, input.preKeyLimits);
        if (uploaded.status !== 'stored') throw new Abort(uploaded);
        return { status, counts: uploaded.counts, ignored: uploaded.ignored };
      })
      .catch(unwrapAbort<RegisterResult>);
  }

  getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const row = this.#s.device.get(buf(address.accountKey), address.deviceId);
    return Promise.resolve(row && toDevice(row));
  }

  listDevices(accountKey: AccountKey): Promise<DeviceRecord[]> {
    return Promise.resolve(this.#s.devices.all(buf(accountKey)).map(toDevice));
  }

  removeDevice(address: DeviceAddress, certificateHash: Uint8Array, now: number): Promise<RemoveDeviceResult> {
    const account = buf(address.accountKey);
    const hash = buf(certificateHash);
    return this.#writes.submit((): RemoveDeviceResult => {
      const existing = this.#s.device.get(account, address.deviceId);
      if (existing && Buffer.compare(existing.certificate_hash, hash) === 0) {
        this.#dropDevice(account, address.deviceId, existing.certificate_hash, now);
        return 'removed';
      }
      return this.#s.isRevoked.get(hash) ? 'gone' : 'not-found';
    });
  }

  putDeviceList(accountKey: AccountKey, list: { revision: number; encoded: Uint8Array }, now: number): Promise<PutDeviceListResult> {
    const account = buf(accountKey);
    return this.#writes.submit((): PutDeviceListResult => {
      const verdict = judgeDeviceList(this.#s.deviceList.get(account), list);
      if (verdict.status === 'stored') this.#s.putDeviceList.run(account, list.revision, buf(list.encoded), now);
      return verdict;
    });
  }

  getDeviceList(accountKey: AccountKey): Promise<StoredDeviceList | undefined> {
    const row = this.#s.deviceList.get(buf(accountKey));
    return Promise.resolve(row && { revision: row.revision, encoded: bytes(row.list), updatedAt: row.updated_at });
  }

  /** Revokes the certificate and deletes the device with its mailbox and prekeys. */
  #dropDevice(account: Buffer, deviceId: number, certificateHash: Buffer, now: number): void {
    this.#s.revoke.run(certificateHash, now);
    this.#s.deleteMailbox.run(account, deviceId);
    this.#s.deleteOneTimeAll.run(account, deviceId);
    this.#s.deleteKemAll.run(account, deviceId);
    this.#s.deleteDevice.run(account, deviceId);
  }

  // ---- prekeys ---------------------------------------------------------

  uploadPreKeys(address: DeviceAddress, upload: PreKeyUpload, limits: PreKeyLimits): Promise<PreKeyUploadResult> {
    const account = buf(address.accountKey);
    return this.#writes
      .submit(() => {
        const result = this.#upload(account, address.deviceId, upload, limits);
        if (result.status === 'too-many-prekeys') throw new Abort(result);
        return result;
      })
      .catch(unwrapAbort<PreKeyUploadResult>);
  }

  /** Runs inside a write. Ids at or below the handed-out mark, or already stored, are ignored. */
  #upload(account: Buffer, deviceId: number, upload: PreKeyUpload, limits: PreKeyLimits): PreKeyUploadResult {
    const state = this.#s.keyState.get(account, deviceId);
    if (!state) return { status: 'not-found' };
    let ignored = 0;
    if (upload.signedPreKey) {
      if (upload.signedPreKey.id >= state.signed_prekey_id) {
        this.#s.setSigned.run(upload.signedPreKey.id, buf(upload.signedPreKey.encoded), account, deviceId);
      } else ignored++;
    }
    if (upload.lastResortKemPreKey) {
      if (upload.lastResortKemPreKey.id >= state.last_resort_kem_id) {
        this.#s.setLastResort.run(upload.lastResortKemPreKey.id, buf(upload.lastResortKemPreKey.encoded), account, deviceId);
      } else ignored++;
    }
    for (const k of upload.oneTimePreKeys ?? []) {
      if (k.id <= state.one_time_handed_max || this.#s.insertOneTime.run(account, deviceId, k.id, buf(k.encoded)).changes === 0) ignored++;
    }
    for (const k of upload.kemPreKeys ?? []) {
      if (k.id <= state.kem_handed_max || this.#s.insertKem.run(account, deviceId, k.id, buf(k.encoded)).changes === 0) ignored++;
    }
    const counts = this.#counts(account, deviceId) as PreKeyCounts;
    if (counts.oneTimePreKeys > limits.maxOneTimePreKeys) {
      return { status: 'too-many-prekeys', kind: 'oneTime', limit: limits.maxOneTimePreKeys };
    }
    if (counts.kemPreKeys > limits.maxKemPreKeys) return { status: 'too-many-prekeys', kind: 'kem', limit: limits.maxKemPreKeys };
    return { status: 'stored', counts, ignored };
  }

  #counts(account: Buffer, deviceId: number): PreKeyCounts | undefined {
    const state = this.#s.keyState.get(account, deviceId);
    if (!state) return undefined;
    return {
      oneTimePreKeys: this.#s.countOneTime.get(account, deviceId)?.n ?? 0,
      kemPreKeys: this.#s.countKem.get(account, deviceId)?.n ?? 0,
      signedPreKeyId: state.signed_prekey_id,
      lastResortKemPreKeyId: state.last_resort_kem_id,
    };
  }

  preKeyCounts(address: DeviceAddress): Promise<PreKeyCounts | undefined> {
    return Promise.resolve(this.#counts(buf(address.accountKey), address.deviceId));
  }

  claimPreKeys(input: ClaimInput): Promise<ClaimedKeysResult[]> {
    const account = buf(input.accountKey);
    return this.#writes.submit(() => {
      let ids: number[];
      if (input.deviceId === 'all') {
        const ex = input.exclude;
        ids = this.#s.devices
          .all(account)
          .map((r) => r.device_id)
          .filter((id) => !(ex && ex.deviceId === id && Buffer.compare(buf(ex.accountKey), account) === 0));
      } else ids = [input.deviceId];
      const out: ClaimedKeysResult[] = [];
      for (const deviceId of ids) {
        const parts = this.#s.bundleParts.get(account, deviceId);
        if (!parts) continue;
        const oneTime = this.#s.lowestOneTime.get(account, deviceId);
        const kem = this.#s.lowestKem.get(account, deviceId);
        let take = oneTime !== undefined || kem !== undefined;
        let budgetSpent: ClaimedKeysResult['budgetSpent'];
        if (take && input.budget) {
          const keys = budgetKeys(input.budget, account, deviceId);
          const rows = new Map<string, BucketRow>();
          for (const k of Object.values(keys)) {
            const row = this.#s.budget.get(k);
            if (row) rows.set(k, row);
          }
          const spend = spendOneTime(input.budget, keys, rows);
          if (spend.ok) for (const w of spend.writes) this.#s.putBudget.run(w.key, w.tokens, w.updated, w.fullAt);
          else {
            take = false;
            budgetSpent = spend.spent;
          }
        }
        if (take && oneTime) {
          this.#s.takeOneTime.run(account, deviceId, oneTime.id);
          this.#s.markOneTime.run(oneTime.id, account, deviceId);
        }
        if (take && kem) {
          this.#s.takeKem.run(account, deviceId, kem.id);
          this.#s.markKem.run(kem.id, account, deviceId);
        }
        const kemKey = take && kem ? kem.key : parts.last_resort_kem;
        out.push({
          deviceId,
          certificate: bytes(parts.certificate),
          signedPreKey: bytes(parts.signed_prekey),
          oneTimePreKey: take && oneTime ? bytes(oneTime.key) : null,
          kemPreKey: bytes(kemKey),
          kemLastResort: !(take && kem),
          ...(budgetSpent ? { budgetSpent } : {}),
        });
      }
      return out;
    });
  }

  // ---- messages --------------------------------------------------------

  storeMessages(input: StoreMessagesInput): Promise<StoreMessagesResult> {
    return this.#writes.submit((): StoreMessagesResult => {
      const sender = { account: buf(input.sender.accountKey), deviceId: input.sender.deviceId };
      const fresh = input.envelopes.filter(
        (e) => !this.#s.sentId.get(sender.account, sender.deviceId, buf(e.recipient.accountKey), e.recipient.deviceId, e.clientId),
      );
      const duplicates = input.envelopes.length - fresh.length;
      if (fresh.length === 0) return { status: 'stored', stored: 0, duplicates, recipients: [] };

      const check = () => checkSend(input, fresh, (accountKey) => this.#s.deviceState.all(sender.account, buf(accountKey)));
      let verdict = check();
      const purge = mailboxesToPurge(verdict);
      if (purge.length) {
        // Expired envelopes must not refuse a send: drop them, then ask again.
        for (const d of purge) this.#s.purgeExpired.run(buf(d.accountKey), d.deviceId, input.now);
        verdict = check();
      }
      if (verdict.status !== 'ok') return verdict;

      for (const e of fresh) {
        const recipient = buf(e.recipient.accountKey);
        this.#s.insertMessage.run(
          recipient,
          e.recipient.deviceId,
          sender.account,
          sender.deviceId,
          e.clientId,
          input.now,
          input.expiresAt,
          buf(e.envelope),
        );
        this.#s.insertSentId.run(sender.account, sender.deviceId, recipient, e.recipient.deviceId, e.clientId, input.expiresAt);
      }
      return { status: 'stored', stored: fresh.length, duplicates, recipients: verdict.recipients };
    });
  }

  fetchMessages(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    const rows = this.#s.fetchMessages.all(buf(recipient.accountKey), recipient.deviceId, afterSeq, now, limit);
    return Promise.resolve(
      rows.map((r) => ({
        seq: r.seq,
        sender: { accountKey: bytes(r.sender_account), deviceId: r.sender_device },
        clientId: r.client_id,
        serverTimestamp: r.server_ts,
        expiresAt: r.expires_at,
        envelope: bytes(r.envelope),
      })),
    );
  }

  ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Promise<number> {
    const account = buf(recipient.accountKey);
    return this.#writes.submit(() => {
      let n = 0;
      for (const seq of seqs) n += this.#s.ack.run(seq, account, recipient.deviceId).changes;
      return n;
    });
  }

  // ---- attachments -----------------------------------------------------

  createAttachment(r: AttachmentRecord, requestKey: Uint8Array, quota: AttachmentQuota): Promise<CreateAttachmentResult> {
    const owner = buf(r.owner.accountKey);
    const key = buf(requestKey);
    return this.#writes.submit((): CreateAttachmentResult => {
      const existing = this.#s.attachmentByRequest.get(owner, r.owner.deviceId, key);
      if (existing) return { status: 'existing', record: toAttachment(existing) };
      const refusal = (): CreateAttachmentResult | undefined => {
        if ((this.#s.pendingUploads.get(owner, r.owner.deviceId)?.n ?? 0) >= quota.maxPending) return { status: 'too-many-uploads' };
        return attachmentQuotaVerdict(
          r.size,
          this.#s.usageDevice.get(owner, r.owner.deviceId)?.n ?? 0,
          this.#s.usageAccount.get(owner)?.n ?? 0,
          quota,
        );
      };
      let refused = refusal();
      let purged: string[] = [];
      if (refused) {
        // Expired uploads must not refuse a new one: drop the account's, then ask again.
        purged = this.#s.expiredOfOwner.all(owner, r.createdAt).map((row) => row.id);
        for (const id of purged) this.#s.deleteAttachment.run(id);
        refused = refusal();
      }
      if (refused) return purged.length ? { ...refused, purged } : refused;
      this.#s.insertAttachment.run(r.id, owner, r.owner.deviceId, r.size, r.received, r.complete ? 1 : 0, r.createdAt, r.expiresAt, key);
      return purged.length ? { status: 'created', record: r, purged } : { status: 'created', record: r };
    });
  }

  getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    const row = this.#s.attachment.get(id);
    return Promise.resolve(row && toAttachment(row));
  }

  recordUploadProgress(id: string, received: number, completeExpiresAt: number): Promise<AttachmentRecord | undefined> {
    return this.#writes.submit(() => {
      const row = this.#s.attachment.get(id);
      if (!row) return undefined;
      const complete = received >= row.size;
      this.#s.progress.run(received, complete ? 1 : 0, complete ? completeExpiresAt : row.expires_at, id);
      return toAttachment({ ...row, received, complete: complete ? 1 : 0, expires_at: complete ? completeExpiresAt : row.expires_at });
    });
  }

  deleteAttachment(id: string): Promise<boolean> {
    return this.#writes.submit(() => this.#s.deleteAttachment.run(id).changes > 0);
  }

  // ---- abuse limits ----------------------------------------------------

  rememberRequest(r: SeenRequest): Promise<SeenVerdict> {
    const account = buf(r.signer.accountKey);
    return this.#writes
      .submit((): SeenVerdict => {
        if (this.#s.insertSeen.run(account, r.signer.deviceId, buf(r.nonce), r.expiresAt).changes === 0) return 'replayed';
        const held = this.#s.seenCount.get(account, r.signer.deviceId, Math.floor(r.now / REPLAY_SLOT_MS))?.n ?? 0;
        // Over quota: the insert above is rolled back with the savepoint.
        if (held >= r.maxPerSigner) throw new Abort<SeenVerdict>('over-quota');
        this.#s.bumpSlot.run(account, r.signer.deviceId, Math.floor(r.expiresAt / REPLAY_SLOT_MS));
        return 'fresh';
      })
      .catch(unwrapAbort<SeenVerdict>);
  }

  quotaPressure(t: QuotaThresholds): Promise<QuotaPressure> {
    const mailbox = this.#s.pressureMailbox.get(t.mailboxMessages, t.mailboxBytes);
    return Promise.resolve({
      mailboxMessages: mailbox?.messages ?? 0,
      mailboxBytes: mailbox?.bytes ?? 0,
      senderShares: this.#s.pressureShares.get(t.senderMessages, t.senderBytes)?.n ?? 0,
      attachmentBytesDevice: this.#s.pressureDevice.get(t.attachmentBytesDevice)?.n ?? 0,
      attachmentBytesAccount: this.#s.pressureAccount.get(t.attachmentBytesAccount)?.n ?? 0,
    });
  }

  // ---- housekeeping ----------------------------------------------------

  sweep(now: number): Promise<SweepResult> {
    return this.#writes.submit(() => {
      const messages = this.#s.sweepMessages.run(now).changes;
      const sentIds = this.#s.sweepSentIds.run(now).changes;
      const attachments = this.#s.expiredAttachments.all(now).map((r) => r.id);
      for (const id of attachments) this.#s.deleteAttachment.run(id);
      const seenRequests = this.#s.sweepSeen.run(now).changes;
      this.#s.sweepSlots.run(Math.floor(now / REPLAY_SLOT_MS));
      const budgets = this.#s.sweepBudgets.run(now).changes;
      return { messages, sentIds, attachments, seenRequests, budgets };
    });
  }

  stats(): Promise<StorageStats> {
    const s = this.#s.stats.get() ?? { devices: 0, messages: 0, bytes: 0 };
    return Promise.resolve({
      devices: s.devices,
      queuedMessages: s.messages ?? 0,
      queuedBytes: s.bytes ?? 0,
      attachments: this.#s.attachmentCount.get()?.n ?? 0,
    });
  }

  ping(): Promise<void> {
    this.#s.ping.get();
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#writes.close();
    if (this.#db.open) this.#db.close();
    return Promise.resolve();
  }
}

function buf(a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function unwrapAbort<T>(e: unknown): T {
  if (e instanceof Abort) return e.result as T;
  throw e;
}
