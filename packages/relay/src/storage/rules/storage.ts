/**
 * `RelayStorage` over any `StorageDriver`: each write is one rule run in one
 * of the driver's transactions; each read is one driver query mapped to the
 * interface's records. The SQLite and PostgreSQL backends are this class
 * plus their driver (storage/sqlite.ts, storage/postgres.ts).
 */
import { buf, bytes, toAttachment, toDevice, toMessage, toReport } from '../rows.ts';
import type {
  AccountKey,
  AttachmentQuota,
  AttachmentRecord,
  ClaimInput,
  ClaimedKeysResult,
  CreateAttachmentResult,
  DeviceAddress,
  DeviceRecord,
  FileReportInput,
  FileReportResult,
  PreKeyCounts,
  PreKeyLimits,
  PreKeyUpload,
  PreKeyUploadResult,
  PutDeviceListResult,
  QuotaPressure,
  QuotaThresholds,
  RegisterInput,
  RegisterResult,
  RelayStorage,
  RemoveDeviceResult,
  SeenRequest,
  SeenVerdict,
  StorageStats,
  StoreFanoutInput,
  StoreMessagesInput,
  StoreMessagesResult,
  StoreSealedGroupInput,
  StoredDeviceList,
  StoredMessage,
  StoredReport,
  SweepResult,
} from '../types.ts';
import { createAttachment, recordUploadProgress } from './attachments.ts';
import { fileReport, frankKey } from './franking.ts';
import { DEVICE_PURGE_CHUNK_ROWS, purgeMailboxes, putDeviceList, registerDevice, removeDevice } from './devices.ts';
import { rememberRequest, sweep } from './housekeeping.ts';
import { ackMessages, storeFanout, storeMessages, storeSealedGroup } from './messages.ts';
import { claimPreKeys, uploadPreKeys } from './prekeys.ts';
import type { StorageDriver, TransactOptions } from './queries.ts';
import { abort, get } from './step.ts';
import { ruleTokenStore } from './tokens.ts';
import type { TokenStore } from '../tokens-types.ts';

/** Writes that may delete a whole mailbox or a sweep's worth of rows (queries.ts TransactOptions). */
const LARGE: TransactOptions = { large: true };

export class RuleStorage implements RelayStorage {
  protected readonly driver: StorageDriver;
  /** Delivery tokens and sealed-send budgets (spec/12-sealed-sender.md): rules/tokens.ts on the same driver. */
  readonly tokens: TokenStore;

  constructor(driver: StorageDriver) {
    this.driver = driver;
    this.tokens = ruleTokenStore(driver);
  }

  // ---- devices
  registerDevice(input: RegisterInput): Promise<RegisterResult> {
    // Large: a replaced device's mailbox goes with it.
    return this.driver.transact((q) => registerDevice(q, input), LARGE);
  }

  async getDevice(address: DeviceAddress): Promise<DeviceRecord | undefined> {
    const row = await this.driver.read.device(buf(address.accountKey), address.deviceId);
    return row && toDevice(row);
  }

  async listDevices(accountKey: AccountKey): Promise<DeviceRecord[]> {
    return (await this.driver.read.devices(buf(accountKey))).map(toDevice);
  }

  removeDevice(address: DeviceAddress, certificateHash: Uint8Array, now: number): Promise<RemoveDeviceResult> {
    return this.driver.transact((q) => removeDevice(q, address, certificateHash, now), LARGE);
  }

  putDeviceList(accountKey: AccountKey, list: { revision: number; encoded: Uint8Array }, now: number): Promise<PutDeviceListResult> {
    return this.driver.transact((q) => putDeviceList(q, accountKey, list, now));
  }

  async getDeviceList(accountKey: AccountKey): Promise<StoredDeviceList | undefined> {
    const row = await this.driver.read.deviceList(buf(accountKey));
    return row && { revision: row.revision, encoded: bytes(row.list), updatedAt: row.updated_at };
  }

  // ---- prekeys
  uploadPreKeys(address: DeviceAddress, upload: PreKeyUpload, limits: PreKeyLimits): Promise<PreKeyUploadResult> {
    return this.driver.transact(function* (q) {
      const result = yield* uploadPreKeys(q, address, upload, limits);
      // Over a pool's limit nothing of the upload stays.
      return result.status === 'too-many-prekeys' ? abort(result) : result;
    });
  }

