/**
 * Prekey upkeep: registration, refills, rotation of the signed prekey and
 * of the last-resort ML-KEM prekey with their grace periods, and the
 * restore check. spec/10-client.md §4.4 and §7.5.
 *
 * New keys are generated and saved locally first, then uploaded: a crash
 * or a failed upload leaves extra private keys (harmless, and a later
 * upload re-sends them) but never a public key on the relay whose private
 * half we lost.
 *
 * The relay's counts are hints, never orders. The one-time keys we hold
 * the private halves of are exactly those we uploaded that no initial
 * message has used yet, so an honest relay never reports more than we
 * hold, and reports fewer only for keys it handed out whose messages have
 * not come in yet. Refills stop once we hold MAX_UNCLAIMED_PREKEYS_FACTOR
 * times the target: a relay that always answers "zero" gets one extra
 * pool and an event, instead of keys generated until the store is full
 * and an upkeep that fails every round after that.
 */
import { PreKeyStore, type SignedPreKeyV2Public, limits } from '@parley/core';
import type { PreKeyCounts, PreKeyUpload } from '../relay-link/link.ts';
import { type Upkeep, loadUpkeep, savePreKeys, saveUpkeep } from '../state/identity.ts';
import { type ScheduledKey, keysInGrace, loadLastResortSchedule, saveLastResortSchedule } from '../state/prekey-schedule.ts';
import { type Context, Pending } from './context.ts';
import { type RestoreVerdict, catchUpPreKeyIds, checkRestore, retireRestoredState } from './restore.ts';

/**
 * Most unclaimed one-time keys (of each kind) held locally, as a multiple
 * of the relay target: one full pool on the relay plus one pool handed out
 * whose initial messages are still on their way (a device that was offline
 * while many people first wrote to it). Past that, the relay's "I have
 * few" is implausible, and initiators use the signed and last-resort keys
 * (always available) until received messages consume keys.
 */
export const MAX_UNCLAIMED_PREKEYS_FACTOR = 2;

function loadPreKeys(ctx: Context): PreKeyStore {
  const bytes = ctx.store.get('identity', 'prekeys');
  if (!bytes) throw new TypeError('no prekey store: the device is not set up');
  return PreKeyStore.deserialize(bytes, ctx.device, ctx.provider);
}

/**
 * The v2 form of the current signed prekey, when this client runs v2
 * sessions (`sessionVersions`): a device publishes only versions it runs
 * (spec/design/formats-v2.md §3.3).
 */
function signedPreKeyV2Of(ctx: Context, prekeys: PreKeyStore): { signedPreKeyV2?: SignedPreKeyV2Public } {
  return ctx.options.sessionVersions.includes(2) ? { signedPreKeyV2: prekeys.currentSignedPreKeyV2() } : {};
}

/** Registers this device (certificate and every public prekey) with the relay. Idempotent. */
export async function registerDevice(ctx: Context): Promise<PreKeyCounts> {
  const prekeys = loadPreKeys(ctx);
  const counts = await ctx.relay.registerDevice({
    certificate: ctx.device.certificate,
    signedPreKey: prekeys.currentSignedPreKey(),
    ...signedPreKeyV2Of(ctx, prekeys),
    lastResortKemPreKey: prekeys.lastResortKemPreKey(),
    oneTimePreKeys: prekeys.oneTimePreKeys(),
    kemPreKeys: prekeys.kemPreKeys(),
  });
  ctx.store.transaction(() => {
    const upkeep = loadUpkeep(ctx.store);
    const now = ctx.clock();
    const current = prekeys.currentSignedPreKey().id;
    const signedPreKeys = upkeep.signedPreKeys.length ? upkeep.signedPreKeys : [{ id: current, createdAt: now }];
    saveUpkeep(ctx.store, { signedPreKeys, registered: true });
    if (loadLastResortSchedule(ctx.store).length === 0)
      saveLastResortSchedule(ctx.store, [{ id: prekeys.lastResortKemPreKey().id, createdAt: now }]);
  });
  return counts;
}

export interface UpkeepReport {
  readonly rotated: boolean;
  readonly pruned: number;
  readonly lastResortRotated: boolean;
  readonly lastResortPruned: number;
  readonly oneTimeAdded: number;
  readonly kemAdded: number;
  /** The relay's counts did not fit what we uploaded (reported as a RELAY_PREKEY_COUNT_IMPLAUSIBLE warning). */
  readonly implausible: boolean;
  /** This round proved that the store was restored from an older copy (a STORE_RESTORED warning). */
  readonly restored: boolean;
}

/**
 * One round of upkeep: rotate the signed and last-resort prekeys when due,
 * drop the ones past their grace period, check the relay's view for a
 * restore, refill the relay's pools when low (within the bound), and
 * re-upload anything the relay lacks.
 */
