/**
 * `RelayStorage` on PostgreSQL (node-postgres), for operators who run
 * several relay processes against one database. spec/09-relay.md §7.3.
 * The rules live in storage/rules/; this file is PostgreSQL's queries, its
 * locks, and its way of running a transaction.
 *
 * Durability: every write is one transaction, committed with
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
 * Wake-ups: right after a send commits, a pg_notify in a transaction of its
 * own (pipelined behind the COMMIT, see `#commitWithWakeUps`) tells every
 * other relay process LISTENing on the channel which mailboxes have new
 * envelopes (`watchMailboxes`).
 *
 * Round trips: the pool runs in pipeline mode, and a rule hands over the
 * queries that do not depend on each other together (rules/step.ts
 * `getAll`, `getLast`): a send is two round trips (spec/09-relay.md §7.3).
 */
import pg from 'pg';
import { type BucketRow, tokensAt } from '../limits/prekey-budget.ts';
import { migratePostgres } from './postgres-schema.ts';
import { createTokenTables, tokenQueries, tokenReads } from './tokens-postgres.ts';
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
import type { PreKeyPool, ReadQueries, RecipientRow, StorageDriver, UploadUsage, WriteQueries } from './rules/queries.ts';
import { hexOf as hex } from './rules/send-checks.ts';
import { RuleStorage } from './rules/storage.ts';
import { Abort, type Rule, runAsync } from './rules/step.ts';
import { relayError } from '../errors.ts';
import type {
  BucketLimit,
  CommittedMessage,
  DeviceAddress,
  DeviceRecord,
  MailboxWake,
  MailboxesCommitted,
  OutgoingEnvelope,
  PreKeyCounts,
  QuotaPressure,
  StorageStats,
  TokenTake,
  TokenTakeResult,
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
  /**
   * Called after each commit of this storage that stored envelopes or asked for wake-ups, with
   * the mailboxes and the rows it stored (live push, spec/09-relay.md §5.2.1). Other processes'
   * sends still arrive through `watchMailboxes`, without rows.
   */
  readonly onMailboxesCommitted?: MailboxesCommitted;
}

/** Most rows an account's own expired attachments and the frank-key sweep delete at once (few rows each). */
const SWEEP_BATCH = 5000;
/** Attempts for a transaction that loses a race (deadlock, serialization, concurrent insert). */
const MAX_ATTEMPTS = 8;
/** SQLSTATEs worth a retry: serialization_failure, deadlock_detected, unique_violation. */
const RETRYABLE = new Set(['40001', '40P01', '23505']);
/** pg_notify payloads must stay under 8000 bytes. */
const NOTIFY_PAYLOAD_BYTES = 7000;
/** How the LISTEN connection names itself in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = 'parley-relay-listener';
/**
 * A tag naming one storage instance in its notifications: unique enough
 * among the processes on one database (time and about 52 random bits), and
 * not a secret (it only routes wake-ups), so no cryptographic randomness.
 * Base-36 characters only, so it never contains the payload's separators.
 */
function originTag(): string {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
}
/** The type oid of BIGINT (int8). */
const INT8_OID = 20;

/** The pool tables by name (never from input). */
const POOL_TABLE: Record<PreKeyPool, string> = { oneTime: 'one_time_prekeys', kem: 'kem_prekeys' };
const POOL_MARK: Record<PreKeyPool, string> = { oneTime: 'one_time_handed_max', kem: 'kem_handed_max' };

type Queryable = Pick<pg.PoolClient, 'query'>;

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

function isRetryable(error: unknown): boolean {
  return RETRYABLE.has((error as { code?: string }).code ?? '');
}

/** Connection settings every pooled and listening connection starts with. */
function connectionConfig(options: PostgresStorageOptions): pg.ClientConfig {
  const settings = ['-c synchronous_commit=on', '-c default_transaction_isolation=read\\ committed'];
  if (options.schema) settings.push(`-c search_path=${options.schema}`);
  return { connectionString: options.connectionString, options: settings.join(' '), types: TYPES };
}

const first = async <T extends pg.QueryResultRow>(p: Promise<pg.QueryResult<T>>): Promise<T | undefined> => (await p).rows[0];
const all = async <T extends pg.QueryResultRow>(p: Promise<pg.QueryResult<T>>): Promise<T[]> => (await p).rows;
const changed = async (p: Promise<pg.QueryResult>): Promise<number> => (await p).rowCount ?? 0;
const done = async (p: Promise<unknown>): Promise<void> => {
  await p;
};

/**
 * A statement of the send and delivery path, prepared: each connection
 * parses and plans it once, then only binds and runs it, which spares the
 * server a parse and a plan per statement of every send.
 */
function prepared(name: string, text: string, values: unknown[]): pg.QueryConfig {
  return { name: `parley_${name}`, text, values };
}

/**
 * Awaits statements issued together (pipelined): every rejection is handled,
 * and the first failure in issue order is the one thrown (the later ones
 * only say that the transaction was already aborted).
 */
async function settleInOrder(...issued: Promise<unknown>[]): Promise<void> {
  const settled = await Promise.allSettled(issued);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * For live push: each inserted row's seq, and the newest unexpired row of its mailbox before the
 * statement (CommittedMessage.previousSeq). The sub-select sees the statement's snapshot, taken
 * after the send locked the device rows: every row committed before this one is in it, none of
 * this statement's. `now` names the statement's parameter holding the send's time.
 * The plan must be a backward scan of messages_mailbox that stops at the first unexpired row: the
 * ORDER BY is that index's order (the primary key's backward scan, which filters every mailbox's
 * rows, cannot give it) and the unary + keeps messages_mailbox_expiry, whose range then has to be
 * sorted whole, out (SQLite chose it and took 1.6 ms for a 5,000-row mailbox, sqlite.ts).
 */
function returningPrevious(now: string): string {
  return ` RETURNING seq, coalesce((SELECT prior.seq FROM messages prior
    WHERE prior.recipient_account = messages.recipient_account AND prior.recipient_device = messages.recipient_device
      AND +prior.expires_at > ${now}
    ORDER BY prior.recipient_account DESC, prior.recipient_device DESC, prior.seq DESC LIMIT 1), 0) AS previous_seq`;
}

interface InsertedRow {
  seq: number;
  previous_seq: number;
}

/** The rows one insert statement returned, matched to what it inserted: seqs follow the request's order. */
function insertedInOrder(result: pg.QueryResult<InsertedRow>): InsertedRow[] {
  return [...result.rows].sort((a, b) => a.seq - b.seq);
}

/**
 * Most signers held. Why 16384: the working set of a process's active
 * devices, as the verifying-key cache (auth/verifying-keys.ts) and core's
 * key-check cache; a device row is about 400 bytes (its certificate most of
 * it), 7 MB when full. A signer beyond it is read again, never refused.
 */
export const SIGNER_CACHE_ENTRIES = 16384;

