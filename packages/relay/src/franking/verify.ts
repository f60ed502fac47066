/**
 * Report verification with the relay's state (spec/14-franking.md §7.2):
 * loads what core's `verifyReport` needs (the reporter's devices, the frank
 * keys of the items' periods, the duplicate record) and runs it. Shared by
 * the report route and the moderator tool, so both give the same verdict.
 */
import { type AbuseReport, type CryptoProvider, type ReportVerdict, verifyReport } from '@parley/core';
import type { AccountKey, RelayStorage } from '../storage/types.ts';
import type { FrankKeys } from './keys.ts';

export interface VerifyInput {
  readonly storage: RelayStorage;
  readonly frankKeys: FrankKeys;
  readonly provider: CryptoProvider;
  /** The authenticated reporter (route) or the stored one (moderator tool): never taken from the report. */
  readonly reporter: AccountKey;
  readonly now: number;
  /** Whether an earlier report of the same envelope refuses this one (the route: yes; re-verifying a queued report: no). */
  readonly checkDuplicate: boolean;
}

/** The moderator's Ed25519 key is not the relay's (it has none): sealed items are refused below, before any use. */
const NO_MODERATOR_KEY = new Uint8Array(32);

export async function verifyStoredReport(report: AbuseReport, v: VerifyInput): Promise<ReportVerdict> {
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
  return verifyReport(v.provider.backend, report, {
    reporterAccount: v.reporter,
    reporterDevices: devices,
    frankKey: (keyId) => keys.get(keyId) ?? null,
    tokenKey: () => null,
    moderatorKey: NO_MODERATOR_KEY,
    reportedBefore: () => duplicate,
  });
}