export async function maintainPreKeys(ctx: Context): Promise<UpkeepReport> {
  const now = ctx.clock();
  const o = ctx.options;
  const pending = new Pending();
  try {
    // First the restore check, against the ids as this store left them: a rotation made now
    // would reuse the ids a lost newer copy already gave out.
    const before = currentIds(ctx);
    const { counts, verdict } = await detectRestore(ctx, before, pending);
    const upload: { -readonly [K in keyof PreKeyUpload]: PreKeyUpload[K] } = {};

    const local = ctx.store.transaction(() => {
      const prekeys = loadPreKeys(ctx);
      let upkeep = loadUpkeep(ctx.store);
      const latest = upkeep.signedPreKeys.at(-1);
      let rotated = false;
      if (!latest || now - latest.createdAt >= o.signedPreKeyRotationMs) {
        const fresh = prekeys.rotateSignedPreKey();
        upkeep = { ...upkeep, signedPreKeys: [...upkeep.signedPreKeys, { id: fresh.id, createdAt: now }] };
        rotated = true;
      }
      const pruned = pruneSigned(prekeys, upkeep, now, o.signedPreKeyGraceMs);
      upkeep = pruned.upkeep;

      let schedule = loadLastResortSchedule(ctx.store);
      // A store from before the schedule existed: its key's age is unknown, so it counts from now.
      if (schedule.length === 0) schedule = [{ id: prekeys.lastResortKemPreKey().id, createdAt: now }];
      const lastKem = schedule.at(-1) as ScheduledKey;
      let lastResortRotated = false;
      if (now - lastKem.createdAt >= o.lastResortKemRotationMs) {
        schedule = [...schedule, { id: prekeys.rotateLastResortKemPreKey().id, createdAt: now }];
        lastResortRotated = true;
      }
      const kemPruned = pruneLastResort(prekeys, schedule, now, o.lastResortKemGraceMs);
      schedule = kemPruned.schedule;

      savePreKeys(ctx.store, prekeys);
      saveUpkeep(ctx.store, upkeep);
      saveLastResortSchedule(ctx.store, schedule);
      return {
        rotated,
        pruned: pruned.count,
        lastResortRotated,
        lastResortPruned: kemPruned.count,
        signed: prekeys.currentSignedPreKey(),
        signedV2: signedPreKeyV2Of(ctx, prekeys).signedPreKeyV2,
        lastResort: prekeys.lastResortKemPreKey(),
        heldOneTime: prekeys.oneTimePreKeys().length,
        heldKem: prekeys.kemPreKeys().length,
      };
    });

    const signed = local.signed;
    const lastResort = local.lastResort;

    // A client that now runs version 2 publishes the v2 form of a key the relay holds without it.
    const v2Missing = local.signedV2 !== undefined && counts.signedPreKeyV2 === false;
    if (local.rotated || counts.signedPreKeyId !== signed.id || v2Missing) {
      upload.signedPreKey = signed;
      if (local.signedV2) upload.signedPreKeyV2 = local.signedV2;
    }
    if (local.lastResortRotated || counts.lastResortKemPreKeyId !== lastResort.id) upload.lastResortKemPreKey = lastResort;

    const oneTime = refill(counts.oneTimePreKeys, local.heldOneTime, o.oneTimePreKeys, o.refillBelow, limits.MAX_STORED_ONE_TIME_PREKEYS);
    // Last-resort keys share the KEM store's capacity: leave room for every one a grace period can hold.
    const kem = refill(
      counts.kemPreKeys,
      local.heldKem,
      o.kemPreKeys,
      o.refillBelow,
      limits.MAX_STORED_KEM_PREKEYS - 2 * MAX_LAST_RESORT_KEYS,
    );
    const implausible = oneTime.implausible || kem.implausible;
    if (implausible) {
      pending.add('warning', {
        code: 'RELAY_PREKEY_COUNT_IMPLAUSIBLE',
        message: `the relay reports ${counts.oneTimePreKeys} one-time and ${counts.kemPreKeys} KEM prekeys; this device holds ${local.heldOneTime} and ${local.heldKem} unclaimed`,
      });
    }
    if (oneTime.add > 0 || kem.add > 0) {
      ctx.store.transaction(() => {
        const prekeys = loadPreKeys(ctx);
        if (oneTime.add > 0) upload.oneTimePreKeys = prekeys.generateOneTimePreKeys(oneTime.add);
        if (kem.add > 0) upload.kemPreKeys = prekeys.generateKemPreKeys(kem.add);
        savePreKeys(ctx.store, prekeys);
      });
    }
    if (Object.keys(upload).length) await ctx.relay.uploadPreKeys(upload);
    return {
      rotated: local.rotated,
      pruned: local.pruned,
      lastResortRotated: local.lastResortRotated,
      lastResortPruned: local.lastResortPruned,
      oneTimeAdded: oneTime.add,
      kemAdded: kem.add,
      implausible,
      restored: verdict === 'restored',
    };
  } finally {
    pending.flush(ctx.events);
  }
}

/**
 * Reads the relay's counts and runs the restore check of spec §7.5 against
 * `before` (this store's ids before any rotation); on a proven restore,
 * retires sessions, rotates group chains and moves the prekey ids past the
 * relay's (the caller uploads them: their ids now differ from the relay's).
 */