/**
 * The devices this process read for authentication, so a signed HTTP
 * request needs no round trip for its signer (spec/15-scale.md §1.1). A
 * held row is only a hint: the request's replay record, which every signed
 * request writes (in the send's own transaction for a send), carries the
 * certificate hash it was authenticated by (SeenRequest
 * .signerCertificateHash) and is inserted only if the device still has it;
 * else the request is refused (AUTH_UNKNOWN_DEVICE) and the entry dropped.
 * So a device removed or replaced on any process signs nothing more here,
 * as when each request read its row.
 */
class SignerCache {
  readonly #rows = new Map<string, DeviceRecord>();
  readonly #max: number;

  constructor(max = SIGNER_CACHE_ENTRIES) {
    this.#max = max;
  }

  static key(accountKey: Uint8Array, deviceId: number): string {
    return `${Buffer.from(accountKey.buffer, accountKey.byteOffset, accountKey.byteLength).toString('latin1')}:${deviceId}`;
  }

  get(address: DeviceAddress): DeviceRecord | undefined {
    const key = SignerCache.key(address.accountKey, address.deviceId);
    const held = this.#rows.get(key);
    if (held) {
      // Map order is insertion order: re-inserting marks the row as recently used.
      this.#rows.delete(key);
      this.#rows.set(key, held);
    }
    return held;
  }

  set(address: DeviceAddress, row: DeviceRecord | undefined): void {
    const key = SignerCache.key(address.accountKey, address.deviceId);
    this.#rows.delete(key);
    if (!row) return;
    this.#rows.set(key, row);
    if (this.#rows.size > this.#max) this.#rows.delete(this.#rows.keys().next().value as string);
  }

  forget(accountKey: Uint8Array, deviceId: number): void {
    this.#rows.delete(SignerCache.key(accountKey, deviceId));
  }
}

/** A pooled connection's transaction queries and the state they collect into (one transaction at a time). */
interface ConnectionQueries {
  readonly q: Queryable;
  readonly state: TransactionState;
  readonly queries: WriteQueries;
}

/**
 * The connection's queries, each flight in one write. node-postgres writes
 * every statement with its own writev (it corks and uncorks around each),
 * so a flight of eight statements (BEGIN, the replay record, the locks, the
 * reads, the budget) cost eight system calls and eight loopback packets for
 * the server to read: the largest single item in the relay's profile on
 * PostgreSQL (spec/15-scale.md §1.2). Corking the socket at the first
 * statement of a tick and uncorking it on the next tick sends everything a
 * rule issued together in one write. Nothing waits for an answer before
 * the uncork (the answers come after the write), so nothing can stall.
 */
function flightWriter(client: pg.PoolClient): Queryable {
  const stream = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
  if (!stream?.cork || !stream.uncork) return client;
  const socket = stream as { cork(): void; uncork(): void };
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  return {
    query: ((...args: Parameters<pg.PoolClient['query']>) => {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(uncork);
      }
      return (client.query as (...a: unknown[]) => unknown)(...args);
    }) as pg.PoolClient['query'],
  };
}

/** Deletes acknowledged rows of one mailbox (the message triggers release their counters and payloads). */
const deleteAcknowledged = (q: Queryable, recipient: DeviceAddress, seqs: readonly number[]) =>
  changed(
    q.query(
      prepared('ack', 'DELETE FROM messages WHERE recipient_account = $1 AND recipient_device = $2 AND seq = ANY($3::bigint[])', [
        buf(recipient.accountKey),
        recipient.deviceId,
        [...seqs],
      ]),
    ),
  );

/** Serialises work on one key across processes, until the transaction ends. */
const advisoryLock = (q: Queryable, prefix: string, key: Buffer) =>
  done(q.query(`SELECT pg_advisory_xact_lock(hashtextextended('${prefix}:' || encode($1, 'hex'), 0))`, [key]));

async function preKeyCounts(q: Queryable, account: Buffer, deviceId: number): Promise<PreKeyCounts | undefined> {
  const r = await first(
    q.query<{ signed_prekey_id: number; last_resort_kem_id: number; has_v2: boolean; one_time: number; kem: number }>(
      `SELECT signed_prekey_id, last_resort_kem_id, signed_prekey_v2 IS NOT NULL AS has_v2,
         (SELECT count(*) FROM one_time_prekeys o WHERE o.account = d.account AND o.device_id = d.device_id) AS one_time,
         (SELECT count(*) FROM kem_prekeys k WHERE k.account = d.account AND k.device_id = d.device_id) AS kem
       FROM devices d WHERE account = $1 AND device_id = $2`,
      [account, deviceId],
    ),
  );
  if (!r) return undefined;
  return {
    oneTimePreKeys: r.one_time,
    kemPreKeys: r.kem,
    signedPreKeyId: r.signed_prekey_id,
    signedPreKeyV2: r.has_v2,
    lastResortKemPreKeyId: r.last_resort_kem_id,
  };
}

/** The idempotency records of the envelopes just stored (spec §4.3 step 1). */
async function insertSentIds(
  q: Queryable,
  sender: DeviceAddress,
  envelopes: readonly OutgoingEnvelope[],
  expiresAt: number,
): Promise<void> {
  await q.query(
    prepared(
      'sent_ids',
      `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
     SELECT $1, $2, t.ra, t.rd, t.cid, $3 FROM unnest($4::bytea[], $5::bigint[], $6::text[]) AS t(ra, rd, cid)`,
      [
        buf(sender.accountKey),
        sender.deviceId,
        expiresAt,
        envelopes.map((e) => buf(e.recipient.accountKey)),
        envelopes.map((e) => e.recipient.deviceId),
        envelopes.map((e) => e.clientId),
      ],
    ),
  );
}

/**
 * Takes rate-budget tokens in one statement, so a send costs one round trip
 * however many recipient accounts it has; on a pool (its own transaction)
 * or inside a send's transaction. Rows are upserted in key order (two
 * statements over the same keys lock them in one order: no deadlock); the
 * upsert locks each row across processes and writes it only if it holds
 * enough; rows it did not return were refused. The conflict branch sees
 * only the proposed row, so the amount travels in it: a new bucket's
 * tokens are `capacity - need` (need = min(amount, capacity), which takes
 * the same as `amount` from a bucket that never holds more than capacity).
 */
