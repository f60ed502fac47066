/**
 * The relay's storage interface: everything the routes need to persist, and
 * nothing about HTTP, auth or encodings. spec/09-relay.md §6-§7.
 *
 * Implementations: `SqliteStorage` (storage/sqlite.ts), one process on one
 * machine; `PostgresStorage` (storage/postgres.ts), any number of relay
 * processes sharing one database. Both pass the contract suite in
 * test/storage-contract.ts.
 *
 * Contract, beyond the method docs:
 *  - A promise that resolves means the change is durable (committed to disk),
 *    and every later read, by anyone, sees it.
 *  - Each method is atomic: it fully happens or not at all.
 *  - Message sequence numbers (`seq`) are positive, unique relay-wide, and
 *    never reused. For one recipient device, once `fetchMessages` returned a
 *    seq, no later call reveals a smaller one (per-device order). A backend
 *    with concurrent writers must serialise inserts per device to keep this.
 *  - Byte strings are opaque: the storage never interprets an envelope,
 *    certificate or prekey.
 */

import type { TokenStore } from './tokens-types.ts';

/** An account is its 32-byte Ed25519 account key. */
export type AccountKey = Uint8Array;

export interface DeviceAddress {
  readonly accountKey: AccountKey;
  readonly deviceId: number;
}

export interface DeviceRecord extends DeviceAddress {
  /** The device certificate as registered (canonical CBOR, `encodeCertificate`). */
  readonly certificate: Uint8Array;
  /** SHA-256 of `certificate`. */
  readonly certificateHash: Uint8Array;
  /** The device's Ed25519 signing key (from the certificate): verifies its requests. */
  readonly signingKey: Uint8Array;
  /** Milliseconds since the epoch. */
  readonly registeredAt: number;
}

/** A prekey as uploaded: its id and its canonical encoding (opaque to storage). */
export interface StoredPreKey {
  readonly id: number;
  readonly encoded: Uint8Array;
}

export interface PreKeyUpload {
  /** Replaces the current signed prekey when its id is not older. */
  readonly signedPreKey?: StoredPreKey;
  /**
   * The same key's v2 form (SignedPreKeyV2: versions and the v2 signature),
   * stored with `signedPreKey` and replaced with it: a signed prekey uploaded
   * without one leaves the device without a v2 bundle (spec/09-relay.md §4.2.1).
   */
  readonly signedPreKeyV2?: StoredPreKey;
  /** Replaces the last-resort KEM prekey when its id is not older. */
  readonly lastResortKemPreKey?: StoredPreKey;
  /** Appended; ids already stored or already handed out are ignored. */
  readonly oneTimePreKeys?: readonly StoredPreKey[];
  readonly kemPreKeys?: readonly StoredPreKey[];
}

export interface PreKeyLimits {
  readonly maxOneTimePreKeys: number;
  readonly maxKemPreKeys: number;
}

export interface PreKeyCounts {
  readonly oneTimePreKeys: number;
  readonly kemPreKeys: number;
  readonly signedPreKeyId: number;
  /** Whether the current signed prekey has its v2 form (spec/09-relay.md §4.2.1): a v2 device re-uploads it when not. */
  readonly signedPreKeyV2: boolean;
  readonly lastResortKemPreKeyId: number;
}

export type PreKeyUploadResult =
  | { readonly status: 'stored'; readonly counts: PreKeyCounts; readonly ignored: number }
  | { readonly status: 'not-found' }
  | { readonly status: 'too-many-prekeys'; readonly kind: 'oneTime' | 'kem'; readonly limit: number };

export type RegisterResult =
  | { readonly status: 'created' | 'replaced' | 'unchanged'; readonly counts: PreKeyCounts; readonly ignored: number }
  | { readonly status: 'revoked' }
  /**
   * The device id's old mailbox is still being purged (a removal or a replacement left more than
   * DEVICE_PURGE_CHUNK_ROWS rows): nothing is registered; try again once the sweep has deleted
   * them (spec/09-relay.md §4.1.2).
   */
  | { readonly status: 'purging' }
  | { readonly status: 'too-many-devices'; readonly limit: number }
  | { readonly status: 'too-many-prekeys'; readonly kind: 'oneTime' | 'kem'; readonly limit: number };

