/**
 * Prekey upload and claim. spec/09-relay.md §4.2, §8.4.
 *
 * A one-time prekey id is handed out at most once, ever: each pool keeps the
 * highest id it handed out, and uploads at or below that mark are ignored,
 * so a retried (or replayed) upload cannot put a handed-out key back.
 */
import { budgetKeys, spendOneTime } from '../../limits/prekey-budget.ts';
import { buf, bytes } from '../rows.ts';
import type {
  ClaimInput,
  ClaimedKeysResult,
  DeviceAddress,
  OneTimeBudget,
  PreKeyLimits,
  PreKeyUpload,
  PreKeyUploadResult,
  StoredPreKey,
} from '../types.ts';
import type { PreKeyPool, WriteQueries } from './queries.ts';
import { type Rule, get } from './step.ts';

/**
 * Stores an upload: a signed or last-resort key replaces the held one when
 * its id is not older; pool keys are appended unless already stored or
 * handed out (counted in `ignored`). Over a pool's limit the answer is
 * 'too-many-prekeys' and the caller aborts (nothing of the upload stays).
 */
export function* uploadPreKeys(
  q: WriteQueries,
  address: DeviceAddress,
  upload: PreKeyUpload,
  limits: PreKeyLimits,
): Rule<PreKeyUploadResult> {
  const account = buf(address.accountKey);
  const deviceId = address.deviceId;
  const state = yield* get(q.keyState(account, deviceId));
  if (!state) return { status: 'not-found' };
  let ignored = 0;
  if (upload.signedPreKey) {
    if (upload.signedPreKey.id >= state.signed_prekey_id) {
      yield* get(q.setSignedPreKey(account, deviceId, upload.signedPreKey, upload.signedPreKeyV2 ?? null));
    } else ignored++;
  }
  if (upload.lastResortKemPreKey) {
    if (upload.lastResortKemPreKey.id >= state.last_resort_kem_id) {
      yield* get(q.setLastResortKemPreKey(account, deviceId, upload.lastResortKemPreKey));
    } else ignored++;
  }
  const append = function* (pool: PreKeyPool, keys: readonly StoredPreKey[] | undefined, handedMax: number): Rule<void> {
    const candidates = (keys ?? []).filter((k) => k.id > handedMax);
    ignored += (keys ?? []).length - candidates.length;
    if (candidates.length === 0) return;
    ignored += candidates.length - (yield* get(q.insertPreKeys(pool, account, deviceId, candidates)));
  };
  yield* append('oneTime', upload.oneTimePreKeys, state.one_time_handed_max);
  yield* append('kem', upload.kemPreKeys, state.kem_handed_max);
  const counts = yield* get(q.preKeyCounts(account, deviceId));
  if (!counts) return { status: 'not-found' };
  if (counts.oneTimePreKeys > limits.maxOneTimePreKeys)
    return { status: 'too-many-prekeys', kind: 'oneTime', limit: limits.maxOneTimePreKeys };
  if (counts.kemPreKeys > limits.maxKemPreKeys) return { status: 'too-many-prekeys', kind: 'kem', limit: limits.maxKemPreKeys };
  return { status: 'stored', counts, ignored };
}

/**
 * Takes the lowest one-time X25519 and KEM prekey of each device (none, or
 * the last-resort KEM key, when a pool is empty or a budget is spent).
 */
export function* claimPreKeys(q: WriteQueries, input: ClaimInput): Rule<ClaimedKeysResult[]> {
  const account = buf(input.accountKey);
  const ex = input.exclude;
  const out: ClaimedKeysResult[] = [];
  for (const parts of yield* get(q.bundleParts(account, input.deviceId))) {
    const deviceId = parts.device_id;
    // Only an all-devices claim leaves the requester out: a device may ask for its own bundle by id.
    if (input.deviceId === 'all' && ex && ex.deviceId === deviceId && Buffer.compare(buf(ex.accountKey), account) === 0) continue;
    const oneTime = yield* get(q.lowestPreKey('oneTime', account, deviceId));
    const kem = yield* get(q.lowestPreKey('kem', account, deviceId));
    let take = oneTime !== undefined || kem !== undefined;
    let budgetSpent: ClaimedKeysResult['budgetSpent'];
    if (take && input.budget) {
      budgetSpent = yield* spendBudget(q, input.budget, account, deviceId);
      take = budgetSpent === undefined;
    }
    if (take && oneTime) yield* get(q.takePreKey('oneTime', account, deviceId, oneTime.id));
    if (take && kem) yield* get(q.takePreKey('kem', account, deviceId, kem.id));
    out.push({
      deviceId,
      certificate: bytes(parts.certificate),
      signedPreKey: bytes(parts.signed_prekey),
      signedPreKeyV2: parts.signed_prekey_v2 ? bytes(parts.signed_prekey_v2) : null,
      oneTimePreKey: take && oneTime ? bytes(oneTime.key) : null,
      kemPreKey: bytes(take && kem ? kem.key : parts.last_resort_kem),
      kemLastResort: !(take && kem),
      ...(budgetSpent ? { budgetSpent } : {}),
    });
  }
  return out;
}

/**
 * Spends one token of each one-time prekey budget (limits/prekey-budget.ts),
 * or none; returns the spent budget's name when one had no token left.
 */
function* spendBudget(q: WriteQueries, budget: OneTimeBudget, account: Buffer, deviceId: number): Rule<ClaimedKeysResult['budgetSpent']> {
  const keys = budgetKeys(budget, account, deviceId);
  const capacities = new Map([
    [keys.requester, budget.perRequester.capacity],
    [keys.target, budget.perTarget.capacity],
    [keys.pair, budget.perPair.capacity],
  ]);
  const rows = yield* get(q.lockBuckets([...capacities.keys()].sort(), capacities, budget.now));
  const spend = spendOneTime(budget, keys, new Map(rows.map((r) => [r.key, r])));
  if (!spend.ok) return spend.spent;
  yield* get(q.putBuckets([...spend.writes].sort((a, b) => (a.key < b.key ? -1 : 1))));
  return undefined;
}
