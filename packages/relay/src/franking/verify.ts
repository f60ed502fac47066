/**
 * Report verification with the relay's state (spec/14-franking.md §6,
 * spec/17 §5): loads what core's `verifyReport` needs (the reporter's
 * devices, the frank keys of the items' periods, the duplicate record) and
 * runs it, then checks every reported file against its pointer (core's
 * `verifyReportAttachments`, step 5) with the relay's own stored blob when
 * the report does not carry it. Shared by the report route and the
 * moderator tool, so both give the same verdict.
 *
 * The file check runs last, after every frank and tag verified: only a
 * message the relay really delivered to this reporter can make it read a
 * blob, and a duplicate is refused before any blob byte is read.
 */
import {
  type AbuseReport,
  type AttachmentRefusalCode,
  type BlobSource,
  type CryptoProvider,
  type ReportRefusalCode,
  reportAttachmentsCost,
  verifyReport,
  verifyReportAttachments,
} from '@parley/core';
import type { BlobStore } from '../attachments/blob-store.ts';
import type { AccountKey, RelayStorage } from '../storage/types.ts';
import type { FrankKeys } from './keys.ts';

/** The route's verdict: core's report codes and its attachment codes, with the failing item. */
export type StoredReportVerdict =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** RATE_LIMITED: the reporter's file-check budget (`chargeFiles`) is spent, nothing was read. */
      readonly code: ReportRefusalCode | AttachmentRefusalCode | 'RATE_LIMITED';
      readonly item: number;
      /** For attachment refusals: which check failed (length, header, wrong-key, chunk-auth, digest, unlisted, ...). */
      readonly reason?: string;
      /** For RATE_LIMITED: when the budget holds the charge again. */
      readonly retryAfterMs?: number;
    };

export interface VerifyInput {
  readonly storage: RelayStorage;
  readonly frankKeys: FrankKeys;
  readonly provider: CryptoProvider;
  /** The authenticated reporter (route) or the stored one (moderator tool): never taken from the report. */
  readonly reporter: AccountKey;
  readonly now: number;
  /** Whether an earlier report of the same envelope refuses this one (the route: yes; re-verifying a queued report: no). */
  readonly checkDuplicate: boolean;
  /** The relay's blob store, for reported files the report does not carry. */
  readonly blobs: BlobStore;
  /**
   * Charges the file check's cost (core's `reportAttachmentsCost`) to the
   * reporter's budget before any blob byte is read (the route); absent, the
   * check is not budgeted (the moderator tool re-verifying the queue).
   */
  readonly chargeFiles?: (cost: number) => Promise<{ readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number }>;
}

/** The relay's copy of an attachment: complete and not expired, read whole (the check stops early on a mismatch). */
function storedBlobs(v: VerifyInput): BlobSource {
  return async (id) => {
    let record: Awaited<ReturnType<RelayStorage['getAttachment']>>;
    try {
      record = await v.storage.getAttachment(id);
    } catch {
      return null;
    }
    if (record === undefined || !record.complete || record.expiresAt <= v.now) return null;
    if (record.size === 0) return (async function* () {})();
    return v.blobs.read(record.id, 0, record.size - 1);
  };
}

/** The moderator's Ed25519 key is not the relay's (it has none): sealed items are refused below, before any use. */
const NO_MODERATOR_KEY = new Uint8Array(32);

export async function verifyStoredReport(report: AbuseReport, v: VerifyInput): Promise<StoredReportVerdict> {
  // Sealed-sender items name their sender through a moderator token only the
  // moderation service can open (spec/14-franking.md §6); this relay holds no MTK.
  const sealed = report.items.findIndex((i) => i.token !== null);
  if (sealed >= 0) return { ok: false, code: 'TOKEN_INVALID_IN_REPORT', item: sealed };
  const devices = (await v.storage.listDevices(v.reporter)).map((d) => d.deviceId);
  const keys = new Map<number, Uint8Array | null>();
  for (const item of report.items) {
    if (!keys.has(item.frankKeyId)) keys.set(item.frankKeyId, await v.frankKeys.forVerify(item.frankKeyId, v.now));
  }
  const first = report.items[0];
  const duplicate = v.checkDuplicate && first !== undefined && (await v.storage.reportedBefore(v.reporter, first.envelopeId));
  const verdict = verifyReport(v.provider.backend, report, {
    reporterAccount: v.reporter,
    reporterDevices: devices,
    frankKey: (keyId) => keys.get(keyId) ?? null,
    tokenKey: () => null,
    moderatorKey: NO_MODERATOR_KEY,
    reportedBefore: () => duplicate,
  });
  if (!verdict.ok) return verdict;
  // A refused report spends no REPORTS_PER_DAY and may be repeated: what bounds repeating its file check is this charge.
  const cost = reportAttachmentsCost(report);
  if (cost > 0 && v.chargeFiles !== undefined) {
    const charged = await v.chargeFiles(cost);
    if (!charged.ok) return { ok: false, code: 'RATE_LIMITED', item: 0, retryAfterMs: charged.retryAfterMs };
  }
  const files = await verifyReportAttachments(v.provider.backend, report, storedBlobs(v));
  return files.ok ? { ok: true } : files;
}