export interface RegisterInput {
  readonly device: DeviceRecord;
  /** Must include the signed prekey and the last-resort KEM prekey. */
  readonly keys: PreKeyUpload & { readonly signedPreKey: StoredPreKey; readonly lastResortKemPreKey: StoredPreKey };
  readonly maxDevicesPerAccount: number;
  readonly preKeyLimits: PreKeyLimits;
}

/** The parts of a bundle for one device, as stored. */
export interface ClaimedKeys {
  readonly deviceId: number;
  readonly certificate: Uint8Array;
  readonly signedPreKey: Uint8Array;
  /** The signed prekey's v2 form, when the device uploaded one (served on the v2 bundle route). */
  readonly signedPreKeyV2: Uint8Array | null;
  readonly oneTimePreKey: Uint8Array | null;
  /** A one-time KEM prekey, or the last-resort one when `kemLastResort`. */
  readonly kemPreKey: Uint8Array;
  readonly kemLastResort: boolean;
}

export interface ClaimInput {
  readonly accountKey: AccountKey;
  /** One device, or every device of the account. */
  readonly deviceId: number | 'all';
  /** Left out of an 'all' claim: the requester's own device. */
  readonly exclude?: DeviceAddress;
  /**
   * Stored budgets a one-time prekey must fit (inside the transaction, see
   * limits/prekey-budget.ts): without room, the bundle comes without
   * one-time keys. Absent: no budget (storage tests).
   */
  readonly budget?: OneTimeBudget;
}

/** A token bucket: `capacity` tokens, refilled at `capacity` per `windowMs`. */
export interface BucketLimit {
  readonly capacity: number;
  readonly windowMs: number;
}

/** A take from (or return to) a stored token bucket; `key` is unique across every kind of bucket. */
export interface TokenTake {
  readonly key: string;
  readonly amount: number;
}

export interface TokenTakeResult {
  readonly ok: boolean;
  /** Tokens in the bucket after the take (ok) or at `now` (refused). */
  readonly tokens: number;
}

/**
 * The budgets a one-time prekey hand-out spends, one token each: the
 * requesting account's, the target device's, and the pair's. Kept in
 * storage so a restart forgives nobody and every relay process on one
 * database spends from the same buckets. spec/09-relay.md §8.4.
 */
export interface OneTimeBudget {
  readonly requester: AccountKey;
  readonly perRequester: BucketLimit;
  readonly perTarget: BucketLimit;
  readonly perPair: BucketLimit;
  readonly now: number;
}

export type ClaimedKeysResult = ClaimedKeys & {
  /** Set when a one-time key was held back because a budget was spent (which one). */
  readonly budgetSpent?: 'requester' | 'target' | 'pair';
};

export interface OutgoingEnvelope {
  readonly recipient: DeviceAddress;
  /** Client-chosen id (idempotency key, per sender and recipient device). */
  readonly clientId: string;
  readonly envelope: Uint8Array;
  /** When present, the certificate hash the sender encrypted for; a different one makes the device stale. */
  readonly certificateHash?: Uint8Array;
  /** The relay frank's delivery record (franking/delivery.ts), opaque here; stored with the mailbox row. */
  readonly delivery?: Uint8Array;
  /** Bytes of a stored-once payload this row refers to besides its own envelope (a sealed group send); counted against quotas. */
  readonly payloadBytes?: number;
}

export interface StoreMessagesInput {
  readonly sender: DeviceAddress;
  readonly envelopes: readonly OutgoingEnvelope[];
  readonly now: number;
  readonly expiresAt: number;
  readonly maxQueuedMessages: number;
  readonly maxQueuedBytes: number;
  /**
   * One sender account's share of one recipient device's mailbox (spec
   * §8.3): past it only this sender is refused. Default: the whole mailbox.
   */
  readonly maxQueuedMessagesPerSender?: number;
  readonly maxQueuedBytesPerSender?: number;
  /**
   * The signed request's replay record (what `rememberRequest` writes),
   * written in the same transaction as the envelopes and checked first: a
   * replayed or over-quota request stores nothing ('request-refused'). One
   * durable write per HTTP send instead of two (spec §4.3).
   */
  readonly replay?: SeenRequest;
  /**
   * Rate-budget tokens (`takeTokens`'s buckets) the send spends, taken in
   * the same transaction, all or none: a refused take stores nothing
   * ('rate-limited'), and a send that stores nothing new gives them back.
   * Only for a storage with `takeTokens` (budgets shared across processes).
   */
  readonly rates?: StoreRates;
}

