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
 * must fit the account's device limit.
 */
export function* registerDevice(q: WriteQueries, input: RegisterInput): Rule<RegisterResult> {
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
      yield* dropDevice(q, account, d.deviceId, existing, d.registeredAt);
      status = 'replaced';
    } else {
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
export function* removeDevice(q: WriteQueries, address: DeviceAddress, certificateHash: Uint8Array, now: number): Rule<RemoveDeviceResult> {
  const account = buf(address.accountKey);
  const hash = buf(certificateHash);
  yield* get(q.lockAccount(account));
  const current = yield* get(q.certificateHashOf(account, address.deviceId));
  if (current && Buffer.compare(current, hash) === 0) {
    yield* dropDevice(q, account, address.deviceId, current, now);
    return 'removed';
  }
  return (yield* get(q.isRevoked(hash))) ? 'gone' : 'not-found';
}

/** Revokes the certificate (for good) and deletes the device with its mailbox and prekeys. */
function* dropDevice(q: WriteQueries, account: Buffer, deviceId: number, certificateHash: Buffer, now: number): Rule<void> {
  yield* get(q.revoke(certificateHash, now));
  yield* get(q.deleteDevice(account, deviceId));
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
