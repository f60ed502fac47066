/**
 * `RelayStorage` on PostgreSQL (node-postgres), for operators who run
 * several relay processes against one database. spec/09-relay.md §7.3.
 *
 * Durability: every method is one transaction, committed with
 * synchronous_commit=on (forced per connection) before its promise
 * resolves. PostgreSQL flushes concurrent commits together, so group commit
 * comes from the server rather than from a batcher of our own.
 *
 * Concurrency: transactions run at READ COMMITTED and take row locks in one
 * global order (device rows by account, then device id), which is what
 * keeps the contract's guarantees with many writers:
 *  - a send locks every recipient device row before it reads mailbox
 *    counters or draws a seq, so per-device seqs are committed in order and
 *    a fetch can never see seq n+1 before seq n;
 *  - a prekey claim locks the device row, so two claims never take one key;
 *  - registering or removing a device holds an advisory lock on its account,
 *    so the device-count limit holds across processes.
 * A transaction that still loses a race (deadlock, unique violation from a
 * concurrent identical insert) is rolled back and retried from the start.
 *
 * Wake-ups: a send calls pg_notify inside its transaction, so every relay
 * process LISTENing on the channel learns, at commit, which mailboxes have
 * new envelopes (`watchMailboxes`).
 */
import pg from 'pg';
import { migratePostgres } from './postgres-schema.ts';
import { judgeDeviceList } from './device-lists.ts';
import { type BucketRow, budgetKeys, spendOneTime } from '../limits/prekey-budget.ts';
import {
  type RecipientDeviceState,
  attachmentQuotaVerdict,
  checkSend,
  hexOf as hex,
  mailboxesToPurge,
  recipientAccounts,
} from './send-checks.ts';
import {
  type AccountKey,
  type AttachmentQuota,
  type AttachmentRecord,
  type ClaimInput,
  type ClaimedKeysResult,
  type CreateAttachmentResult,
  type DeviceAddress,
  type DeviceRecord,
  type MailboxWake,
  type PreKeyCounts,
  type PreKeyLimits,
  type PreKeyUpload,
  type PreKeyUploadResult,
  type QuotaPressure,
  type QuotaThresholds,
  REPLAY_SLOT_MS,
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

export interface PostgresStorageOptions {
  /** postgres://user:password@host:port/database (libpq-style URL). */
  readonly connectionString: string;
  /**
   * A schema of its own inside the database (created if missing); default:
   * the role's search_path (normally `public`). Lowercase letters, digits, _.
   */
  readonly schema?: string;
  /** Connections in the pool (default 10). */
  readonly poolSize?: number;
  /** Told when the LISTEN connection fails; it reconnects by itself. */
  readonly onListenerError?: (error: Error) => void;
}

/** Most rows one sweep deletes per table, so a sweep never holds locks for long. */
const SWEEP_BATCH = 5000;
/** Attempts for a transaction that loses a race (deadlock, serialization, concurrent insert). */
const MAX_ATTEMPTS = 8;
/** SQLSTATEs worth a retry: serialization_failure, deadlock_detected, unique_violation. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
/** pg_notify payloads must stay under 8000 bytes. */
const NOTIFY_PAYLOAD_BYTES = 7000;
/** How the LISTEN connection names itself in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'parley-relay-listener';
/** The type oid of BIGINT (int8). */
const INT8_OID = 20;

/** Thrown inside a transaction to roll it back and return `result` instead. */
class Abort<T> extends Error {
  constructor(readonly result: T) {
    super('aborted write');
  }
}

type Queryable = Pick<pg.PoolClient, 'query'>;

interface DeviceRow {
  account: Buffer;
  device_id: number;
  certificate: Buffer;
  certificate_hash: Buffer;
  signing_key: Buffer;
  registered_at: number;
}

interface AttachmentRow {
  id: string;
  owner_account: Buffer;
  owner_device: number;
  size: number;
  received: number;
  complete: boolean;
  created_at: number;
  expires_at: number;
}

const DEVICE_COLUMNS = 'account, device_id, certificate, certificate_hash, signing_key, registered_at';

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function buf(a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** BIGINT columns hold timestamps, ids and counters, all below 2^53: read them as numbers. */
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`BIGINT ${text} does not fit a JavaScript number`);
  return n;
}

const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

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
    complete: r.complete,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

function isRetryable(error: unknown): boolean {
  return RETRYABLE.has((error as { code?: string }).code ?? '');
}

/** Connection settings every pooled and listening connection starts with. */
function connectionConfig(options: PostgresStorageOptions): pg.ClientConfig {
  const settings = ['-c synchronous_commit=on', '-c default_transaction_isolation=read\\ committed'];
  if (options.schema) settings.push(`-c search_path=${options.schema}`);
  return { connectionString: options.connectionString, options: settings.join(' '), types: TYPES };
}

export class PostgresStorage implements RelayStorage {
  readonly #pool: pg.Pool;
  readonly #options: PostgresStorageOptions;
  readonly #channel: string;
  readonly #listeners = new Set<MailboxListener>();
  #closed = false;