/** Tokens a write takes from stored rate budgets inside its own transaction. */
export interface StoreRates {
  readonly limit: BucketLimit;
  readonly takes: readonly TokenTake[];
}

/** One recipient device of a fan-out, with the certificate hash the sender encrypted for (optional). */
export interface FanoutRecipient {
  readonly recipient: DeviceAddress;
  readonly certificateHash?: Uint8Array;
  /** This recipient's delivery record (each recipient envelope has its own frank and envelope id). */
  readonly delivery?: Uint8Array;
}

/**
 * One envelope for many devices (a sender-key group message, spec §4.3.1):
 * stored once and referenced from each recipient's mailbox. The checks,
 * limits, idempotency (by `clientId` per recipient device) and answers are
 * those of `storeMessages` with this envelope for every recipient.
 */
export interface StoreFanoutInput extends Omit<StoreMessagesInput, 'envelopes'> {
  readonly clientId: string;
  readonly envelope: Uint8Array;
  readonly recipients: readonly FanoutRecipient[];
}

/** One recipient account of a sealed group send: its token hash in the sender slot, one seal per device. */
export interface SealedGroupAccount {
  /** `{accountKey: tokenHash, deviceId: 0}` (routes/sealed.ts): nothing about the real sender. */
  readonly sender: DeviceAddress;
  /** Per device: the seal of the GroupKeyWrap (spec/12 §10); `clientId` is the request's. */
  readonly envelopes: readonly OutgoingEnvelope[];
}

/**
 * A sealed group send (spec/12-sealed-sender.md §10): the payload stored once
 * and one row per recipient device holding that device's seal and a reference
 * to the payload. Each account is checked as `storeMessages` with its token
 * hash as the sender; the whole request is one transaction, all or nothing.
 */
export interface StoreSealedGroupInput extends Omit<StoreMessagesInput, 'envelopes' | 'sender' | 'replay'> {
  readonly payload: Uint8Array;
  readonly accounts: readonly SealedGroupAccount[];
}

export interface DeviceMismatch {
  readonly accountKey: AccountKey;
  /** Registered devices the send left out. */
  readonly missingDevices: number[];
  /** Devices in the send that are not registered (or are the sender itself). */
  readonly extraDevices: number[];
}

export interface StaleDevices {
  readonly accountKey: AccountKey;
  readonly staleDevices: number[];
}

export type StoreMessagesResult =
  | { readonly status: 'request-refused'; readonly verdict: 'replayed' | 'over-quota' }
  /** A rate budget of `rates` is spent: nothing stored, nothing taken; retry after `retryAfterMs`. */
  | { readonly status: 'rate-limited'; readonly retryAfterMs: number }
  | {
      readonly status: 'stored';
      /** Envelopes newly stored (retries of known client ids are not). */
      readonly stored: number;
      readonly duplicates: number;
      /**
       * Devices to wake: those that got at least one new envelope, or, for a
       * retry that stored nothing, those it names (its first wake-up may have been lost).
       */
      readonly recipients: DeviceAddress[];
    }
  | { readonly status: 'mismatched-devices'; readonly mismatches: DeviceMismatch[] }
  | { readonly status: 'stale-devices'; readonly stale: StaleDevices[] }
  | {
      readonly status: 'mailbox-full';
      readonly devices: DeviceAddress[];
      /** 'mailbox': the mailbox itself is full; 'sender-share': this sender's share of it is. */
      readonly scope: 'mailbox' | 'sender-share';
    };

