/**
 * Prekey upkeep: registration, refills, signed-prekey rotation and its
 * grace period. spec/10-client.md §4.4.
 *
 * New keys are generated and saved locally first, then uploaded: a crash
 * or a failed upload leaves extra private keys (harmless, and a later
 * upload re-sends them) but never a public key on the relay whose private
 * half we lost.
 */
import { PreKeyStore } from '@parley/core';
import type { PreKeyCounts, PreKeyUpload } from '../relay-link.ts';
import { type Upkeep, loadUpkeep, savePreKeys, saveUpkeep } from '../state/identity.ts';
import type { Context } from './context.ts';

function loadPreKeys(ctx: Context): PreKeyStore {
  const bytes = ctx.store.get('identity', 'prekeys');
  if (!bytes) throw new TypeError('no prekey store: the device is not set up');
  return PreKeyStore.deserialize(bytes, ctx.device, ctx.provider);
}

/** Registers this device (certificate and every public prekey) with the relay. Idempotent. */
export async function registerDevice(ctx: Context): Promise<PreKeyCounts> {
  const prekeys = loadPreKeys(ctx);
  const counts = await ctx.relay.registerDevice({
    certificate: ctx.device.certificate,
    signedPreKey: prekeys.currentSignedPreKey(),
    lastResortKemPreKey: prekeys.lastResortKemPreKey(),
    oneTimePreKeys: prekeys.oneTimePreKeys(),
    kemPreKeys: prekeys.kemPreKeys(),
  });
  ctx.store.transaction(() => {
    const upkeep = loadUpkeep(ctx.store);
    const current = prekeys.currentSignedPreKey().id;
    const signedPreKeys = upkeep.signedPreKeys.length ? upkeep.signedPreKeys : [{ id: current, createdAt: ctx.clock() }];
    saveUpkeep(ctx.store, { signedPreKeys, registered: true });
  });
  return counts;
}

export interface UpkeepReport {
  readonly rotated: boolean;
  readonly pruned: number;
  readonly oneTimeAdded: number;
  readonly kemAdded: number;
}

/**
 * One round of upkeep: rotate the signed prekey when due, drop the ones
 * past their grace period, refill the relay's pools when low, and re-upload
 * anything the relay lacks.
 */
export async function maintainPreKeys(ctx: Context): Promise<UpkeepReport> {
  const now = ctx.clock();
  const o = ctx.options;
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
    const pruned = prune(prekeys, upkeep, now, o.signedPreKeyGraceMs);
    upkeep = pruned.upkeep;
    savePreKeys(ctx.store, prekeys);
    saveUpkeep(ctx.store, upkeep);
    return { rotated, pruned: pruned.count, signed: prekeys.currentSignedPreKey(), lastResort: prekeys.lastResortKemPreKey() };
  });

  const counts = await ctx.relay.preKeyCounts();
  const upload: { -readonly [K in keyof PreKeyUpload]: PreKeyUpload[K] } = {};
  if (local.rotated || counts.signedPreKeyId !== local.signed.id) upload.signedPreKey = local.signed;
  if (counts.lastResortKemPreKeyId !== local.lastResort.id) upload.lastResortKemPreKey = local.lastResort;
  const needOneTime = counts.oneTimePreKeys < Math.ceil(o.oneTimePreKeys * o.refillBelow) ? o.oneTimePreKeys - counts.oneTimePreKeys : 0;
  const needKem = counts.kemPreKeys < Math.ceil(o.kemPreKeys * o.refillBelow) ? o.kemPreKeys - counts.kemPreKeys : 0;
  if (needOneTime > 0 || needKem > 0) {
    ctx.store.transaction(() => {
      const prekeys = loadPreKeys(ctx);
      if (needOneTime > 0) upload.oneTimePreKeys = prekeys.generateOneTimePreKeys(needOneTime);
      if (needKem > 0) upload.kemPreKeys = prekeys.generateKemPreKeys(needKem);
      savePreKeys(ctx.store, prekeys);
    });
  }
  if (Object.keys(upload).length) await ctx.relay.uploadPreKeys(upload);
  return { rotated: local.rotated, pruned: local.pruned, oneTimeAdded: needOneTime, kemAdded: needKem };
}

/**
 * Keeps every signed prekey that was current within the grace period: a
 * key stops being current when its successor is created, and an initial
 * message made with it may still arrive until the grace period after that.
 */
function prune(prekeys: PreKeyStore, upkeep: Upkeep, now: number, graceMs: number): { upkeep: Upkeep; count: number } {
  const list = upkeep.signedPreKeys;
  const older = list.slice(0, -1);
  // older[i] was replaced when list[i + 1] was created.
  const keep = older.filter((_, i) => now - (list[i + 1] as { createdAt: number }).createdAt < graceMs).length;
  const removed = prekeys.pruneSignedPreKeys(keep);
  if (removed.length === 0) return { upkeep, count: 0 };
  const gone = new Set(removed);
  return { upkeep: { ...upkeep, signedPreKeys: list.filter((s) => !gone.has(s.id)) }, count: removed.length };
}