  preKeyCounts(address: DeviceAddress): Promise<PreKeyCounts | undefined> {
    return this.driver.read.preKeyCounts(buf(address.accountKey), address.deviceId);
  }

  claimPreKeys(input: ClaimInput): Promise<ClaimedKeysResult[]> {
    return this.driver.transact((q) => claimPreKeys(q, input));
  }

  // ---- messages
  storeMessages(input: StoreMessagesInput): Promise<StoreMessagesResult> {
    return this.driver.transact((q) => storeMessages(q, input));
  }

  storeFanout(input: StoreFanoutInput): Promise<StoreMessagesResult> {
    return this.driver.transact((q) => storeFanout(q, input));
  }

  storeSealedGroup(input: StoreSealedGroupInput): Promise<StoreMessagesResult> {
    return this.driver.transact((q) => storeSealedGroup(q, input));
  }

  async fetchMessages(recipient: DeviceAddress, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    return (await this.driver.read.messages(recipient, afterSeq, limit, now)).map(toMessage);
  }

  ackMessages(recipient: DeviceAddress, seqs: readonly number[]): Promise<number> {
    if (seqs.length === 0) return Promise.resolve(0);
    return this.driver.transact((q) => ackMessages(q, recipient, seqs));
  }

  // ---- attachments
  createAttachment(record: AttachmentRecord, requestKey: Uint8Array, quota: AttachmentQuota): Promise<CreateAttachmentResult> {
    return this.driver.transact((q) => createAttachment(q, record, requestKey, quota));
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    const row = await this.driver.read.attachment(id);
    return row && toAttachment(row);
  }

  recordUploadProgress(id: string, received: number, completeExpiresAt: number): Promise<AttachmentRecord | undefined> {
    return this.driver.transact((q) => recordUploadProgress(q, id, received, completeExpiresAt));
  }

  deleteAttachment(id: string): Promise<boolean> {
    return this.driver.transact(function* (q) {
      return yield* get(q.deleteAttachment(id));
    });
  }

  // ---- abuse limits
  rememberRequest(request: SeenRequest): Promise<SeenVerdict> {
    return this.driver.transact((q) => rememberRequest(q, request));
  }

  quotaPressure(thresholds: QuotaThresholds): Promise<QuotaPressure> {
    return this.driver.read.quotaPressure(thresholds);
  }

  // ---- housekeeping
  /** One bounded sweep write (SWEEP_CHUNK_ROWS): an ordinary write, since its rows are bounded like a group commit's. */
  sweep(now: number): Promise<SweepResult> {
    return this.driver.transact((q) => sweep(q, now));
  }

  /** One bounded purge write: rows bounded like a sweep write's. */
  purgeRemovedMailboxes(): Promise<{ readonly purged: number; readonly more: boolean }> {
    return this.driver.transact((q) => purgeMailboxes(q, DEVICE_PURGE_CHUNK_ROWS));
  }

  stats(): Promise<StorageStats> {
    return this.driver.read.stats();
  }

  // ---- franking
  async frankKey(keyId: number, candidate: Uint8Array, destroyAt: number): Promise<Uint8Array> {
    return bytes(await this.driver.transact((q) => frankKey(q, keyId, candidate, destroyAt)));
  }

  async findFrankKey(keyId: number): Promise<Uint8Array | undefined> {
    const key = await this.driver.read.frankKey(keyId);
    return key && bytes(key);
  }

  sweepFrankKeys(now: number): Promise<number> {
    return this.driver.transact(function* (q) {
      return yield* get(q.sweepFrankKeys(now));
    });
  }

  fileReport(input: FileReportInput): Promise<FileReportResult> {
    return this.driver.transact((q) => fileReport(q, input));
  }

  reportedBefore(reporter: AccountKey, envelopeId: Uint8Array): Promise<boolean> {
    return this.driver.read.reportedBefore(buf(reporter), buf(envelopeId));
  }

  async listReports(afterId: number, limit: number): Promise<StoredReport[]> {
    return (await this.driver.read.reports(afterId, limit)).map(toReport);
  }

  async getReport(id: number): Promise<StoredReport | undefined> {
    const row = await this.driver.read.report(id);
    return row && toReport(row);
  }

  ping(): Promise<void> {
    return this.driver.read.ping();
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