export interface StoredMessage {
  readonly seq: number;
  readonly sender: DeviceAddress;
  readonly clientId: string;
  readonly serverTimestamp: number;
  readonly expiresAt: number;
  readonly envelope: Uint8Array;
  /** The delivery record stored at acceptance (franked v2 sends only). */
  readonly delivery?: Uint8Array;
}

/** A verified abuse report, as queued for moderators (spec/14-franking.md §7). */
export interface ReportRecord {
  readonly reporter: DeviceAddress;
  /** The reported item's envelope id: one report per (reporter account, envelope id). */
  readonly envelopeId: Uint8Array;
  readonly receivedAt: number;
  /** The AbuseReport as received (CBOR): the moderator tool re-verifies it. */
  readonly report: Uint8Array;
}

export type StoredReport = ReportRecord & { readonly id: number };

export interface FileReportInput extends ReportRecord {
  /** Reports the reporter account may file per `windowMs` (REPORTS_PER_DAY). */
  readonly maxPerWindow: number;
  readonly windowMs: number;
}

export type FileReportResult =
  | { readonly status: 'queued'; readonly id: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'over-budget' };

export interface AttachmentRecord {
  readonly id: string;
  readonly owner: DeviceAddress;
  readonly size: number;
  /** Bytes durably received so far. */
  readonly received: number;
  readonly complete: boolean;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/** Stored-bytes quotas for attachments (declared sizes of unexpired uploads). */
export interface AttachmentQuota {
  readonly maxPending: number;
  readonly maxBytesPerDevice: number;
  readonly maxBytesPerAccount: number;
}

export type CreateAttachmentResult = (
  | { readonly status: 'created'; readonly record: AttachmentRecord }
  /** The owner already created an upload with this request key: that one is returned, nothing new is stored. */
  | { readonly status: 'existing'; readonly record: AttachmentRecord }
  | { readonly status: 'too-many-uploads' }
  | { readonly status: 'quota-exceeded'; readonly scope: 'device' | 'account'; readonly limit: number }
) & {
  /**
   * Expired attachments of the owner's account whose rows were deleted to
   * make room (an expired upload never counts against a quota): the caller
   * deletes their bytes.
   */
  readonly purged?: readonly string[];
};

/** A signed request, as remembered for replay detection (spec §3.3). */
export interface SeenRequest {
  /** The signer: a device, or the account key (device id 0), or a device being registered. */
  readonly signer: DeviceAddress;
  /** The request's 16-byte nonce (signed): the same signer may use a nonce once. */
  readonly nonce: Uint8Array;
  readonly now: number;
  /** When the entry may be forgotten: once its timestamp is outside the window for good. */
  readonly expiresAt: number;
  /** Most requests one signer may have remembered at once; past it, 'over-quota'. */
  readonly maxPerSigner: number;
  /**
   * Set when the signer was authenticated from `RelayStorage.cachedDevice`:
   * the certificate hash of that device. The record is then stored only if
   * the device still has this certificate, else the request is refused
   * with AUTH_UNKNOWN_DEVICE.
   */
  readonly signerCertificateHash?: Uint8Array;
}

/**
 * Replay records are counted per signer in slots of this width (by expiry
 * time), so the quota check sums a handful of rows instead of counting
 * every record. A record therefore counts up to one slot longer than it
 * lives: the quota errs towards refusing the signer, never towards
 * accepting a replay. spec/09-relay.md §3.3.
 */
export const REPLAY_SLOT_MS = 60_000;

export type SeenVerdict = 'fresh' | 'replayed' | 'over-quota';

/** How many devices and accounts are at or above a fraction of each quota (metrics, spec §8.3). */
export interface QuotaPressure {
  readonly mailboxMessages: number;
  readonly mailboxBytes: number;
  readonly senderShares: number;
  readonly attachmentBytesDevice: number;
  readonly attachmentBytesAccount: number;
}

export interface QuotaThresholds {
  readonly mailboxMessages: number;
  readonly mailboxBytes: number;
  readonly senderMessages: number;
  readonly senderBytes: number;
  readonly attachmentBytesDevice: number;
  readonly attachmentBytesAccount: number;
}

export interface SweepResult {
  readonly messages: number;
  /** Rows deleted from the mailboxes of removed or replaced devices (spec/09-relay.md §4.1.2). */
  readonly purged: number;
  readonly sentIds: number;
  /** Replay records and budget buckets forgotten. */
  readonly seenRequests: number;
  readonly budgets: number;
  /** Attachment ids whose rows were removed: the caller deletes their bytes. */
  readonly attachments: string[];
  /** The write reached its bound (SWEEP_CHUNK_ROWS): rows due at the same time may be left, sweep again. */
  readonly more: boolean;
}

export interface StorageStats {
  readonly devices: number;
  readonly queuedMessages: number;
  /** Bytes queued as each recipient sees them (a fan-out counts once per recipient mailbox). */
  readonly queuedBytes: number;
  readonly attachments: number;
  /** Fan-out payloads held (each stored once, whatever its number of recipients). */
  readonly payloads: number;
}

/**
 * A mailbox row as the commit that stored it wrote it, handed to this process's delivery so that a
 * connected recipient gets it without reading it back (live push, spec/09-relay.md §5.2.1).
 */
export interface CommittedMessage {
  readonly recipient: DeviceAddress;
  /**
   * The highest seq of an unexpired row in the recipient's mailbox just before this row's statement
   * (0: none), read under the send's lock on the recipient's device row. A pump whose cursor is at
   * or past it knows that no stored row lies between its cursor and this one.
   */
  readonly previousSeq: number;
  readonly message: StoredMessage;
}

/**
 * Called right after a commit of this storage that stored mailbox rows or asked to wake mailboxes:
 * `devices` to wake, `messages` every row the commit stored, in seq order. A device woken without
 * rows of its own must read its mailbox (a retry's re-wake, spec/09-relay.md §5.2.1).
 */
export type MailboxesCommitted = (devices: readonly DeviceAddress[], messages: readonly CommittedMessage[]) => void;

/** Wakes the websockets of these devices; 'all' after wake-ups may have been missed. */
export type MailboxWake = (addresses: readonly DeviceAddress[] | 'all') => void;

/** The latest account-signed device list the relay holds for an account (spec §4.1). */
export interface StoredDeviceList {
  readonly revision: number;
  /** The SignedDeviceList bytes, verified by the route before they were stored. */
  readonly encoded: Uint8Array;
  readonly updatedAt: number;
}

export type PutDeviceListResult =
  /** Stored: the first list, or a higher revision. */
  | { readonly status: 'stored' }
  /** The same revision with the same bytes: a retry or a replay, nothing changes. */
  | { readonly status: 'unchanged' }
  /** A lower revision, or the same revision with other bytes: refused, the held list stays. */
  | { readonly status: 'outdated' | 'conflict'; readonly revision: number };

/**
 * What a removal did. A removal names the certificate it removes, so a
 * replay after the device was re-registered with a new certificate finds
 * nothing to do ('gone': that certificate is already revoked).
 */
export type RemoveDeviceResult = 'removed' | 'gone' | 'not-found';

export interface RelayStorage {
  // ---- devices (spec §4.1)
  /**
   * Registers a device, or re-registers it: the same certificate changes
   * nothing (but its keys are uploaded again, idempotently); a different
   * certificate for the same device id replaces the device, dropping its
   * mailbox and prekeys and revoking the old certificate. A revoked
   * certificate is refused.
   */
  registerDevice(input: RegisterInput): Promise<RegisterResult>;
  getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined>;
  /**
   * A device as `getDevice` last read it in this process, without a query,
   * for authenticating a signed HTTP request; undefined when not held. Only
   * a backend that confirms the signer inside the request's replay-record
   * statement offers it (`SeenRequest.signerCertificateHash`; PostgreSQL:
   * storage/postgres.ts `SignerCache`), so a device removed or replaced on
   * another process is refused there.
   */
  cachedDevice?(address: DeviceAddress): DeviceRecord | undefined;
  /** Ordered by device id; empty for an unknown account. */
  listDevices(accountKey: AccountKey): Promise<DeviceRecord[]>;
  /**
   * Deletes the device, its prekeys and mailbox, and revokes its
   * certificate, only if its current certificate hash is `certificateHash`.
   * 'gone' when that certificate is already revoked (a replayed or repeated
   * removal); 'not-found' otherwise.
   */
  removeDevice(address: DeviceAddress, certificateHash: Uint8Array, now: number): Promise<RemoveDeviceResult>;
  /**
   * Stores an account's signed device list (already verified by the caller)
   * when it is the first or has a higher revision than the one held.
   */
  putDeviceList(
    accountKey: AccountKey,
    list: { readonly revision: number; readonly encoded: Uint8Array },
    now: number,
  ): Promise<PutDeviceListResult>;
  getDeviceList(accountKey: AccountKey): Promise<StoredDeviceList | undefined>;