async function takeTokensOn(q: Queryable, limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<TokenTakeResult[]> {
  if (takes.length === 0) return [];
  const need = '($2::float8 - excluded.tokens)';
  const taken = await q.query<{ key: string; tokens: number }>(
    prepared(
      'take_tokens',
      `INSERT INTO budgets AS b (key, tokens, updated, full_at)
     SELECT t.key, $2::float8 - least(t.amount, $2::float8), $3::bigint,
       $3::bigint + ceil(least(t.amount, $2::float8) * $4::float8 / $2::float8)::bigint
     FROM unnest($1::text[], $5::float8[]) AS t(key, amount)
     ORDER BY t.key
     ON CONFLICT (key) DO UPDATE SET
       tokens = ${LEVEL} - ${need},
       updated = greatest(b.updated, $3::bigint),
       full_at = greatest(b.updated, $3::bigint) + ceil(($2::float8 - (${LEVEL} - ${need})) * $4::float8 / $2::float8)::bigint
     WHERE ${LEVEL} >= ${need}
     RETURNING b.key, b.tokens`,
      [takes.map((t) => t.key), limit.capacity, now, limit.windowMs, takes.map((t) => t.amount)],
    ),
  );
  const left = new Map(taken.rows.map((r) => [r.key, r.tokens]));
  const refused = takes.filter((t) => !left.has(t.key)).map((t) => t.key);
  // Refused (the rare path): read the levels for the callers' retry hints.
  const held = new Map<string, BucketRow>();
  if (refused.length) {
    const { rows } = await q.query<BucketRow>('SELECT key, tokens, updated FROM budgets WHERE key = ANY($1::text[])', [refused]);
    for (const r of rows) held.set(r.key, r);
  }
  return takes.map((t) => {
    const tokens = left.get(t.key);
    return tokens === undefined ? { ok: false, tokens: tokensAt(held.get(t.key), limit, now) } : { ok: true, tokens };
  });
}

async function returnTokensOn(q: Queryable, limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<void> {
  if (takes.length === 0) return;
  const sorted = [...takes].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  await q.query(
    `UPDATE budgets b SET
       tokens = least($2::float8, ${LEVEL} + t.amount),
       updated = greatest(b.updated, $3::bigint),
       full_at = greatest(b.updated, $3::bigint) + ceil(($2::float8 - least($2::float8, ${LEVEL} + t.amount)) * $4::float8 / $2::float8)::bigint
     FROM unnest($1::text[], $5::float8[]) AS t(key, amount)
     WHERE b.key = t.key`,
    [sorted.map((t) => t.key), limit.capacity, now, limit.windowMs, sorted.map((t) => t.amount)],
  );
}

/**
 * What one transaction collects as it runs: `wakeUps`, the mailboxes to
 * notify once it commits; `handed`, when live push is on, the rows it
 * inserted. Emptied when a transaction begins on the connection.
 */
interface TransactionState {
  readonly wakeUps: DeviceAddress[];
  readonly handed: CommittedMessage[] | undefined;
}

/**
 * The queries inside one transaction, on its connection. Built once per
 * pooled connection (`ConnectionQueries`), not per transaction: the object
 * holds some eighty closures, and building it per send was a measurable
 * part of the relay's CPU per envelope (spec/15-scale.md §1.2).
 */
function writeQueries(q: Queryable, state: TransactionState, signers: SignerCache): WriteQueries {
  const live = state.handed !== undefined;
  const { wakeUps, handed } = state;
  return {
    ...tokenQueries(q),
    lockAccount: (account) => advisoryLock(q, 'parley-account', account),
    isRevoked: async (hash) =>
      ((await q.query('SELECT 1 FROM revoked_certificates WHERE certificate_hash = $1', [hash])).rowCount ?? 0) > 0,
    revoke: (hash, now) =>
      done(q.query('INSERT INTO revoked_certificates (certificate_hash, revoked_at) VALUES ($1, $2) ON CONFLICT DO NOTHING', [hash, now])),
    certificateHashOf: async (account, deviceId) =>
      (
        await first(
          q.query<{ certificate_hash: Buffer }>('SELECT certificate_hash FROM devices WHERE account = $1 AND device_id = $2 FOR UPDATE', [
            account,
            deviceId,
          ]),
        )
      )?.certificate_hash,
    countDevices: async (account) =>
      (await first(q.query<{ n: number }>('SELECT count(*) AS n FROM devices WHERE account = $1', [account])))?.n ?? 0,
    insertDevice: (d, signed, lastResort) =>
      done(
        q.query(
          `INSERT INTO devices (account, device_id, certificate, certificate_hash, signing_key, registered_at,
             signed_prekey_id, signed_prekey, last_resort_kem_id, last_resort_kem)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
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
          ],
        ),
      ),
    deleteDevice: async (account, deviceId) => {
      await q.query('DELETE FROM one_time_prekeys WHERE account = $1 AND device_id = $2', [account, deviceId]);
      await q.query('DELETE FROM kem_prekeys WHERE account = $1 AND device_id = $2', [account, deviceId]);
      await q.query('DELETE FROM devices WHERE account = $1 AND device_id = $2', [account, deviceId]);
    },
    // Called with the account locked (rules/devices.ts), after the device row is gone: its
    // mailbox_counters row went with it, so the delete trigger's counter updates find none, and
    // no send can add to the mailbox.
    purgeMailbox: async (account, deviceId, limit) => {
      const deleted = await changed(
        q.query(
          `DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE recipient_account = $1 AND recipient_device = $2
             ORDER BY seq LIMIT $3)`,
          [account, deviceId, limit],
        ),
      );
      const rest = await q.query('SELECT 1 FROM messages WHERE recipient_account = $1 AND recipient_device = $2 LIMIT 1', [
        account,
        deviceId,
      ]);
      return { deleted, left: (rest.rowCount ?? 0) > 0 };
    },
    markPurging: (account, deviceId) =>
      done(q.query('INSERT INTO purging_mailboxes (account, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [account, deviceId])),
    isPurging: async (account, deviceId) =>
      ((await q.query('SELECT 1 FROM purging_mailboxes WHERE account = $1 AND device_id = $2', [account, deviceId])).rowCount ?? 0) > 0,
    endPurge: (account, deviceId) =>
      done(q.query('DELETE FROM purging_mailboxes WHERE account = $1 AND device_id = $2', [account, deviceId])),
    nextPurging: () =>
      first(
        q.query<{ account: Buffer; device_id: number }>(
          'SELECT account, device_id FROM purging_mailboxes ORDER BY account, device_id LIMIT 1',
        ),
      ),
    deviceList: (account) =>
      first(q.query<DeviceListRow>('SELECT revision, list, updated_at FROM device_lists WHERE account = $1', [account])),
    putDeviceList: (account, revision, list, now) =>
      done(
        q.query(
          `INSERT INTO device_lists (account, revision, list, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account) DO UPDATE SET revision = excluded.revision, list = excluded.list, updated_at = excluded.updated_at`,
          [account, revision, list, now],
        ),
      ),

    keyState: (account, deviceId) =>
      first(
        q.query<KeyStateRow>(
          `SELECT signed_prekey_id, last_resort_kem_id, one_time_handed_max, kem_handed_max FROM devices
           WHERE account = $1 AND device_id = $2 FOR UPDATE`,
          [account, deviceId],
        ),
      ),
    setSignedPreKey: (account, deviceId, k, v2) =>
      done(
        q.query(
          'UPDATE devices SET signed_prekey_id = $1, signed_prekey = $2, signed_prekey_v2 = $3 WHERE account = $4 AND device_id = $5',
          [k.id, buf(k.encoded), v2 ? buf(v2.encoded) : null, account, deviceId],
        ),
      ),
    setLastResortKemPreKey: (account, deviceId, k) =>
      done(
        q.query('UPDATE devices SET last_resort_kem_id = $1, last_resort_kem = $2 WHERE account = $3 AND device_id = $4', [
          k.id,
          buf(k.encoded),
          account,
          deviceId,
        ]),
      ),
    insertPreKeys: (p, account, deviceId, keys) =>
      changed(
        q.query(
          `INSERT INTO ${POOL_TABLE[p]} (account, device_id, id, key) SELECT $1, $2, t.id, t.key
           FROM unnest($3::bigint[], $4::bytea[]) AS t(id, key) ON CONFLICT DO NOTHING`,
          [account, deviceId, keys.map((k) => k.id), keys.map((k) => buf(k.encoded))],
        ),
      ),
    preKeyCounts: (account, deviceId) => preKeyCounts(q, account, deviceId),
    bundleParts: (account, deviceId) =>
      all(
        q.query<BundleRow>(
          `SELECT device_id, certificate, signed_prekey, signed_prekey_v2, last_resort_kem FROM devices
           WHERE account = $1 AND ($2::bigint IS NULL OR device_id = $2) ORDER BY device_id FOR UPDATE`,
          [account, deviceId === 'all' ? null : deviceId],
        ),
      ),
    lowestPreKey: (p, account, deviceId) =>
      first(
        q.query<{ id: number; key: Buffer }>(
          `SELECT id, key FROM ${POOL_TABLE[p]} WHERE account = $1 AND device_id = $2 ORDER BY id LIMIT 1`,
          [account, deviceId],
        ),
      ),
    takePreKey: async (p, account, deviceId, id) => {
      await q.query(`DELETE FROM ${POOL_TABLE[p]} WHERE account = $1 AND device_id = $2 AND id = $3`, [account, deviceId, id]);
      await q.query(`UPDATE devices SET ${POOL_MARK[p]} = GREATEST(${POOL_MARK[p]}, $1) WHERE account = $2 AND device_id = $3`, [
        id,
        account,
        deviceId,
      ]);
    },
    lockBuckets: async (keys, capacities, now) => {
      // Missing buckets are created full first, so the SELECT below locks a row
      // for every key (locking a missing row would let two claims both spend a new bucket).
      await q.query(
        `INSERT INTO budgets (key, tokens, updated, full_at) SELECT t.key, t.tokens, $3, $3 FROM unnest($1::text[], $2::float8[]) AS t(key, tokens)
         ORDER BY t.key ON CONFLICT (key) DO NOTHING`,
        [keys, keys.map((k) => capacities.get(k) ?? 0), now],
      );
      return all(
        q.query<BucketRow>('SELECT key, tokens, updated FROM budgets WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE', [keys]),
      );
    },
    putBuckets: (writes) =>
      done(
        q.query(
          `UPDATE budgets b SET tokens = t.tokens, updated = t.updated, full_at = t.full_at
           FROM unnest($1::text[], $2::float8[], $3::bigint[], $4::bigint[]) AS t(key, tokens, updated, full_at) WHERE b.key = t.key`,
          [writes.map((w) => w.key), writes.map((w) => w.tokens), writes.map((w) => w.updated), writes.map((w) => w.fullAt)],
        ),
      ),

    takeTokens: (limit, now, takes) => takeTokensOn(q, limit, now, takes),
    returnTokens: (limit, now, takes) => returnTokensOn(q, limit, now, takes),

    lockMailboxes: (accounts) =>
      done(
        q.query(
          prepared('lock_mailboxes', 'SELECT 1 FROM devices WHERE account = ANY($1::bytea[]) ORDER BY account, device_id FOR UPDATE', [
            accounts,
          ]),
        ),
      ),
    recipientDevices: (accounts, sender) =>
      all(
        q.query<RecipientRow>(
          prepared(
            'recipient_devices',
            `SELECT d.account, d.device_id, d.certificate_hash,
             coalesce(c.queued_messages, 0)::bigint AS queued_messages, coalesce(c.queued_bytes, 0)::bigint AS queued_bytes,
             coalesce(s.messages, 0)::bigint AS sender_messages, coalesce(s.bytes, 0)::bigint AS sender_bytes
           FROM devices d LEFT JOIN mailbox_counters c ON c.account = d.account AND c.device_id = d.device_id
             LEFT JOIN mailbox_shares s
             ON s.recipient_account = d.account AND s.recipient_device = d.device_id AND s.sender_account = $2
           WHERE d.account = ANY($1::bytea[]) ORDER BY d.account, d.device_id`,
            [accounts, sender],
          ),
        ),
      ),
    knownClientIds: async (sender, envelopes) => {
      const { rows } = await q.query<{ pos: number }>(
        prepared(
          'known_client_ids',
          `SELECT t.pos FROM unnest($3::bytea[], $4::bigint[], $5::text[]) WITH ORDINALITY AS t(recipient_account, recipient_device, client_id, pos)
         JOIN sent_ids s ON s.sender_account = $1 AND s.sender_device = $2 AND s.recipient_account = t.recipient_account
           AND s.recipient_device = t.recipient_device AND s.client_id = t.client_id`,
          [
            buf(sender.accountKey),
            sender.deviceId,
            envelopes.map((e) => buf(e.recipient.accountKey)),
            envelopes.map((e) => e.recipient.deviceId),
            envelopes.map((e) => e.clientId),
          ],
        ),
      );
      const known = envelopes.map(() => false);
      for (const r of rows) known[r.pos - 1] = true;
      return known;
    },
    purgeExpired: (devices, now) =>
      done(
        q.query(
          `DELETE FROM messages m USING unnest($1::bytea[], $2::bigint[]) AS t(ra, rd)
           WHERE m.recipient_account = t.ra AND m.recipient_device = t.rd AND m.expires_at <= $3`,
          [devices.map((d) => buf(d.accountKey)), devices.map((d) => d.deviceId), now],
        ),
      ),
    insertMessages: async (sender, envelopes, now, expiresAt) => {
      // Both statements issued at once (one flight in pipeline mode).
      // ORDER BY the position: seqs follow the order of the request.
      const messages = q.query<InsertedRow>(
        prepared(
          live ? 'insert_messages_live' : 'insert_messages',
          `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at, envelope,
           delivery)
         SELECT t.ra, t.rd, $1, $2, t.cid, $3, $4, t.env, t.dl
         FROM unnest($5::bytea[], $6::bigint[], $7::text[], $8::bytea[], $9::bytea[]) WITH ORDINALITY AS t(ra, rd, cid, env, dl, pos)
         ORDER BY t.pos${live ? returningPrevious('$3') : ''}`,
          [
            buf(sender.accountKey),
            sender.deviceId,
            now,
            expiresAt,
            envelopes.map((e) => buf(e.recipient.accountKey)),
            envelopes.map((e) => e.recipient.deviceId),
            envelopes.map((e) => e.clientId),
            envelopes.map((e) => buf(e.envelope)),
            envelopes.map((e) => (e.delivery === undefined ? null : buf(e.delivery))),
          ],
        ),
      );
      await settleInOrder(messages, insertSentIds(q, sender, envelopes, expiresAt));
      if (handed) {
        for (const [i, r] of insertedInOrder(await messages).entries()) {
          const e = envelopes[i] as OutgoingEnvelope;
          handed.push(committed(e, r.previous_seq, r.seq, sender, now, expiresAt, e.envelope));
        }
      }
    },
    insertFanout: async (sender, recipients, envelope, now, expiresAt) => {
      // The payload and its mailbox rows in one statement (the rows need its
      // id), the idempotency records beside it: one flight in pipeline mode.
      // ORDER BY the position: seqs follow the order of the request.
      const rows = q.query<InsertedRow>(
        prepared(
          live ? 'insert_fanout_live' : 'insert_fanout',
          `WITH p AS (INSERT INTO payloads (envelope, refs, expires_at) VALUES ($10, $11, $5) RETURNING id)
         INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
           envelope, payload_id, payload_bytes, delivery)
         SELECT t.ra, t.rd, $1, $2, $3, $4, $5, ''::bytea, (SELECT id FROM p), $6, t.dl
         FROM unnest($7::bytea[], $8::bigint[], $9::bytea[]) WITH ORDINALITY AS t(ra, rd, dl, pos)
         ORDER BY t.pos${live ? returningPrevious('$4') : ''}`,
          [
            buf(sender.accountKey),
            sender.deviceId,
            recipients[0]?.clientId ?? '',
            now,
            expiresAt,
            envelope.length,
            recipients.map((e) => buf(e.recipient.accountKey)),
            recipients.map((e) => e.recipient.deviceId),
            recipients.map((e) => (e.delivery === undefined ? null : buf(e.delivery))),
            buf(envelope),
            recipients.length,
          ],
        ),
      );
      await settleInOrder(rows, insertSentIds(q, sender, recipients, expiresAt));
      if (handed) {
        for (const [i, r] of insertedInOrder(await rows).entries()) {
          handed.push(committed(recipients[i] as OutgoingEnvelope, r.previous_seq, r.seq, sender, now, expiresAt, envelope));
        }
      }
    },
    // Sent after the commit (`commitWithWakeUps`), not inside the transaction.
    notifyMailboxes: (devices) => {
      wakeUps.push(...devices);
    },
    insertSealedGroup: async (rows, payload, now, expiresAt) => {
      const stored = await first(
        q.query<{ id: number }>('INSERT INTO payloads (envelope, refs, expires_at) VALUES ($1, $2, $3) RETURNING id', [
          buf(payload),
          rows.length,
          expiresAt,
        ]),
      );
      // Each row: its device's seal, the payload by reference; the sender slot holds the token hash.
      const inserted = await q.query<InsertedRow>(
        `INSERT INTO messages (recipient_account, recipient_device, sender_account, sender_device, client_id, server_ts, expires_at,
           envelope, payload_id, payload_bytes, delivery)
         SELECT t.ra, t.rd, t.sa, t.sd, t.cid, $1, $2, t.env, $3, $4, t.dl
         FROM unnest($5::bytea[], $6::bigint[], $7::bytea[], $8::bigint[], $9::text[], $10::bytea[], $11::bytea[])
           WITH ORDINALITY AS t(ra, rd, sa, sd, cid, env, dl, pos)
         ORDER BY t.pos${live ? returningPrevious('$1') : ''}`,
        [
          now,
          expiresAt,
          stored?.id,
          payload.length,
          rows.map((r) => buf(r.envelope.recipient.accountKey)),
          rows.map((r) => r.envelope.recipient.deviceId),
          rows.map((r) => buf(r.sender.accountKey)),
          rows.map((r) => r.sender.deviceId),
          rows.map((r) => r.envelope.clientId),
          rows.map((r) => buf(r.envelope.envelope)),
          rows.map((r) => (r.envelope.delivery === undefined ? null : buf(r.envelope.delivery))),
        ],
      );
      await q.query(
        `INSERT INTO sent_ids (sender_account, sender_device, recipient_account, recipient_device, client_id, expires_at)
         SELECT t.sa, t.sd, t.ra, t.rd, t.cid, $1 FROM unnest($2::bytea[], $3::bigint[], $4::bytea[], $5::bigint[], $6::text[])
           AS t(sa, sd, ra, rd, cid)`,
        [
          expiresAt,
          rows.map((r) => buf(r.sender.accountKey)),
          rows.map((r) => r.sender.deviceId),
          rows.map((r) => buf(r.envelope.recipient.accountKey)),
          rows.map((r) => r.envelope.recipient.deviceId),
          rows.map((r) => r.envelope.clientId),
        ],
      );
      if (handed) {
        for (const [i, r] of insertedInOrder(inserted).entries()) {
          const { sender, envelope: e } = rows[i] as (typeof rows)[number];
          handed.push(committed(e, r.previous_seq, r.seq, sender, now, expiresAt, sealedGroupEnvelope(e.envelope, payload)));
        }
      }
    },
    ackMessages: (recipient, seqs) => deleteAcknowledged(q, recipient, seqs),

    lockUploads: (owner) => advisoryLock(q, 'parley-upload', owner),
    attachmentByRequest: (owner, deviceId, key) =>
      first(
        q.query<AttachmentRow>('SELECT * FROM attachments WHERE owner_account = $1 AND owner_device = $2 AND request_key = $3', [
          owner,
          deviceId,
          key,
        ]),
      ),
    uploadUsage: async (owner, deviceId): Promise<UploadUsage> => {
      const row = await first(
        q.query<UploadUsage>(
          `SELECT (SELECT count(*) FROM attachments WHERE owner_account = $1 AND owner_device = $2 AND NOT complete) AS pending,
             (SELECT coalesce(sum(bytes), 0) FROM attachment_usage WHERE owner_account = $1 AND owner_device = $2)::bigint AS "deviceBytes",
             (SELECT coalesce(sum(bytes), 0) FROM attachment_usage WHERE owner_account = $1)::bigint AS "accountBytes"`,
          [owner, deviceId],
        ),
      );
      return row ?? { pending: 0, deviceBytes: 0, accountBytes: 0 };
    },
    purgeExpiredUploads: async (owner, now) =>
      (
        await all(
          q.query<{ id: string }>(
            `DELETE FROM attachments WHERE id IN
               (SELECT id FROM attachments WHERE owner_account = $1 AND expires_at <= $2 LIMIT ${SWEEP_BATCH}) RETURNING id`,
            [owner, now],
          ),
        )
      ).map((r) => r.id),
    insertAttachment: (r, key) =>
      done(
        q.query(
          `INSERT INTO attachments (id, owner_account, owner_device, size, received, complete, created_at, expires_at, request_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [r.id, buf(r.owner.accountKey), r.owner.deviceId, r.size, r.received, r.complete, r.createdAt, r.expiresAt, key],
        ),
      ),
    attachment: (id) => first(q.query<AttachmentRow>('SELECT * FROM attachments WHERE id = $1 FOR UPDATE', [id])),
    setUploadProgress: (id, received, complete, expiresAt) =>
      done(
        q.query('UPDATE attachments SET received = $2, complete = $3, expires_at = $4 WHERE id = $1', [id, received, complete, expiresAt]),
      ),
    deleteAttachment: async (id) => (await changed(q.query('DELETE FROM attachments WHERE id = $1', [id]))) > 0,

    insertSeenRequest: async (signer, nonce, expiresAt, held) => {
      // With `held` (a signer authenticated from SignerCache), also confirms it: its device row
      // must still have that certificate at this statement, else nothing is stored.
      const r = await first(
        q.query<{ signer: boolean; inserted: boolean }>(
          prepared(
            'seen_insert',
            `WITH signer AS (SELECT $5::bytea IS NULL
                 OR EXISTS (SELECT 1 FROM devices WHERE account = $1 AND device_id = $2 AND certificate_hash = $5) AS ok),
               ins AS (INSERT INTO seen_requests (account, device_id, nonce, expires_at)
                 SELECT $1, $2, $3, $4 FROM signer WHERE signer.ok ON CONFLICT DO NOTHING RETURNING 1)
             SELECT (SELECT ok FROM signer) AS signer, EXISTS (SELECT 1 FROM ins) AS inserted`,
            [buf(signer.accountKey), signer.deviceId, nonce, expiresAt, held === undefined ? null : buf(held)],
          ),
        ),
      );
      if (!r?.signer) {
        signers.forget(signer.accountKey, signer.deviceId);
        throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown device');
      }
      return r.inserted;
    },
    bumpSeenSlot: (signer, slot) =>
      done(
        q.query(
          prepared(
            'seen_slot',
            `INSERT INTO seen_request_slots (account, device_id, slot, n) VALUES ($1, $2, $3, 1)
           ON CONFLICT (account, device_id, slot) DO UPDATE SET n = seen_request_slots.n + 1`,
            [buf(signer.accountKey), signer.deviceId, slot],
          ),
        ),
      ),
    seenCount: async (signer, fromSlot) =>
      (
        await first(
          q.query<{ n: number }>(
            prepared(
              'seen_count',
              'SELECT coalesce(sum(n), 0)::bigint AS n FROM seen_request_slots WHERE account = $1 AND device_id = $2 AND slot >= $3',
              [buf(signer.accountKey), signer.deviceId, fromSlot],
            ),
          ),
        )
      )?.n ?? 0,

    // Each sweep statement deletes at most `limit` rows (the sweep write's bound, rules/housekeeping.ts).
    sweepMessages: async (now, limit) => {
      const expired = await all(
        q.query<{ seq: number }>('SELECT seq FROM messages WHERE expires_at <= $1 ORDER BY seq LIMIT $2', [now, limit]),
      );
      if (expired.length === 0) return 0;
      const seqs = expired.map((r) => r.seq);
      // The delete trigger updates the recipients' counters: lock their
      // rows first, in the global order, so a concurrent send cannot deadlock with it.
      await q.query(
        `SELECT 1 FROM devices WHERE (account, device_id) IN
           (SELECT recipient_account, recipient_device FROM messages WHERE seq = ANY($1::bigint[]))
         ORDER BY account, device_id FOR UPDATE`,
        [seqs],
      );
      return changed(q.query('DELETE FROM messages WHERE seq = ANY($1::bigint[])', [seqs]));
    },
    sweepSentIds: (now, limit) =>
      changed(q.query('DELETE FROM sent_ids WHERE ctid IN (SELECT ctid FROM sent_ids WHERE expires_at <= $1 LIMIT $2)', [now, limit])),
    sweepAttachments: async (now, limit) =>
      (
        await all(
          q.query<{ id: string }>(
            'DELETE FROM attachments WHERE id IN (SELECT id FROM attachments WHERE expires_at <= $1 LIMIT $2) RETURNING id',
            [now, limit],
          ),
        )
      ).map((r) => r.id),
    sweepSeenRequests: async (now, beforeSlot, limit) => {
      const n = await changed(
        q.query(
          `DELETE FROM seen_requests WHERE (account, device_id, nonce) IN
             (SELECT account, device_id, nonce FROM seen_requests WHERE expires_at <= $1 LIMIT $2)`,
          [now, limit],
        ),
      );
      await q.query('DELETE FROM seen_request_slots WHERE slot < $1', [beforeSlot]);
      return n;
    },
    sweepBudgets: (now, limit) =>
      changed(q.query('DELETE FROM budgets WHERE key IN (SELECT key FROM budgets WHERE full_at <= $1 LIMIT $2)', [now, limit])),
    insertFrankKey: (keyId, key, destroyAt) =>
      done(q.query('INSERT INTO frank_keys (key_id, key, destroy_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [keyId, key, destroyAt])),
    frankKey: async (keyId) => (await first(q.query<{ key: Buffer }>('SELECT key FROM frank_keys WHERE key_id = $1', [keyId])))?.key,
    sweepFrankKeys: (now) =>
      changed(
        q.query(`DELETE FROM frank_keys WHERE key_id IN (SELECT key_id FROM frank_keys WHERE destroy_at <= $1 LIMIT ${SWEEP_BATCH})`, [
          now,
        ]),
      ),
    countReports: async (reporter, since) =>
      Number(
        (
          await first(
            q.query<{ n: string }>('SELECT count(*) AS n FROM reports WHERE reporter_account = $1 AND received_at > $2', [reporter, since]),
          )
        )?.n ?? 0,
      ),
    insertReport: async (r) => {
      const row = await first(
        q.query<{ id: string }>(
          `INSERT INTO reports (reporter_account, reporter_device, envelope_id, received_at, report) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (reporter_account, envelope_id) DO NOTHING RETURNING id`,
          [buf(r.reporter.accountKey), r.reporter.deviceId, buf(r.envelopeId), r.receivedAt, buf(r.report)],
        ),
      );
      return row === undefined ? false : Number(row.id);
    },
  };
}

function readQueries(pool: pg.Pool): ReadQueries {
  return {
    ...tokenReads(pool),
    device: (account, deviceId) =>
      first(
        pool.query<DeviceRow>(
          prepared('device', `SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = $1 AND device_id = $2`, [account, deviceId]),
        ),
      ),
    devices: (account) =>
      all(pool.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE account = $1 ORDER BY device_id`, [account])),
    deviceList: (account) =>
      first(pool.query<DeviceListRow>('SELECT revision, list, updated_at FROM device_lists WHERE account = $1', [account])),
    preKeyCounts: (account, deviceId) => preKeyCounts(pool, account, deviceId),
    messages: (r, afterSeq, limit, now) =>
      all(
        pool.query<MessageRow>(
          prepared(
            'fetch_messages',
            // A fan-out's row carries no envelope of its own, a sealed group row only its seal: rows.ts joins the payload.
            `SELECT m.seq, m.sender_account, m.sender_device, m.client_id, m.server_ts, m.expires_at, m.delivery,
             m.envelope, p.envelope AS payload
           FROM messages m LEFT JOIN payloads p ON p.id = m.payload_id
           WHERE m.recipient_account = $1 AND m.recipient_device = $2 AND m.seq > $3 AND m.expires_at > $4 ORDER BY m.seq LIMIT $5`,
            [buf(r.accountKey), r.deviceId, afterSeq, now, limit],
          ),
        ),
      ),
    attachment: (id) => first(pool.query<AttachmentRow>('SELECT * FROM attachments WHERE id = $1', [id])),
    quotaPressure: async (t) =>
      (await first(
        pool.query<QuotaPressure>(
          `SELECT
             (SELECT count(*) FROM mailbox_counters WHERE queued_messages >= $1) AS "mailboxMessages",
             (SELECT count(*) FROM mailbox_counters WHERE queued_bytes >= $2) AS "mailboxBytes",
             (SELECT count(*) FROM mailbox_shares WHERE messages >= $3 OR bytes >= $4) AS "senderShares",
             (SELECT count(*) FROM attachment_usage WHERE bytes >= $5) AS "attachmentBytesDevice",
             (SELECT count(*) FROM (SELECT owner_account FROM attachment_usage GROUP BY owner_account HAVING sum(bytes) >= $6) a)
               AS "attachmentBytesAccount"`,
          [t.mailboxMessages, t.mailboxBytes, t.senderMessages, t.senderBytes, t.attachmentBytesDevice, t.attachmentBytesAccount],
        ),
      )) as QuotaPressure,
    stats: async (): Promise<StorageStats> => {
      const s = (await first(
        pool.query<{ devices: number; messages: number; bytes: number; attachments: number; payloads: number }>(
          `SELECT (SELECT count(*) FROM devices) AS devices, coalesce(sum(queued_messages), 0)::bigint AS messages,
             coalesce(sum(queued_bytes), 0)::bigint AS bytes, (SELECT count(*) FROM attachments) AS attachments,
             (SELECT count(*) FROM payloads) AS payloads
           FROM mailbox_counters`,
        ),
      )) ?? { devices: 0, messages: 0, bytes: 0, attachments: 0, payloads: 0 };
      return { devices: s.devices, queuedMessages: s.messages, queuedBytes: s.bytes, attachments: s.attachments, payloads: s.payloads };
    },
    ping: () => done(pool.query('SELECT 1')),
    frankKey: async (keyId) => (await first(pool.query<{ key: Buffer }>('SELECT key FROM frank_keys WHERE key_id = $1', [keyId])))?.key,
    reportedBefore: async (reporter, envelopeId) =>
      ((await pool.query('SELECT 1 FROM reports WHERE reporter_account = $1 AND envelope_id = $2', [reporter, envelopeId])).rowCount ?? 0) >
      0,
    reports: (afterId, limit) => all(pool.query<ReportRow>('SELECT * FROM reports WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit])),
    report: (id) => first(pool.query<ReportRow>('SELECT * FROM reports WHERE id = $1', [id])),
  };
}

class PostgresDriver implements StorageDriver {
  readonly #pool: pg.Pool;
  readonly #options: PostgresStorageOptions;
  readonly #channel: string;
  readonly #listeners = new Set<MailboxListener>();
  readonly #connections = new WeakMap<pg.PoolClient, ConnectionQueries>();
  /** Signers read for authentication (`PostgresStorage.cachedDevice`), confirmed by each replay record. */
  readonly signers = new SignerCache();
  /**
   * Names this storage in its notifications: its own sends are woken by
   * their callers in this process (RelayStorage.watchMailboxes), so the
   * listener skips them instead of fetching every mailbox a second time.
   */
  readonly #origin = originTag();
  readonly read: ReadQueries;
  #closed = false;

  constructor(pool: pg.Pool, options: PostgresStorageOptions) {
    this.#pool = pool;
    this.#options = options;
    this.#channel = options.schema ? `parley_mailbox_${options.schema}` : 'parley_mailbox';
    this.read = readQueries(pool);
  }

  /**
   * Runs the rule in one transaction and commits it. `Abort` rolls back and
   * returns its result; a lost race rolls back and runs the rule again.
   */
  async transact<T>(rule: (q: WriteQueries) => Rule<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      const conn = this.#queriesOf(client);
      let broken: Error | undefined;
      try {
        // Pipelined (the pool's connections run in pipeline mode): BEGIN
        // travels with the rule's first queries, and COMMIT with its last
        // ones (`getLast`), so a rule of two batches costs two round trips.
        // BEGIN reads and locks nothing: it fails only with its connection,
        // and then every statement behind it fails too.
        const begun = conn.q.query('BEGIN');
        const { wakeUps, handed } = conn.state;
        wakeUps.length = 0;
        if (handed) handed.length = 0;
        const listener = this.#options.onMailboxesCommitted;
        const { result, committed } = await runAsync(rule(conn.queries), {
          commitBehind: () => this.#commitWithWakeUps(conn.q, wakeUps),
        });
        await begun;
        if (!committed) await this.#commitWithWakeUps(conn.q, wakeUps);
        // Committed: this process's websockets get the rows (another process's get the NOTIFY).
        if (listener && (wakeUps.length > 0 || (handed as CommittedMessage[]).length > 0)) {
          try {
            // Copies: the connection's arrays are emptied by its next transaction.
            listener([...wakeUps], [...(handed as CommittedMessage[])]);
          } catch {
            // A listener's failure is not the send's: it is committed and will be answered.
          }
        }
        return result;
      } catch (error) {
        try {
          await conn.q.query('ROLLBACK');
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

  /** The connection's queries, built on its first transaction (a dropped connection takes them with it). */
  #queriesOf(client: pg.PoolClient): ConnectionQueries {
    let conn = this.#connections.get(client);
    if (!conn) {
      const state: TransactionState = { wakeUps: [], handed: this.#options.onMailboxesCommitted ? [] : undefined };
      const q = flightWriter(client);
      conn = { q, state, queries: writeQueries(q, state, this.signers) };
      this.#connections.set(client, conn);
    }
    return conn;
  }

  /**
   * COMMIT, then the transaction's wake-ups in a statement of its own,
   * written together (one flight). The notification is not part of the
   * durable transaction on purpose: a notifying transaction holds a
   * database-wide lock from before its commit until it ends, so notifying
   * commits cannot share a WAL flush (measured: 598 durable commits/s with
   * NOTIFY inside against 1,625 without, spec/15-scale.md §3). Its own
   * transaction is not flushed (a wake-up needs no durability), so it holds
   * that lock only briefly. It runs after the send committed, so a woken
   * process finds the envelope; if the database stops in between, every
   * listener reconnects and wakes all its websockets (MailboxListener).
   * A failed COMMIT sends a wake-up for nothing: a fetch finds nothing new.
   */
  async #commitWithWakeUps(client: Queryable, wakeUps: readonly DeviceAddress[]): Promise<void> {
    const committed = client.query('COMMIT');
    if (wakeUps.length === 0) {
      await committed;
      return;
    }
    const notified = client.query(
      prepared(
        'notify',
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
        [this.#channel, notifyPayloads(this.#origin, wakeUps)],
      ),
    );
    // Awaited (it shares the flight, so this costs no round trip), but a
    // failed notification only delays a wake-up: it must not fail the send.
    await Promise.all([committed, notified.catch(() => undefined)]);
  }

  async watchMailboxes(wake: MailboxWake): Promise<() => Promise<void>> {
    const listener = new MailboxListener(this.#options, this.#channel, this.#origin, wake);
    await listener.start();
    this.#listeners.add(listener);
    return async () => {
      this.#listeners.delete(listener);
      await listener.stop();
    };
  }

  /** One statement for every take (see `takeTokensOn`), outside any transaction. */
  takeTokens(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<TokenTakeResult[]> {
    return takeTokensOn(this.#pool, limit, now, takes);
  }

  /**
   * An acknowledgement: its one DELETE as a statement of its own, which the
   * server runs as a transaction of its own, committed (synchronous_commit=on)
   * before it answers, as `transact` would, without the BEGIN and COMMIT
   * around it: one statement on the wire instead of three, and two fewer for
   * the server to parse and run per acknowledgement. A lost race (two
   * acknowledgements releasing fan-out payloads in different orders) is run
   * again, as in `transact`.
   */
  async ack(recipient: DeviceAddress, seqs: readonly number[]): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await deleteAcknowledged(this.#pool, recipient, seqs);
      } catch (error) {
        if (!isRetryable(error) || attempt >= MAX_ATTEMPTS) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
    }
  }

  returnTokens(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<void> {
    return returnTokensOn(this.#pool, limit, now, takes);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#listeners].map((l) => l.stop()));
    this.#listeners.clear();
    await this.#pool.end();
  }
}

export class PostgresStorage extends RuleStorage {
  readonly #driver: PostgresDriver;
  readonly wakesOnCommit: boolean;

  private constructor(driver: PostgresDriver, wakesOnCommit: boolean) {
    super(driver);
    this.#driver = driver;
    this.wakesOnCommit = wakesOnCommit;
  }

  /** Connects, creates the schema if asked, and migrates it. */
  static async open(options: PostgresStorageOptions): Promise<PostgresStorage> {
    if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,40}$/.test(options.schema)) {
      throw new Error('PostgreSQL schema name must be 1-41 lowercase letters, digits or _ (not starting with a digit)');
    }
    // Pipeline mode: queries issued together travel together (one round
    // trip); the server still runs them one after the other, in order.
    const pool = new pg.Pool({ ...connectionConfig(options), max: options.poolSize ?? 10, pipeline: true } as pg.PoolConfig);
    // An idle pooled connection that the server drops must not crash the process.
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        await migratePostgres(client, options.schema);
        await createTokenTables(client);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresStorage(new PostgresDriver(pool, options), options.onMailboxesCommitted !== undefined);
  }

  /** Reads the device, and holds it for `cachedDevice` (or drops what was held when it is gone). */
  override async getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const row = await super.getDevice(address);
    this.#driver.signers.set(address, row);
    return row;
  }

  /** One autocommit statement (`PostgresDriver.ack`): the rule is that one DELETE. */
  override ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Promise<number> {
    if (seqs.length === 0) return Promise.resolve(0);
    return this.#driver.ack(recipient, seqs);
  }

  /** The device as `getDevice` last read it here; every replay record confirms it (SignerCache). */
  cachedDevice(address: DeviceAddress): DeviceRecord | undefined {
    return this.#driver.signers.get(address);
  }

  /**
   * Wakes this process's websockets for sends committed by any process that
   * shares the database. After the LISTEN connection was lost and came back,
   * `wake('all')` is called once: notifications in between are gone.
   */
  watchMailboxes(wake: MailboxWake): Promise<() => Promise<void>> {
    return this.#driver.watchMailboxes(wake);
  }

  /** Rate budgets shared by every process on the database (limits/rate-budgets.ts, spec/09-relay.md §7.3). */
  takeTokens(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<TokenTakeResult[]> {
    return this.#driver.takeTokens(limit, now, takes);
  }

  returnTokens(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<void> {
    return this.#driver.returnTokens(limit, now, takes);
  }
}

// takeTokens/returnTokens: $2 capacity, $3 now, $4 window (ms); a stored bucket's level at $3
// (limits/prekey-budget.ts tokensAt): refilled continuously, never above capacity, never backwards.
const LEVEL = 'least($2::float8, b.tokens + greatest(0, $3::bigint - b.updated) * $2::float8 / $4::float8)';

// ---- mailbox notifications ---------------------------------------------

/**
 * `origin|hex(account):deviceId,…`: the sending storage's tag, then the
 * mailboxes, each payload under the NOTIFY limit.
 */
function notifyPayloads(origin: string, addresses: readonly DeviceAddress[]): string[] {
  const payloads: string[] = [];
  const head = `${origin}|`;
  let current = '';
  for (const a of addresses) {
    const entry = `${hex(a.accountKey)}:${a.deviceId}`;
    if (current && head.length + current.length + entry.length + 1 > NOTIFY_PAYLOAD_BYTES) {
      payloads.push(head + current);
      current = '';
    }
    current = current ? `${current},${entry}` : entry;
  }
  if (current) payloads.push(head + current);
  return payloads;
}

/** The payload's origin tag (empty from a relay that predates it) and its mailboxes. */
function parsePayload(payload: string): { origin: string; addresses: DeviceAddress[] } {
  const bar = payload.indexOf('|');
  const origin = bar < 0 ? '' : payload.slice(0, bar);
  const out: DeviceAddress[] = [];
  for (const entry of payload.slice(bar + 1).split(',')) {
    const m = /^([0-9a-f]{64}):(\d{1,10})$/.exec(entry);
    if (m) out.push({ accountKey: Uint8Array.from(Buffer.from(m[1] as string, 'hex')), deviceId: Number(m[2]) });
  }
  return { origin, addresses: out };
}

/** One dedicated LISTEN connection, reconnected with backoff when it drops. */
class MailboxListener {
  readonly #options: PostgresStorageOptions;
  readonly #channel: string;
  readonly #origin: string;
  readonly #wake: MailboxWake;
  #client: pg.Client | undefined;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #backoffMs = 250;

  constructor(options: PostgresStorageOptions, channel: string, origin: string, wake: MailboxWake) {
    this.#options = options;
    this.#channel = channel;
    this.#origin = origin;
    this.#wake = wake;
  }

  async start(): Promise<void> {
    const client = new pg.Client({ ...connectionConfig(this.#options), application_name: LISTENER_APPLICATION_NAME });
    client.on('notification', (n) => {
      if (n.channel !== this.#channel || !n.payload) return;
      const { origin, addresses } = parsePayload(n.payload);
      // This storage's own sends: their caller already woke this process's websockets.
      if (origin !== this.#origin && addresses.length) this.#wake(addresses);
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
