/**
 * Device registration and removal, and the account's signed device list.
 * spec/09-relay.md §4.1.
 */
import { buf } from '../rows.ts';
import type { AccountKey, DeviceAddress, PutDeviceListResult, RegisterInput, RegisterResult, RemoveDeviceResult } from '../types.ts';
import { judgeDeviceList } from './device-lists.ts';
import { uploadPreKeys } from './prekeys.ts';
import type { WriteQueries } from './queries.ts';
import { type Rule, abort, get } from './step.ts';

/**
 * Registers a device, or re-registers it: the same certificate changes
 * nothing (its keys are uploaded again, idempotently); a new certificate for
 * the same device id replaces the device (mailbox and prekeys dropped, the
 * old certificate revoked); a revoked certificate is refused; a new device
 * must fit the account's device limit. 'purging' while the id's old mailbox
 * holds rows past what one write deletes (`chunk`, DEVICE_PURGE_CHUNK_ROWS;
 * tests pass smaller ones): spec/09-relay.md §4.1.2.
 */
export function* registerDevice(q: WriteQueries, input: RegisterInput, chunk = DEVICE_PURGE_CHUNK_ROWS): Rule<RegisterResult> {
  const d = input.device;
  const account = buf(d.accountKey);
  const hash = buf(d.certificateHash);
  yield* get(q.lockAccount(account));
  if (yield* get(q.isRevoked(hash))) return { status: 'revoked' };
  const existing = yield* get(q.certificateHashOf(account, d.deviceId));
  let status: 'created' | 'replaced' | 'unchanged';
  if (existing && Buffer.compare(existing, hash) === 0) {
    status = 'unchanged';
  } else {
    if (existing) {
      // The old device goes in this write (its certificate revoked) even when its mailbox is too
      // large to delete here: the registration is then refused, and a retry after the purge creates it.
      if (!(yield* dropDevice(q, account, d.deviceId, existing, d.registeredAt, chunk))) return { status: 'purging' };
      status = 'replaced';
    } else {
      // A new device never sees rows queued for the one this id named before.
      if (!(yield* purgeStep(q, account, d.deviceId, chunk))) return { status: 'purging' };
      if ((yield* get(q.countDevices(account))) >= input.maxDevicesPerAccount) {
        return { status: 'too-many-devices', limit: input.maxDevicesPerAccount };
      }
      status = 'created';
    }
    yield* get(
      q.insertDevice(
        {
          account,
          device_id: d.deviceId,
          certificate: buf(d.certificate),
          certificate_hash: hash,
          signing_key: buf(d.signingKey),
          registered_at: d.registeredAt,
        },
        input.keys.signedPreKey,
        input.keys.lastResortKemPreKey,
      ),
    );
  }
  const uploaded = yield* uploadPreKeys(q, { accountKey: account, deviceId: d.deviceId }, input.keys, input.preKeyLimits);
  // Too many prekeys: the whole registration (device row included) is undone.
  if (uploaded.status !== 'stored') return abort<RegisterResult>(uploaded as RegisterResult);
  return { status, counts: uploaded.counts, ignored: uploaded.ignored };
}

/**
 * Removes the device only while `certificateHash` is its current one, so a
 * replayed removal cannot take out the device registered after it.
 */
export function* removeDevice(
  q: WriteQueries,
  address: DeviceAddress,
  certificateHash: Uint8Array,
  now: number,
  chunk = DEVICE_PURGE_CHUNK_ROWS,
): Rule<RemoveDeviceResult> {
  const account = buf(address.accountKey);
  const hash = buf(certificateHash);
  yield* get(q.lockAccount(account));
  const current = yield* get(q.certificateHashOf(account, address.deviceId));
  if (current && Buffer.compare(current, hash) === 0) {
    yield* dropDevice(q, account, address.deviceId, current, now, chunk);
    return 'removed';
  }
  return (yield* get(q.isRevoked(hash))) ? 'gone' : 'not-found';
}

/**
 * Most mailbox rows a device's removal or replacement deletes in its own write (spec/09-relay.md
 * §4.1.2, §7.1). A mailbox holds up to 50,000 rows: deleting them in one write stalled the relay's
 * writer (on SQLite its event loop: 788 ms for 50,000 rows of 1 KiB), and any account can fill its
 * own device's mailbox and then remove or re-register it. The same bound as a sweep write
 * (housekeeping.ts SWEEP_CHUNK_ROWS, about one group commit's worth of work): the sweep deletes
 * what is left in writes of that size, right after the removal and at every start.
 */
export const DEVICE_PURGE_CHUNK_ROWS = 256;

/**
 * Revokes the certificate (for good), deletes the device with its prekeys, and deletes its mailbox
 * up to `chunk` rows (DEVICE_PURGE_CHUNK_ROWS; tests pass smaller ones); false when rows are left
 * (the mailbox is then recorded as being purged, and the sweep deletes the rest).
 */
function* dropDevice(
  q: WriteQueries,
  account: Buffer,
  deviceId: number,
  certificateHash: Buffer,
  now: number,
  chunk: number,
): Rule<boolean> {
  yield* get(q.revoke(certificateHash, now));
  yield* get(q.deleteDevice(account, deviceId));
  if (!(yield* get(q.purgeMailbox(account, deviceId, chunk))).left) return true;
  yield* get(q.markPurging(account, deviceId));
  return false;
}

/**
 * Before a device id is registered: when its old mailbox is still being purged, deletes up to
 * `chunk` more of it, and says whether it is now empty.
 */
function* purgeStep(q: WriteQueries, account: Buffer, deviceId: number, chunk: number): Rule<boolean> {
  if (!(yield* get(q.isPurging(account, deviceId)))) return true;
  if ((yield* get(q.purgeMailbox(account, deviceId, chunk))).left) return false;
  yield* get(q.endPurge(account, deviceId));
  return true;
}

/**
 * One step of the purge of the removed devices' mailboxes, for a sweep write: deletes up to `limit`
 * rows of the lowest mailbox recorded as being purged, and forgets the record once it is empty.
 * Returns the rows deleted and whether another step may find more.
 */
export function* purgeMailboxes(q: WriteQueries, limit: number): Rule<{ purged: number; more: boolean }> {
  const next = yield* get(q.nextPurging());
  if (!next) return { purged: 0, more: false };
  // Ordered with the account's registrations and removals (across processes).
  yield* get(q.lockAccount(next.account));
  const { deleted, left } = yield* get(q.purgeMailbox(next.account, next.device_id, limit));
  if (!left) yield* get(q.endPurge(next.account, next.device_id));
  // Another mailbox may be recorded, or this one may hold more; a step that deleted nothing from a mailbox
  // said to hold rows stops the run (the next sweep tries again) rather than repeating it without end.
  return { purged: deleted, more: deleted > 0 || !left };
}

/** Stores the list when it is the first or has a higher revision (device-lists.ts). */
export function* putDeviceList(
  q: WriteQueries,
  accountKey: AccountKey,
  list: { readonly revision: number; readonly encoded: Uint8Array },
  now: number,
): Rule<PutDeviceListResult> {
  const account = buf(accountKey);
  // The account lock orders concurrent uploads from several relay processes: the higher revision wins either way.
  yield* get(q.lockAccount(account));
  const verdict = judgeDeviceList(yield* get(q.deviceList(account)), list);
  if (verdict.status === 'stored') yield* get(q.putDeviceList(account, list.revision, buf(list.encoded), now));
  return verdict;
}