  // ---- prekeys (spec §4.2)
  uploadPreKeys(address: DeviceAddress, upload: PreKeyUpload, limits: PreKeyLimits): Promise<PreKeyUploadResult>;
  preKeyCounts(address: DeviceAddress): Promise<PreKeyCounts | undefined>;
  /**
   * Takes, atomically, the lowest one-time X25519 prekey and the lowest
   * one-time KEM prekey of each device (or none / the last-resort KEM key
   * when the pool is empty). A one-time prekey id is handed out at most once
   * ever, even if an upload carrying it is repeated. Empty when the account
   * or device is unknown.
   */
  claimPreKeys(input: ClaimInput): Promise<ClaimedKeysResult[]>;

  // ---- messages (spec §4.3-§4.4)
  /**
   * Stores one envelope per recipient device, all or nothing, after checking
   * inside the same transaction: (1) if every envelope's client id is already
   * known, nothing is stored and the answer is 'stored' (a retry); (2) every
   * recipient account's devices are covered exactly; (3) certificate hashes,
   * when given, are current; (4) no mailbox goes over its limits, nor the
   * sender account's share of it; expired envelopes do not count (a mailbox
   * that looks full drops its expired envelopes first). Envelopes whose
   * (sender, recipient device, client id) is already known are skipped.
   */
  storeMessages(input: StoreMessagesInput): Promise<StoreMessagesResult>;
  /**
   * `storeMessages` for one envelope sent to many devices: the same checks
   * and answers, but the envelope is stored once (a payload) and each new
   * recipient's mailbox row refers to it. The payload goes when its last
   * mailbox row does (acknowledged, expired, or its device removed).
   */
  storeFanout(input: StoreFanoutInput): Promise<StoreMessagesResult>;
  /**
   * A sealed group send: each account checked as `storeMessages` (its token
   * hash as the sender), in one transaction; the first refusal refuses the
   * whole request and nothing is stored. The payload is stored once for every
   * new row and goes with its last row.
   */
  storeSealedGroup(input: StoreSealedGroupInput): Promise<StoreMessagesResult>;
  /** Unexpired messages for one device with seq > afterSeq, oldest first. */
  fetchMessages(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]>;
  /** Deletes the recipient's own messages with these seqs; others' seqs are ignored. Returns how many went. */
  ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Promise<number>;

