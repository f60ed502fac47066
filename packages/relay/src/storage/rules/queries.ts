/**
 * What a storage backend must provide: queries, locks and transactions, and
 * no rules. The rules (storage/rules/*.ts) decide what is allowed and in
 * which order things happen; a backend only answers each question. A third
 * backend implements these two interfaces and `StorageDriver`, and passes
 * test/storage-contract.ts.
 *
 * Every `WriteQueries` method runs inside the rule's transaction. Methods
 * that read a row the rule is about to change lock it where the backend has
 * row locks (PostgreSQL: FOR UPDATE, in the global order of
 * storage/postgres.ts); a backend whose writes are serial anyway (SQLite's
 * single writer) ignores the lock methods.
 */
import type { BucketRow, BucketWrite } from '../../limits/prekey-budget.ts';
import type { AttachmentRow, BundleRow, DeviceListRow, DeviceRow, KeyStateRow, MessageRow, ReportRow } from '../rows.ts';
import type {
  AttachmentRecord,
  BucketLimit,
  DeviceAddress,
  MailboxWake,
  OutgoingEnvelope,
  PreKeyCounts,
  QuotaPressure,
  QuotaThresholds,
  ReportRecord,
  StorageStats,
  StoredPreKey,
  TokenTake,
  TokenTakeResult,
} from '../types.ts';
import type { RecipientDeviceState } from './send-checks.ts';
import type { Maybe, Rule } from './step.ts';
import type { TokenQueries, TokenReadQueries } from './tokens.ts';

export type PreKeyPool = 'oneTime' | 'kem';

/** One recipient device's row under the send's lock, with its account. */
export type RecipientRow = RecipientDeviceState & { readonly account: Buffer };

/** Stored-bytes usage of an uploading device and its account. */
export interface UploadUsage {
  readonly pending: number;
  readonly deviceBytes: number;
  readonly accountBytes: number;
}

/** Every query a rule may run inside its transaction (the token tables' are rules/tokens.ts's). */
export interface WriteQueries extends TokenQueries {
  // ---- devices
  /** Serialises changes to one account's devices and device list (across processes). */
  lockAccount(account: Buffer): Maybe<void>;
  isRevoked(certificateHash: Buffer): Maybe<boolean>;
  revoke(certificateHash: Buffer, now: number): Maybe<void>;
  /** The device's current certificate hash (row locked), or undefined. */
  certificateHashOf(account: Buffer, deviceId: number): Maybe<Buffer | undefined>;
  countDevices(account: Buffer): Maybe<number>;
  insertDevice(device: DeviceRow, signedPreKey: StoredPreKey, lastResortKemPreKey: StoredPreKey): Maybe<void>;
  /** Deletes the device row and its prekeys (not its mailbox: purgeMailbox, in bounded steps). */
  deleteDevice(account: Buffer, deviceId: number): Maybe<void>;
  /** Deletes up to `limit` rows of the mailbox, whatever their seq, lowest first: how many, and whether rows are left. */
  purgeMailbox(account: Buffer, deviceId: number, limit: number): Maybe<{ deleted: number; left: boolean }>;
  /** Records that the mailbox of a device that no longer exists still holds rows to purge. */
  markPurging(account: Buffer, deviceId: number): Maybe<void>;
  /** Whether the mailbox is recorded as still being purged. */
  isPurging(account: Buffer, deviceId: number): Maybe<boolean>;
  /** Forgets the record: the mailbox is empty. */
  endPurge(account: Buffer, deviceId: number): Maybe<void>;
  /** One mailbox recorded as being purged (the lowest address), or undefined. */
  nextPurging(): Maybe<{ account: Buffer; device_id: number } | undefined>;
  deviceList(account: Buffer): Maybe<DeviceListRow | undefined>;
  putDeviceList(account: Buffer, revision: number, list: Buffer, now: number): Maybe<void>;