async function detectRestore(
  ctx: Context,
  before: { signedId: number; lastResortId: number },
  pending: Pending,
): Promise<{ counts: PreKeyCounts; verdict: RestoreVerdict }> {
  const counts = await ctx.relay.preKeyCounts();
  // A relay-held key newer than any this store made means a newer copy of this store existed.
  const verdict = await checkRestore(ctx, counts, before);
  if (verdict === 'restored') {
    const outcome = ctx.store.transaction(() => {
      const prekeys = loadPreKeys(ctx);
      const caughtUp = catchUpPreKeyIds(prekeys, counts);
      const retired = retireRestoredState(ctx);
      savePreKeys(ctx.store, prekeys);
      const at = ctx.clock();
      saveUpkeep(ctx.store, { ...loadUpkeep(ctx.store), signedPreKeys: [{ id: prekeys.currentSignedPreKey().id, createdAt: at }] });
      saveLastResortSchedule(ctx.store, [{ id: prekeys.lastResortKemPreKey().id, createdAt: at }]);
      return { caughtUp, retired };
    });
    pending.add('warning', {
      code: 'STORE_RESTORED',
      message: `this store was restored from an older copy: ${outcome.retired} session(s) retired, fresh sessions start with the next message${
        outcome.caughtUp ? '' : '; the relay keeps newer prekeys than this store can replace'
      }`,
    });
  } else if (verdict === 'relay-lied') {
    pending.add('warning', { code: 'RELAY_MISBEHAVED', message: 'the relay reports prekeys newer than ours that it cannot show' });
  }

  return { counts, verdict };
}

/** This store's current signed and last-resort ids. */
function currentIds(ctx: Context): { signedId: number; lastResortId: number } {
  return ctx.store.transaction(() => {
    const prekeys = loadPreKeys(ctx);
    return { signedId: prekeys.currentSignedPreKey().id, lastResortId: prekeys.lastResortKemPreKey().id };
  });
}

/**
 * The restore check alone, for the first send of a client that has not run
 * upkeep yet: no restored sending chain may encrypt before it ran. A proven
 * restore also uploads the new signed and last-resort keys.
 */
export async function checkForRestore(ctx: Context): Promise<RestoreVerdict> {
  const pending = new Pending();
  try {
    const { verdict } = await detectRestore(ctx, currentIds(ctx), pending);
    if (verdict === 'restored') {
      const prekeys = loadPreKeys(ctx);
      await ctx.relay.uploadPreKeys({
        signedPreKey: prekeys.currentSignedPreKey(),
        ...signedPreKeyV2Of(ctx, prekeys),
        lastResortKemPreKey: prekeys.lastResortKemPreKey(),
      });
    }
    return verdict;
  } finally {
    pending.flush(ctx.events);
  }
}

/**
 * Last-resort keys a grace period can hold at the default schedule
 * (31 days of weekly rotations: 5 or 6); the KEM store keeps room for
 * twice this many besides the one-time pool.
 */
const MAX_LAST_RESORT_KEYS = 8;

/**
 * How many one-time keys of one kind to add. `reported` is the relay's
 * count, `held` the unclaimed keys whose private halves we have. More
 * reported than held cannot be honest (we never uploaded them); fewer is
 * honest only up to one pool handed out and not yet used.
 */
function refill(
  reported: number,
  held: number,
  target: number,
  refillBelow: number,
  storeCapacity: number,
): { add: number; implausible: boolean } {
  const wanted = reported < Math.ceil(target * refillBelow) ? target - reported : 0;
  const room = Math.max(0, Math.min(target * MAX_UNCLAIMED_PREKEYS_FACTOR, storeCapacity) - held);
  const add = Math.min(wanted, room);
  return { add, implausible: reported > held || add < wanted };
}

/**
 * Keeps every signed prekey that was current within the grace period: a
 * key stops being current when its successor is created, and an initial
 * message made with it may still arrive until the grace period after that.
 */
function pruneSigned(prekeys: PreKeyStore, upkeep: Upkeep, now: number, graceMs: number): { upkeep: Upkeep; count: number } {
  const list = upkeep.signedPreKeys;
  const removed = prekeys.pruneSignedPreKeys(keysInGrace(list, now, graceMs));
  if (removed.length === 0) return { upkeep, count: 0 };
  const gone = new Set(removed);
  return { upkeep: { ...upkeep, signedPreKeys: list.filter((s) => !gone.has(s.id)) }, count: removed.length };
}

/** The same for last-resort KEM keys, on their own schedule. */
function pruneLastResort(
  prekeys: PreKeyStore,
  schedule: readonly ScheduledKey[],
  now: number,
  graceMs: number,
): { schedule: ScheduledKey[]; count: number } {
  const keep = Math.min(keysInGrace(schedule, now, graceMs), MAX_LAST_RESORT_KEYS - 1);
  const removed = prekeys.pruneLastResortKemPreKeys(keep);
  const gone = new Set(removed);
  return { schedule: schedule.filter((k) => !gone.has(k.id)), count: removed.length };
}