  // ---- attachments (spec §4.5); the bytes live in a BlobStore
  /**
   * Records a new upload unless the owner already has `maxPending` unfinished
   * ones or its device or account would go over its stored-bytes quota
   * (declared sizes of unexpired attachments; over it, the account's expired
   * ones are deleted first and listed in `purged`). `requestKey` identifies the
   * creating request: the same owner and key again returns the first upload
   * ('existing') and stores nothing, so a replay or retry is a no-op.
   */
  createAttachment(record: AttachmentRecord, requestKey: Uint8Array, quota: AttachmentQuota): Promise<CreateAttachmentResult>;
  getAttachment(id: string): Promise<AttachmentRecord | undefined>;
  /** Records bytes durably received; completes the upload (and sets its final expiry) when received == size. */
  recordUploadProgress(id: string, received: number, completeExpiresAt: number): Promise<AttachmentRecord | undefined>;
  deleteAttachment(id: string): Promise<boolean>;

  // ---- abuse limits (spec §3.3, §8)
  /**
   * Remembers a verified signed request: 'replayed' if this signer used this
   * nonce before (and the entry has not expired), 'over-quota' if the signer
   * already has `maxPerSigner` requests remembered (nothing is stored then),
   * else 'fresh'. Shared by every relay process on the database.
   */
  rememberRequest(request: SeenRequest): Promise<SeenVerdict>;
  /** Devices and accounts at or above the thresholds (for metrics). */
  quotaPressure(thresholds: QuotaThresholds, now: number): Promise<QuotaPressure>;
  /**
   * Only for a backend that several relay processes share: token buckets
   * kept in the database, so a rate budget spent through one process is
   * spent for all (limits/rate-budgets.ts). For each take (keys distinct),
   * takes `amount` tokens if the bucket holds min(amount, capacity) at
   * `now`, else takes nothing from it; one round trip for all of them (a
   * send to a large group takes one budget per recipient account). Returns,
   * in order, the tokens left (taken) or held (refused). A single-process
   * backend leaves it out: the relay keeps its buckets in memory.
   */
  takeTokens?(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<TokenTakeResult[]>;
  /** Gives back tokens takes did not use (capped at capacity); a bucket already swept stays full. */
  returnTokens?(limit: BucketLimit, now: number, takes: readonly TokenTake[]): Promise<void>;

  // ---- housekeeping
  /**
   * Deletes up to SWEEP_CHUNK_ROWS expired rows (messages, idempotency records, attachments, replay
   * records, full budgets) in one write; `more` asks for another call with the same `now`
   * (sweeper.ts runs them until none is left).
   */
  sweep(now: number): Promise<SweepResult>;
  /**
   * One bounded write (DEVICE_PURGE_CHUNK_ROWS rows) of the purge of removed or replaced devices'
   * mailboxes; `more` asks for another call (sweeper.ts purgeRemoved runs them right after a
   * removal and at start). The sweep's writes purge too. spec/09-relay.md §4.1.2.
   */
  purgeRemovedMailboxes(): Promise<{ readonly purged: number; readonly more: boolean }>;

  // ---- franking (spec/14-franking.md)
  /**
   * FK[keyId]: the stored key, or `candidate` stored first when there is none
   * (insert-if-absent, so every process on one database ends with the same key).
   */
  frankKey(keyId: number, candidate: Uint8Array, destroyAt: number): Promise<Uint8Array>;
  /** FK[keyId] if still held (never creates one). */
  findFrankKey(keyId: number): Promise<Uint8Array | undefined>;
  /** Destroys the frank keys whose `destroyAt` has passed; returns how many. */
  sweepFrankKeys(now: number): Promise<number>;
  /** Queues a verified report unless it is a duplicate or the reporter's budget is spent. */
  fileReport(input: FileReportInput): Promise<FileReportResult>;
  /** True when this reporter account already reported this envelope. */
  reportedBefore(reporter: AccountKey, envelopeId: Uint8Array): Promise<boolean>;
  /** Queued reports with id > afterId, oldest first. */
  listReports(afterId: number, limit: number): Promise<StoredReport[]>;
  getReport(id: number): Promise<StoredReport | undefined>;
  stats(): Promise<StorageStats>;
  /**
   * Only for a backend that several relay processes share: calls `wake` for
   * devices that got envelopes through any other storage on the database,
   * once each send commits. Sends through this storage are not reported:
   * the routes that store them wake this process's websockets themselves
   * (on every backend), and a second wake-up would cost each mailbox a
   * second fetch. Resolves once listening; the returned function stops. A
   * single-process backend leaves it out.
   */
  watchMailboxes?(wake: MailboxWake): Promise<() => Promise<void>>;
  /**
   * True when the storage itself wakes the recipients of a send as soon as it committed, with the
   * rows it stored (`onMailboxesCommitted`): the send's answer then does not wake them again.
   */
  readonly wakesOnCommit?: boolean;
  /**
   * Delivery tokens and sealed-send budgets (spec/12-sealed-sender.md); a
   * storage without them serves no /v2 sealed routes (they answer 404).
   */
  readonly tokens?: TokenStore;
  /** Resolves when the storage can serve requests (readiness). */
  ping(): Promise<void>;
  /** Finishes pending writes and releases the database. */
  close(): Promise<void>;
}