  // ---- prekeys
  /** The device's prekey bookkeeping (row locked), or undefined for an unknown device. */
  keyState(account: Buffer, deviceId: number): Maybe<KeyStateRow | undefined>;
  /** Replaces both forms of the signed prekey together (`v2` null: the device has no v2 form). */
  setSignedPreKey(account: Buffer, deviceId: number, key: StoredPreKey, v2: StoredPreKey | null): Maybe<void>;
  setLastResortKemPreKey(account: Buffer, deviceId: number, key: StoredPreKey): Maybe<void>;
  /** Inserts keys whose id is not stored yet; returns how many were new. */
  insertPreKeys(pool: PreKeyPool, account: Buffer, deviceId: number, keys: readonly StoredPreKey[]): Maybe<number>;
  preKeyCounts(account: Buffer, deviceId: number): Maybe<PreKeyCounts | undefined>;
  /** Bundle parts of one device or all of an account's, by device id, rows locked. */
  bundleParts(account: Buffer, deviceId: number | 'all'): Maybe<BundleRow[]>;
  lowestPreKey(pool: PreKeyPool, account: Buffer, deviceId: number): Maybe<{ id: number; key: Buffer } | undefined>;
  /** Deletes the key and raises the pool's handed-out mark to its id. */
  takePreKey(pool: PreKeyPool, account: Buffer, deviceId: number, id: number): Maybe<void>;
  /**
   * The budget buckets with these keys, locked in key order. A backend with
   * row locks creates missing ones full (`capacities`) first, so that two
   * claims cannot both spend a bucket that did not exist; a missing row
   * means a full bucket either way.
   */
  lockBuckets(keys: readonly string[], capacities: ReadonlyMap<string, number>, now: number): Maybe<BucketRow[]>;
  putBuckets(writes: readonly BucketWrite[]): Maybe<void>;
  /**
   * `RelayStorage.takeTokens` inside the rule's transaction (rolled back
   * with it). Only a backend whose rate budgets live in the database has it.
   */
  takeTokens?(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Maybe<TokenTakeResult[]>;
  /** `RelayStorage.returnTokens` inside the rule's transaction. */
  returnTokens?(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Maybe<void>;

  // ---- messages
  /** Locks every device row of these accounts (before counters are read or seqs drawn). */
  lockMailboxes(accounts: readonly Buffer[]): Maybe<void>;
  /** Every device of these accounts, with queue counters and `sender`'s share of each mailbox. */
  recipientDevices(accounts: readonly Buffer[], sender: Buffer): Maybe<RecipientRow[]>;
  /** Which of these (recipient device, client id) pairs this sender device already sent: one flag per envelope. */
  knownClientIds(sender: DeviceAddress, envelopes: readonly OutgoingEnvelope[]): Maybe<boolean[]>;
  /** Deletes the expired envelopes of these mailboxes. */
  purgeExpired(devices: readonly DeviceAddress[], now: number): Maybe<void>;
  /** Stores the envelopes (seqs in array order) and their idempotency records. */
  insertMessages(sender: DeviceAddress, envelopes: readonly OutgoingEnvelope[], now: number, expiresAt: number): Maybe<void>;
  /**
   * Stores `envelope` once as a payload referenced by one mailbox row per
   * recipient (seqs in array order, each row counting the payload's size
   * against its mailbox), and the idempotency records. The payload is
   * deleted with its last mailbox row (the schema's delete trigger).
   */
  insertFanout(
    sender: DeviceAddress,
    recipients: readonly OutgoingEnvelope[],
    envelope: Uint8Array,
    now: number,
    expiresAt: number,
  ): Maybe<void>;
  /**
   * Stores `payload` once, referenced by one mailbox row per entry (seqs in
   * array order); each row holds its own envelope (a device's seal) and counts
   * the payload's size as well; and the idempotency records, per entry's sender.
   */
  insertSealedGroup(
    rows: readonly { readonly sender: DeviceAddress; readonly envelope: OutgoingEnvelope }[],
    payload: Uint8Array,
    now: number,
    expiresAt: number,
  ): Maybe<void>;
  /** Tells every relay process sharing the database that these mailboxes have news (after commit). */
  notifyMailboxes(devices: readonly DeviceAddress[]): Maybe<void>;
  ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Maybe<number>;

  // ---- attachments
  /** Serialises uploads started by one account (pending limit, quotas, request keys). */
  lockUploads(owner: Buffer): Maybe<void>;
  attachmentByRequest(owner: Buffer, deviceId: number, requestKey: Buffer): Maybe<AttachmentRow | undefined>;
  uploadUsage(owner: Buffer, deviceId: number): Maybe<UploadUsage>;
  /** Deletes the account's attachments expired at `now` (a bounded batch); returns their ids. */
  purgeExpiredUploads(owner: Buffer, now: number): Maybe<string[]>;
  insertAttachment(record: AttachmentRecord, requestKey: Buffer): Maybe<void>;
  /** The attachment row, locked. */
  attachment(id: string): Maybe<AttachmentRow | undefined>;
  setUploadProgress(id: string, received: number, complete: boolean, expiresAt: number): Maybe<void>;
  deleteAttachment(id: string): Maybe<boolean>;

  // ---- replay records
  /** False when this signer already used this nonce. */
  /** `signerCertificateHash`: throw AUTH_UNKNOWN_DEVICE (storing nothing) unless the signer's device has it (SeenRequest). */
  insertSeenRequest(signer: DeviceAddress, nonce: Buffer, expiresAt: number, signerCertificateHash?: Uint8Array): Maybe<boolean>;
  /** Counts one more record in the signer's slot (locking the slot row). */
  bumpSeenSlot(signer: DeviceAddress, slot: number): Maybe<void>;
  /** Records the signer holds in slots from `fromSlot` on. */
  seenCount(signer: DeviceAddress, fromSlot: number): Maybe<number>;

  // ---- franking (spec/14-franking.md): key rows and the report queue
  /** Stores FK[keyId] unless a key for that period exists (insert-if-absent: concurrent processes agree). */
  insertFrankKey(keyId: number, key: Buffer, destroyAt: number): Maybe<void>;
  frankKey(keyId: number): Maybe<Buffer | undefined>;
  /** Deletes the frank keys whose `destroyAt` has passed (a bounded batch). */
  sweepFrankKeys(now: number): Maybe<number>;
  /** Reports this reporter account filed since `since`. */
  countReports(reporter: Buffer, since: number): Maybe<number>;
  /** False when (reporter account, envelope id) is already queued (nothing stored); else the new report's id. */
  insertReport(record: ReportRecord): Maybe<number | false>;

  // ---- housekeeping: each deletes at most `limit` expired rows (housekeeping.ts SWEEP_CHUNK_ROWS)
  sweepMessages(now: number, limit: number): Maybe<number>;
  sweepSentIds(now: number, limit: number): Maybe<number>;
  sweepAttachments(now: number, limit: number): Maybe<string[]>;
  sweepSeenRequests(now: number, beforeSlot: number, limit: number): Maybe<number>;
  sweepBudgets(now: number, limit: number): Maybe<number>;
}

/** Reads outside any transaction: they see committed data only. */
export interface ReadQueries extends TokenReadQueries {
  device(account: Buffer, deviceId: number): Promise<DeviceRow | undefined>;
  devices(account: Buffer): Promise<DeviceRow[]>;
  deviceList(account: Buffer): Promise<DeviceListRow | undefined>;
  preKeyCounts(account: Buffer, deviceId: number): Promise<PreKeyCounts | undefined>;
  /** Unexpired messages of one mailbox with seq > afterSeq, oldest first. */
  messages(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<MessageRow[]>;
  attachment(id: string): Promise<AttachmentRow | undefined>;
  quotaPressure(thresholds: QuotaThresholds): Promise<QuotaPressure>;
  stats(): Promise<StorageStats>;
  ping(): Promise<void>;
  frankKey(keyId: number): Promise<Buffer | undefined>;
  reportedBefore(reporter: Buffer, envelopeId: Buffer): Promise<boolean>;
  reports(afterId: number, limit: number): Promise<ReportRow[]>;
  report(id: number): Promise<ReportRow | undefined>;
}

/** How a write may be run; a backend may ignore it. */
export interface TransactOptions {
  /**
   * The write may change very many rows (a device's whole mailbox): SQLite runs it in a
   * group commit of its own, with its savepoint journal on disk rather than in memory (sqlite.ts).
   */
  readonly large?: boolean;
}

/** A backend: its queries, and how it runs a rule in one transaction. */
export interface StorageDriver {
  /**
   * Runs the rule in one transaction and commits it before resolving; an
   * `Abort` rolls it back and resolves with the abort's result. A backend
   * may run the rule again after a lost race (it must be free of side
   * effects outside the queries).
   */
  transact<T>(rule: (q: WriteQueries) => Rule<T>, options?: TransactOptions): Promise<T>;
  readonly read: ReadQueries;
  /** Only for a backend several relay processes share (see RelayStorage.watchMailboxes). */
  watchMailboxes?(wake: MailboxWake): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