  private constructor(pool: pg.Pool, options: PostgresStorageOptions) {
    this.#pool = pool;
    this.#options = options;
    this.#channel = options.schema ? `parley_mailbox_${options.schema}` : 'parley_mailbox';
  }

  /** Connects, creates the schema if asked, and migrates it. */
  static async open(options: PostgresStorageOptions): Promise<PostgresStorage> {
    if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,40}$/.test(options.schema)) {
      throw new Error('PostgreSQL schema name must be 1-41 lowercase letters, digits or _ (not starting with a digit)');
    }
    const pool = new pg.Pool({ ...connectionConfig(options), max: options.poolSize ?? 10 });
    // An idle pooled connection that the server drops must not crash the process.
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client, options.schema);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresStorage(pool, options);
  }

  /**
   * Runs `fn` in one transaction and commits it. `Abort` rolls back and
   * returns its result; a lost race rolls back and runs `fn` again.
   */
  async #transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        if (error instanceof Abort) return error.result as T;
        if (!isRetryable(error) || attempt >= MAX_ATTEMPTS) throw error;
      } finally {
        // A connection whose ROLLBACK failed is in an unknown state: drop it.
        client.release(broken);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }

  // ---- devices ---------------------------------------------------------

  registerDevice(input: RegisterInput): Promise<RegisterResult> {
    const d = input.device;
    const account = buf(d.accountKey);
    return this.#transaction(async (q): Promise<RegisterResult> => {
      await lockAccount(q, account);
      const revoked = await q.query('SELECT 1 FROM revoked_certificates WHERE certificate_hash = $1', [buf(d.certificateHash)]);
      if (revoked.rowCount) return { status: 'revoked' };
      const existing = (
        await q.query<{ certificate_hash: Buffer }>(
          'SELECT certificate_hash FROM devices WHERE account = $1 AND device_id = $2 FOR UPDATE',
          [account, d.deviceId],
        )
      ).rows[0];
      let status: 'created' | 'replaced' | 'unchanged';
      if (existing && Buffer.compare(existing.certificate_hash, buf(d.certificateHash)) === 0) {
        status = 'unchanged';
      } else {
        if (existing) {
          await dropDevice(q, account, d.deviceId, existing.certificate_hash, d.registeredAt);
          status = 'replaced';
        } else {
          const { rows } = await q.query<{ n: number }>('SELECT count(*) AS n FROM devices WHERE account = $1', [account]);
          if ((rows[0]?.n ?? 0) >= input.maxDevicesPerAccount) return { status: 'too-many-devices', limit: input.maxDevicesPerAccount };
          status = 'created';
        }
        const k = input.keys;
        await q.query(
          `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
             signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
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
          ],
        );
      }
      const uploaded = await upload(q, account, d.deviceId, input.keys, input.preKeyLimits);
      if (uploaded.status !== 'stored') throw new Abort(uploaded);
      return { status, counts: uploaded.counts, ignored: uploaded.ignored };
    });
  }

  async getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const { rows } = await this.#pool.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = $1 AND device_id = $2`, [
      buf(address.accountKey),
      address.deviceId,
    ]);
    return rows[0] && toDevice(rows[0]);
  }

  async listDevices(accountKey: AccountKey): Promise<DeviceRecord[]> {
    const { rows } = await this.#pool.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = $1 ORDER BY device_id`, [
      buf(accountKey),
    ]);
    return rows.map(toDevice);
  }

  removeDevice(address: DeviceAddress, certificateHash: Uint8Array, now: number): Promise<RemoveDeviceResult> {
    const account = buf(address.accountKey);
    const hash = buf(certificateHash);
    return this.#transaction(async (q): Promise<RemoveDeviceResult> => {
      await lockAccount(q, account);
      const { rows } = await q.query<{ certificate_hash: Buffer }>(
        'SELECT certificate_hash FROM devices WHERE account = $1 AND device_id = $2 FOR UPDATE',
        [account, address.deviceId],
      );
      if (rows[0] && Buffer.compare(rows[0].certificate_hash, hash) === 0) {
        await dropDevice(q, account, address.deviceId, rows[0].certificate_hash, now);
        return 'removed';
      }
      const revoked = await q.query('SELECT 1 FROM revoked_certificates WHERE certificate_hash = $1', [hash]);
      return revoked.rowCount ? 'gone' : 'not-found';
    });
  }

  putDeviceList(accountKey: AccountKey, list: { revision: number; encoded: Uint8Array }, now: number): Promise<PutDeviceListResult> {
    const account = buf(accountKey);
    return this.#transaction(async (q): Promise<PutDeviceListResult> => {
      // The account lock orders concurrent uploads from several relay processes: the higher revision wins either way.
      await lockAccount(q, account);
      const { rows } = await q.query<{ revision: number; list: Buffer }>('SELECT revision, list FROM device_lists WHERE account = $1', [
        account,
      ]);
      const verdict = judgeDeviceList(rows[0], list);
      if (verdict.status === 'stored') {
        await q.query(
          `INSERT INTO device_lists (account, revision, list, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account) DO UPDATE SET revision = excluded.revision, list = excluded.list, updated_at = excluded.updated_at`,
          [account, list.revision, buf(list.encoded), now],
        );
      }
      return verdict;
    });
  }

  async getDeviceList(accountKey: AccountKey): Promise<StoredDeviceList | undefined> {
    const { rows } = await this.#pool.query<{ revision: number; list: Buffer; updated_at: number }>(
      'SELECT revision, list, updated_at FROM device_lists WHERE account = $1',
      [buf(accountKey)],
    );
    const row = rows[0];
    return row && { revision: row.revision, encoded: bytes(row.list), updatedAt: row.updated_at };
  }

  // ---- prekeys ---------------------------------------------------------

  uploadPreKeys(address: DeviceAddress, keys: PreKeyUpload, limits: PreKeyLimits): Promise<PreKeyUploadResult> {
    const account = buf(address.accountKey);
    return this.#transaction(async (q) => {
      const result = await upload(q, account, address.deviceId, keys, limits);
      if (result.status === 'too-many-prekeys') throw new Abort(result);
      return result;
    });
  }

  preKeyCounts(address: DeviceAddress): Promise<PreKeyCounts | undefined> {
    return counts(this.#pool, buf(address.accountKey), address.deviceId);
  }

  claimPreKeys(input: ClaimInput): Promise<ClaimedKeysResult[]> {
    const account = buf(input.accountKey);
    return this.#transaction(async (q) => {
      const { rows: devices } = await q.query<{
        device_id: number;
        certificate: Buffer;
        signed_prekey: Buffer;
        last_resort_kem: Buffer;
      }>(
        `SELECT device_id, certificate, signed_prekey, last_resort_kem FROM devices
         WHERE account = $1 AND ($2::bigint IS NULL OR device_id = $2) ORDER BY device_id FOR UPDATE`,
        [account, input.deviceId === 'all' ? null : input.deviceId],
      );
      const ex = input.exclude;
      const out: ClaimedKeysResult[] = [];
      for (const parts of devices) {
        const deviceId = parts.device_id;
        if (ex && ex.deviceId === deviceId && Buffer.compare(buf(ex.accountKey), account) === 0) continue;
        const lowest = (table: string) =>
          q
            .query<{ id: number; key: Buffer }>(`SELECT id, key FROM ${table} WHERE account = $1 AND device_id = $2 ORDER BY id LIMIT 1`, [
              account,
              deviceId,
            ])
            .then((r) => r.rows[0]);
        const oneTime = await lowest('one_time_prekeys');
        const kem = await lowest('kem_prekeys');
        let take = oneTime !== undefined || kem !== undefined;
        let budgetSpent: ClaimedKeysResult['budgetSpent'];
        if (take && input.budget) {
          const spend = await spendBudget(q, input.budget, account, deviceId);
          if (spend !== undefined) {
            take = false;
            budgetSpent = spend;
          }
        }
        if (take && oneTime) {
          await q.query('DELETE FROM one_time_prekeys WHERE account = $1 AND device_id = $2 AND id = $3', [account, deviceId, oneTime.id]);
          await q.query(
            'UPDATE devices SET one_time_handed_max = GREATEST(one_time_handed_max, $1) WHERE account = $2 AND device_id = $3',
            [oneTime.id, account, deviceId],
          );
        }
        if (take && kem) {
          await q.query('DELETE FROM kem_prekeys WHERE account = $1 AND device_id = $2 AND id = $3', [account, deviceId, kem.id]);
          await q.query('UPDATE devices SET kem_handed_max = GREATEST(kem_handed_max, $1) WHERE account = $2 AND device_id = $3', [
            kem.id,
            account,
            deviceId,
          ]);
        }
        out.push({
          deviceId,
          certificate: bytes(parts.certificate),
          signedPreKey: bytes(parts.signed_prekey),
          oneTimePreKey: take && oneTime ? bytes(oneTime.key) : null,
          kemPreKey: bytes(take && kem ? kem.key : parts.last_resort_kem),
          kemLastResort: !(take && kem),
          ...(budgetSpent ? { budgetSpent } : {}),
        });
      }
      return out;
    });
  }

  // ---- messages --------------------------------------------------------

  storeMessages(input: StoreMessagesInput): Promise<StoreMessagesResult> {
    const senderAccount = buf(input.sender.accountKey);
    const senderDevice = input.sender.deviceId;
    return this.#transaction(async (q): Promise<StoreMessagesResult> => {
      // Lock every device row of every recipient account, in the global
      // order, before reading counters or drawing seqs (see the header).
      const byAccount = recipientAccounts(input.envelopes);
      const recipientKeys = [...byAccount.values()].map((a) => buf(a.accountKey));
      await q.query('SELECT 1 FROM devices WHERE account = ANY($1::bytea[]) ORDER BY account, device_id FOR UPDATE', [recipientKeys]);
      // Read under the locks (again after a purge): counters and this sender's share of each mailbox.
      const readDevices = async () =>
        (
          await q.query<RecipientDeviceState & { account: Buffer }>(
            `SELECT d.account, d.device_id, d.certificate_hash, d.queued_messages, d.queued_bytes,
               coalesce(s.messages, 0)::bigint AS sender_messages, coalesce(s.bytes, 0)::bigint AS sender_bytes
             FROM devices d LEFT JOIN mailbox_shares s
               ON s.recipient_account = d.account AND s.recipient_device = d.device_id AND s.sender_account = $2
             WHERE d.account = ANY($1::bytea[]) ORDER BY d.account, d.device_id`,
            [recipientKeys, senderAccount],
          )
        ).rows;
      let deviceRows = await readDevices();

      const known = await q.query<{ recipient_account: Buffer; recipient_device: number; client_id: string }>(
        `SELECT s.recipient_account, s.recipient_device, s.client_id
         FROM unnest($3::bytea[], $4::bigint[], $5::text[]) AS t(recipient_account, recipient_device, client_id)
         JOIN sent_ids s ON s.sender_account = $1 AND s.sender_device = $2 AND s.recipient_account = t.recipient_account
           AND s.recipient_device = t.recipient_device AND s.client_id = t.client_id`,
        [
          senderAccount,
          senderDevice,
          input.envelopes.map((e) => buf(e.recipient.accountKey)),
          input.envelopes.map((e) => e.recipient.deviceId),
          input.envelopes.map((e) => e.clientId),
        ],
      );
      const sentKey = (account: Uint8Array, deviceId: number, clientId: string) => `${hex(account)}:${deviceId}:${clientId}`;
      const already = new Set(known.rows.map((r) => sentKey(r.recipient_account, r.recipient_device, r.client_id)));
      const fresh = input.envelopes.filter((e) => !already.has(sentKey(e.recipient.accountKey, e.recipient.deviceId, e.clientId)));
      const duplicates = input.envelopes.length - fresh.length;
      if (fresh.length === 0) return { status: 'stored', stored: 0, duplicates, recipients: [] };

      const check = () => {
        const rowsByAccount = new Map<string, RecipientDeviceState[]>();
        for (const row of deviceRows) {
          const k = row.account.toString('hex');
          rowsByAccount.set(k, [...(rowsByAccount.get(k) ?? []), row]);
        }
        return checkSend(input, fresh, (accountKey) => rowsByAccount.get(hex(accountKey)) ?? []);
      };
      let verdict = check();
      const purge = mailboxesToPurge(verdict);
      if (purge.length) {
        // Expired envelopes must not refuse a send: drop them (rows already locked), then ask again.
        await q.query(
          `DELETE FROM messages m USING unnest($1::bytea[], $2::bigint[]) AS t(ra, rd)
           WHERE m.recipient_account = t.ra AND m.recipient_device = t.rd AND m.expires_at <= $3`,
          [purge.map((d) => buf(d.accountKey)), purge.map((d) => d.deviceId), input.now],
        );
        deviceRows = await readDevices();
        verdict = check();
      }
      if (verdict.status !== 'ok') return verdict;
      const recipients = verdict.recipients;

      const freshAccounts = fresh.map((e) => buf(e.recipient.accountKey));
      const recipientDevices = fresh.map((e) => e.recipient.deviceId);
      const clientIds = fresh.map((e) => e.clientId);
      // ORDER BY the position: seqs follow the order of the request.
      await q.query(
        `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope)
         SELECT t.ra, t.rd, $1, $2, t.cid, $3, $4, t.env
         FROM unnest($5::bytea[], $6::bigint[], $7::text[], $8::bytea[]) WITH ORDINALITY AS t(ra, rd, cid, env, pos)
         ORDER BY t.pos`,
        [
          senderAccount,
          senderDevice,
          input.now,
          input.expiresAt,
          freshAccounts,
          recipientDevices,
          clientIds,
          fresh.map((e) => buf(e.envelope)),
        ],
      );
      await q.query(
        `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
         SELECT $1, $2, t.ra, t.rd, t.cid, $3 FROM unnest($4::bytea[], $5::bigint[], $6::text[]) AS t(ra, rd, cid)`,
        [senderAccount, senderDevice, input.expiresAt, freshAccounts, recipientDevices, clientIds],
      );
      await q.query('SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload', [this.#channel, notifyPayloads(recipients)]);
      return { status: 'stored', stored: fresh.length, duplicates, recipients };
    });
  }

  async fetchMessages(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    const { rows } = await this.#pool.query<{
      seq: number;
      sender_account: Buffer;
      sender_device: number;
      client_id: string;
      server_ts: number;
      expires_at: number;
      envelope: Buffer;
    }>(
      `SELECT seq, sender_account, sender_device, client_id, server_ts, expires_at, envelope FROM messages
       WHERE recipient_account = $1 AND recipient_device = $2 AND seq > $3 AND expires_at > $4 ORDER BY seq LIMIT $5`,
      [buf(recipient.accountKey), recipient.deviceId, afterSeq, now, limit],
    );
    return rows.map((r) => ({
      seq: r.seq,
      sender: { accountKey: bytes(r.sender_account), deviceId: r.sender_device },
      clientId: r.client_id,
      serverTimestamp: r.server_ts,
      expiresAt: r.expires_at,
      envelope: bytes(r.envelope),
    }));
  }

  ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Promise<number> {
    if (seqs.length === 0) return Promise.resolve(0);
    return this.#transaction(async (q) => {
      const r = await q.query('DELETE FROM messages WHERE recipient_account = $1 AND recipient_device = $2 AND seq = ANY($3::bigint[])', [
        buf(recipient.accountKey),
        recipient.deviceId,
        [...seqs],
      ]);
      return r.rowCount ?? 0;
    });
  }

  // ---- attachments -----------------------------------------------------

  createAttachment(r: AttachmentRecord, requestKey: Uint8Array, quota: AttachmentQuota): Promise<CreateAttachmentResult> {
    const owner = buf(r.owner.accountKey);
    const key = buf(requestKey);
    return this.#transaction(async (q): Promise<CreateAttachmentResult> => {
      // Serialises uploads started by one account (all its devices), so the
      // pending limit, the byte quotas and the request key hold across processes.
      await q.query("SELECT pg_advisory_xact_lock(hashtextextended('parley-upload:' || encode($1, 'hex'), 0))", [owner]);
      const { rows: same } = await q.query<AttachmentRow>(
        'SELECT * FROM attachments WHERE owner_account = $1 AND owner_device = $2 AND request_key = $3',
        [owner, r.owner.deviceId, key],
      );
      if (same[0]) return { status: 'existing', record: toAttachment(same[0]) };
      const refusal = async (): Promise<CreateAttachmentResult | undefined> => {
        const { rows } = await q.query<{ pending: number; device: number; account: number }>(
          `SELECT (SELECT count(*) FROM attachments WHERE owner_account = $1 AND owner_device = $2 AND NOT complete) AS pending,
             (SELECT coalesce(sum(bytes), 0) FROM attachment_usage WHERE owner_account = $1 AND owner_device = $2)::bigint AS device,
             (SELECT coalesce(sum(bytes), 0) FROM attachment_usage WHERE owner_account = $1)::bigint AS account`,
          [owner, r.owner.deviceId],
        );
        const usage = rows[0] ?? { pending: 0, device: 0, account: 0 };
        if (usage.pending >= quota.maxPending) return { status: 'too-many-uploads' };
        return attachmentQuotaVerdict(r.size, usage.device, usage.account, quota);
      };
      let refused = await refusal();
      let purged: string[] = [];
      if (refused) {
        // Expired uploads must not refuse a new one: drop the account's (under its lock), then ask again.
        const { rows: gone } = await q.query<{ id: string }>(
          `DELETE FROM attachments WHERE id IN
             (SELECT id FROM attachments WHERE owner_account = $1 AND expires_at <= $2 LIMIT ${SWEEP_BATCH}) RETURNING id`,
          [owner, r.createdAt],
        );
        purged = gone.map((row) => row.id);
        refused = await refusal();
      }
      if (refused) return purged.length ? { ...refused, purged } : refused;
      await q.query(
        `INSERT INTO attachments (id, owner_account, owner_device, size, received, complete, created_at, expires_at, request_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [r.id, owner, r.owner.deviceId, r.size, r.received, r.complete, r.createdAt, r.expiresAt, key],
      );
      return purged.length ? { status: 'created', record: r, purged } : { status: 'created', record: r };
    });
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    const { rows } = await this.#pool.query<AttachmentRow>('SELECT * FROM attachments WHERE id = $1', [id]);
    return rows[0] && toAttachment(rows[0]);
  }

  recordUploadProgress(id: string, received: number, completeExpiresAt: number): Promise<AttachmentRecord | undefined> {
    return this.#transaction(async (q) => {
      const { rows } = await q.query<AttachmentRow>(
        `UPDATE attachments SET received = $2, complete = ($2 >= size),
           expires_at = CASE WHEN $2 >= size THEN $3 ELSE expires_at END
         WHERE id = $1 RETURNING *`,
        [id, received, completeExpiresAt],
      );
      return rows[0] && toAttachment(rows[0]);
    });
  }

  async deleteAttachment(id: string): Promise<boolean> {
    const r = await this.#pool.query('DELETE FROM attachments WHERE id = $1', [id]);
    return (r.rowCount ?? 0) > 0;
  }

  // ---- abuse limits ----------------------------------------------------

  rememberRequest(r: SeenRequest): Promise<SeenVerdict> {
    const account = buf(r.signer.accountKey);
    return this.#transaction(async (q): Promise<SeenVerdict> => {
      const inserted = await q.query(
        'INSERT INTO seen_requests (account, device_id, nonce, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [account, r.signer.deviceId, buf(r.nonce), r.expiresAt],
      );
      if (inserted.rowCount === 0) return 'replayed';
      // The upsert locks this signer's current slot row: concurrent requests
      // of one signer, on any process, count one after the other.
      await q.query(
        `INSERT INTO seen_request_slots (account, device_id, slot, n) VALUES ($1, $2, $3, 1)
         ON CONFLICT (account, device_id, slot) DO UPDATE SET n = seen_request_slots.n + 1`,
        [account, r.signer.deviceId, Math.floor(r.expiresAt / REPLAY_SLOT_MS)],
      );
      const { rows } = await q.query<{ n: number }>(
        'SELECT coalesce(sum(n), 0)::bigint AS n FROM seen_request_slots WHERE account = $1 AND device_id = $2 AND slot >= $3',
        [account, r.signer.deviceId, Math.floor(r.now / REPLAY_SLOT_MS)],
      );
      // The count includes this request: over quota rolls back both inserts.
      if ((rows[0]?.n ?? 0) > r.maxPerSigner) throw new Abort<SeenVerdict>('over-quota');
      return 'fresh';
    });
  }

  async quotaPressure(t: QuotaThresholds): Promise<QuotaPressure> {
    const { rows } = await this.#pool.query<QuotaPressure>(
      `SELECT
         (SELECT count(*) FROM devices WHERE queued_messages >= $1) AS "mailboxMessages",
         (SELECT count(*) FROM devices WHERE queued_bytes >= $2) AS "mailboxBytes",
         (SELECT count(*) FROM mailbox_shares WHERE messages >= $3 OR bytes >= $4) AS "senderShares",
         (SELECT count(*) FROM attachment_usage WHERE bytes >= $5) AS "attachmentBytesDevice",
         (SELECT count(*) FROM (SELECT owner_account FROM attachment_usage GROUP BY owner_account HAVING sum(bytes) >= $6) a)
           AS "attachmentBytesAccount"`,
      [t.mailboxMessages, t.mailboxBytes, t.senderMessages, t.senderBytes, t.attachmentBytesDevice, t.attachmentBytesAccount],
    );
    return rows[0] as QuotaPressure;
  }

  // ---- housekeeping ----------------------------------------------------

  sweep(now: number): Promise<SweepResult> {
    return this.#transaction(async (q) => {
      const { rows: expired } = await q.query<{ seq: number }>(
        `SELECT seq FROM messages WHERE expires_at <= $1 ORDER BY seq LIMIT ${SWEEP_BATCH}`,
        [now],
      );
      let messages = 0;
      if (expired.length) {
        const seqs = expired.map((r) => r.seq);
        // The delete trigger updates the recipients' counters: lock their
        // rows first, in the global order, so a concurrent send cannot deadlock with it.
        await q.query(
          `SELECT 1 FROM devices WHERE (account, device_id) IN
             (SELECT recipient_account, recipient_device FROM messages WHERE seq = ANY($1::bigint[]))
           ORDER BY account, device_id FOR UPDATE`,
          [seqs],
        );
        messages = (await q.query('DELETE FROM messages WHERE seq = ANY($1::bigint[])', [seqs])).rowCount ?? 0;
      }
      const sentIds = (await q.query('DELETE FROM sent_ids WHERE expires_at <= $1', [now])).rowCount ?? 0;
      const { rows: gone } = await q.query<{ id: string }>(
        `DELETE FROM attachments WHERE id IN (SELECT id FROM attachments WHERE expires_at <= $1 LIMIT ${SWEEP_BATCH}) RETURNING id`,
        [now],
      );
      const seenRequests =
        (
          await q.query(
            `DELETE FROM seen_requests WHERE (account, device_id, nonce) IN
               (SELECT account, device_id, nonce FROM seen_requests WHERE expires_at <= $1 LIMIT ${SWEEP_BATCH})`,
            [now],
          )
        ).rowCount ?? 0;
      await q.query('DELETE FROM seen_request_slots WHERE slot < $1', [Math.floor(now / REPLAY_SLOT_MS)]);
      const budgets = (await q.query('DELETE FROM budgets WHERE full_at <= $1', [now])).rowCount ?? 0;
      return { messages, sentIds, attachments: gone.map((r) => r.id), seenRequests, budgets };
    });
  }

  async stats(): Promise<StorageStats> {
    const { rows } = await this.#pool.query<{ devices: number; messages: number; bytes: number; attachments: number }>(
      `SELECT count(*) AS devices, coalesce(sum(queued_messages), 0)::bigint AS messages,
         coalesce(sum(queued_bytes), 0)::bigint AS bytes, (SELECT count(*) FROM attachments) AS attachments
       FROM devices`,
    );
    const s = rows[0] ?? { devices: 0, messages: 0, bytes: 0, attachments: 0 };
    return { devices: s.devices, queuedMessages: s.messages, queuedBytes: s.bytes, attachments: s.attachments };
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  /**
   * Wakes this process's websockets for sends committed by any process that
   * shares the database. After the LISTEN connection was lost and came back,
   * `wake('all')` is called once: notifications in between are gone.
   */
  async watchMailboxes(wake: MailboxWake): Promise<() => Promise<void>> {
    const listener = new MailboxListener(this.#options, this.#channel, wake);
    await listener.start();
    this.#listeners.add(listener);
    return async () => {
      this.#listeners.delete(listener);
      await listener.stop();
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((l) => l.stop()));
    this.#listeners.clear();
    await this.#pool.end();
  }
}

// ---- transaction steps -------------------------------------------------

/** Serialises changes to one account's device list, across processes. */
async function lockAccount(q: Queryable, account: Buffer): Promise<void> {
  await q.query("SELECT pg_advisory_xact_lock(hashtextextended('parley-account:' || encode($1, 'hex'), 0))", [account]);
}

/** Revokes the certificate and deletes the device with its mailbox and prekeys. */
async function dropDevice(q: Queryable, account: Buffer, deviceId: number, certificateHash: Buffer, now: number): Promise<void> {
  await q.query('INSERT INTO revoked_certificates (certificate_hash, revoked_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
    certificateHash,
    now,
  ]);
  await q.query('DELETE FROM messages WHERE recipient_account = $1 AND recipient_device = $2', [account, deviceId]);
  await q.query('DELETE FROM one_time_prekeys WHERE account = $1 AND device_id = $2', [account, deviceId]);
  await q.query('DELETE FROM kem_prekeys WHERE account = $1 AND device_id = $2', [account, deviceId]);
  await q.query('DELETE FROM devices WHERE account = $1 AND device_id = $2', [account, deviceId]);
}

/** Ids at or below the handed-out mark, or already stored, are ignored. Locks the device row. */
async function upload(
  q: Queryable,
  account: Buffer,
  deviceId: number,
  keys: PreKeyUpload,
  limits: PreKeyLimits,
): Promise<PreKeyUploadResult> {
  const { rows } = await q.query<{
    signed_prekey_id: number;
    last_resort_kem_id: number;
    one_time_handed_max: number;
    kem_handed_max: number;
  }>(
    `SELECT signed_prekey_id, last_resort_kem_id, one_time_handed_max, kem_handed_max FROM devices
     WHERE account = $1 AND device_id = $2 FOR UPDATE`,
    [account, deviceId],
  );
  const state = rows[0];
  if (!state) return { status: 'not-found' };
  let ignored = 0;
  if (keys.signedPreKey) {
    if (keys.signedPreKey.id >= state.signed_prekey_id) {
      await q.query('UPDATE devices SET signed_prekey_id = $1, signed_prekey = $2 WHERE account = $3 AND device_id = $4', [
        keys.signedPreKey.id,
        buf(keys.signedPreKey.encoded),
        account,
        deviceId,
      ]);
    } else ignored++;
  }
  if (keys.lastResortKemPreKey) {
    if (keys.lastResortKemPreKey.id >= state.last_resort_kem_id) {
      await q.query('UPDATE devices SET last_resort_kem_id = $1, last_resort_kem = $2 WHERE account = $3 AND device_id = $4', [
        keys.lastResortKemPreKey.id,
        buf(keys.lastResortKemPreKey.encoded),
        account,
        deviceId,
      ]);
    } else ignored++;
  }
  const insertPool = async (table: string, list: PreKeyUpload['oneTimePreKeys'], handedMax: number) => {
    const candidates = (list ?? []).filter((k) => k.id > handedMax);
    ignored += (list ?? []).length - candidates.length;
    if (candidates.length === 0) return;
    const r = await q.query(
      `INSERT INTO ${table} (account, device_id, id, key) SELECT $1, $2, t.id, t.key
       FROM unnest($3::bigint[], $4::bytea[]) AS t(id, key) ON CONFLICT DO NOTHING`,
      [account, deviceId, candidates.map((k) => k.id), candidates.map((k) => buf(k.encoded))],
    );
    ignored += candidates.length - (r.rowCount ?? 0);
  };
  await insertPool('one_time_prekeys', keys.oneTimePreKeys, state.one_time_handed_max);
  await insertPool('kem_prekeys', keys.kemPreKeys, state.kem_handed_max);
  const current = (await counts(q, account, deviceId)) as PreKeyCounts;
  if (current.oneTimePreKeys > limits.maxOneTimePreKeys) {
    return { status: 'too-many-prekeys', kind: 'oneTime', limit: limits.maxOneTimePreKeys };
  }
  if (current.kemPreKeys > limits.maxKemPreKeys) return { status: 'too-many-prekeys', kind: 'kem', limit: limits.maxKemPreKeys };
  return { status: 'stored', counts: current, ignored };
}

async function counts(q: Queryable, account: Buffer, deviceId: number): Promise<PreKeyCounts | undefined> {
  const { rows } = await q.query<{ signed_prekey_id: number; last_resort_kem_id: number; one_time: number; kem: number }>(
    `SELECT signed_prekey_id, last_resort_kem_id,
       (SELECT count(*) FROM one_time_prekeys o WHERE o.account = d.account AND o.device_id = d.device_id) AS one_time,
       (SELECT count(*) FROM kem_prekeys k WHERE k.account = d.account AND k.device_id = d.device_id) AS kem
     FROM devices d WHERE account = $1 AND device_id = $2`,
    [account, deviceId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { oneTimePreKeys: r.one_time, kemPreKeys: r.kem, signedPreKeyId: r.signed_prekey_id, lastResortKemPreKeyId: r.last_resort_kem_id };
}

/**
 * Spends one token of each one-time prekey budget (limits/prekey-budget.ts),
 * or none; returns the spent budget's name when there was no token. Bucket
 * rows are locked in key order, so concurrent claims cannot deadlock on them.
 */
async function spendBudget(
  q: Queryable,
  budget: NonNullable<ClaimInput['budget']>,
  account: Buffer,
  deviceId: number,
): Promise<ClaimedKeysResult['budgetSpent']> {
  const keys = budgetKeys(budget, account, deviceId);
  const sorted = Object.values(keys).sort();
  // Missing buckets are created full first, so the SELECT below locks a row
  // for every key (locking a missing row would let two claims both spend a new bucket).
  const capacity = {
    [keys.requester]: budget.perRequester.capacity,
    [keys.target]: budget.perTarget.capacity,
    [keys.pair]: budget.perPair.capacity,
  };
  await q.query(
    `INSERT INTO budgets (key, tokens, updated, full_at) SELECT t.key, t.tokens, $3, $3 FROM unnest($1::text[], $2::float8[]) AS t(key, tokens)
     ORDER BY t.key ON CONFLICT (key) DO NOTHING`,
    [sorted, sorted.map((k) => capacity[k]), budget.now],
  );
  const { rows } = await q.query<BucketRow>(
    'SELECT key, tokens, updated FROM budgets WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE',
    [sorted],
  );
  const spend = spendOneTime(budget, keys, new Map(rows.map((r) => [r.key, r])));
  if (!spend.ok) return spend.spent;
  const writes = [...spend.writes].sort((a, b) => (a.key < b.key ? -1 : 1));
  await q.query(
    `UPDATE budgets b SET tokens = t.tokens, updated = t.updated, full_at = t.full_at
     FROM unnest($1::text[], $2::float8[], $3::bigint[], $4::bigint[]) AS t(key, tokens, updated, full_at) WHERE b.key = t.key`,
    [writes.map((w) => w.key), writes.map((w) => w.tokens), writes.map((w) => w.updated), writes.map((w) => w.fullAt)],
  );
  return undefined;
}

// ---- mailbox notifications ---------------------------------------------

/** `hex(account):deviceId` entries, comma-separated, each payload under the NOTIFY limit. */
function notifyPayloads(addresses: readonly DeviceAddress[]): string[] {
  const payloads: string[] = [];
  let current = '';
  for (const a of addresses) {
    const entry = `${hex(a.accountKey)}:${a.deviceId}`;
    if (current && current.length + entry.length + 1 > NOTIFY_PAYLOAD_BYTES) {
      payloads.push(current);
      current = '';
    }
    current = current ? `${current},${entry}` : entry;
  }
  if (current) payloads.push(current);
  return payloads;
}

function parsePayload(payload: string): DeviceAddress[] {
  const out: DeviceAddress[] = [];
  for (const entry of payload.split(',')) {
    const m = /^([0-9a-f]{64}):(\d{1,10})$/.exec(entry);
    if (m) out.push({ accountKey: Uint8Array.from(Buffer.from(m[1] as string, 'hex')), deviceId: Number(m[2]) });
  }
  return out;
}

/** One dedicated LISTEN connection, reconnected with backoff when it drops. */
class MailboxListener {
  readonly #options: PostgresStorageOptions;
  readonly #channel: string;
  readonly #wake: MailboxWake;
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = 250;

  constructor(options: PostgresStorageOptions, channel: string, wake: MailboxWake) {
    this.#options = options;
    this.#channel = channel;
    this.#wake = wake;
  }

  async start(): Promise<void> {
    const client = new pg.Client({ ...connectionConfig(this.#options), application_name: LISTENER_APPLICATION_NAME });
    client.on('notification', (n) => {
      if (n.channel === this.#channel && n.payload) this.#wake(parsePayload(n.payload));
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('LISTEN connection ended')));
    await client.connect();
    await client.query(`LISTEN ${this.#channel}`);
    this.#client = client;
    this.#backoffMs = 250;
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#stopped || this.#client !== client) return;
    this.#client = undefined;
    this.#options.onListenerError?.(error);
    client.end().catch(() => {});
    this.#reconnect();
  }

  #reconnect(): void {
    if (this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.start().then(
        () => this.#wake('all'),
        (error: Error) => {
          this.#options.onListenerError?.(error);
          this.#backoffMs = Math.min(this.#backoffMs * 2, 30_000);
          this.#reconnect();
        },
      );
    }, this.#backoffMs);
    this.#retry.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}
