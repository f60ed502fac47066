/**
 * Detecting that this device's store was restored from an older copy, and
 * what the SDK then does. spec/10-client.md §7.5.
 *
 * The witness is the relay: it holds the signed prekey and the last-resort
 * KEM prekey this device uploaded last. Their ids only grow, and each is
 * signed by this device's key, so a relay-held key with a higher id than
 * the newest this store ever made can only have come from a newer copy of
 * this store. Upkeep compares the relay's ids with ours; if the relay's is
 * higher, the claim is checked on our own bundle (a relay that cannot show
 * the signed key lied, and is reported, not obeyed: it must not be able
 * to reset sessions at will).
 *
 * A proven restore:
 *  - retires every session (state/restore.ts): the next message to each
 *    peer device starts a fresh session, so no restored sending chain
 *    encrypts again;
 *  - rotates our sending chain in every group (its restored state would
 *    repeat message keys too); the next group message distributes the new one;
 *  - moves the prekey ids past the relay's, so the relay accepts our new
 *    signed and last-resort keys (it keeps ids increasing).
 */
import { type PreKeyStore, certificatesEqual, decodeAnyBundle, verifyBundle } from '@parley/core';
import type { PreKeyCounts } from '../relay-link/link.ts';
import { loadGroup, listGroupIds, saveGroup } from '../state/groups.ts';
import { retireSession } from '../state/restore.ts';
import { loadSession } from '../state/sessions.ts';
import { type DeviceAddress, parseAccountId } from '../state/ids.ts';
import type { Context } from './context.ts';

/**
 * Most prekey ids skipped to get past the relay's after a restore. Each
 * step is one key generation (an ML-KEM one for the last-resort key, about
 * a millisecond); a gap this wide means months of rotations, or a forged
 * count, and the keys then simply stay behind (reported).
 */
export const MAX_RESTORE_ID_CATCHUP = 512;

/**
 * 'unproven': the relay claims a newer last-resort key, but served a
 * one-time KEM key (it serves the last-resort one only when none is left),
 * so the claim could not be checked this round; nothing is done.
 */
export type RestoreVerdict = 'none' | 'restored' | 'unproven' | 'relay-lied';

/** Whether the relay's counts claim prekeys newer than this store's, and if so whether our own bundle proves it. */
export async function checkRestore(
  ctx: Context,
  counts: PreKeyCounts,
  local: { signedId: number; lastResortId: number },
): Promise<RestoreVerdict> {
  if ((counts.signedPreKeyId ?? 0) <= local.signedId && (counts.lastResortKemPreKeyId ?? 0) <= local.lastResortId) return 'none';
  let served: Awaited<ReturnType<Context['relay']['fetchBundles']>>;
  try {
    served = await ctx.relay.fetchBundles(ctx.self.accountKey, ctx.self.deviceId);
  } catch {
    return 'relay-lied';
  }
  const own = served.find((b) => b.deviceId === ctx.self.deviceId);
  if (!own) return 'relay-lied';
  try {
    const bundle = decodeAnyBundle(own.bundle);
    verifyBundle(bundle, { expectedAccountKey: ctx.self.accountKey, provider: ctx.provider });
    if (!certificatesEqual(bundle.certificate, ctx.device.certificate)) return 'relay-lied';
    const newerSigned = bundle.signedPreKey.id > local.signedId;
    const newerLastResort = bundle.kemPreKey.lastResort && bundle.kemPreKey.id > local.lastResortId;
    if (newerSigned || newerLastResort) return 'restored';
    const signedClaimChecked = (counts.signedPreKeyId ?? 0) > local.signedId;
    return !signedClaimChecked && !bundle.kemPreKey.lastResort ? 'unproven' : 'relay-lied';
  } catch {
    return 'relay-lied';
  }
}

/** Retires every session and rotates every group chain. Call inside a transaction. Returns how many sessions were retired. */
export function retireRestoredState(ctx: Context): number {
  let retired = 0;
  for (const entry of ctx.store.list('sessions')) {
    const peer = parseDeviceKey(entry.key);
    if (!peer) continue;
    const { record } = loadSession(ctx.store, peer, ctx.provider);
    if (!record.sessionId) continue;
    retireSession(ctx.store, entry.key, record.sessionId);
    retired++;
  }
  for (const groupId of listGroupIds(ctx.store)) {
    const group = loadGroup(ctx.store, groupId, ctx.provider);
    if (!group) continue;
    group.session.rotate();
    saveGroup(ctx.store, group);
  }
  return retired;
}

/**
 * Rotates until the signed and last-resort ids exceed the relay's (at most
 * MAX_RESTORE_ID_CATCHUP steps each), keeping only the new current keys:
 * the restored copy's older keys are not the ones initiators were given
 * (the lost newer copy's were), so an initial message made with either
 * fails and heals through a retry request (spec §6). True when both got past.
 */
export function catchUpPreKeyIds(prekeys: PreKeyStore, counts: PreKeyCounts): boolean {
  const relaySigned = counts.signedPreKeyId ?? 0;
  const relayLastResort = counts.lastResortKemPreKeyId ?? 0;
  for (let step = 0; prekeys.currentSignedPreKey().id <= relaySigned && step < MAX_RESTORE_ID_CATCHUP; step++) {
    prekeys.rotateSignedPreKey();
    prekeys.pruneSignedPreKeys(0);
  }
  for (let step = 0; prekeys.lastResortKemPreKey().id <= relayLastResort && step < MAX_RESTORE_ID_CATCHUP; step++) {
    prekeys.rotateLastResortKemPreKey();
    prekeys.pruneLastResortKemPreKeys(0);
  }
  prekeys.pruneSignedPreKeys(0);
  prekeys.pruneLastResortKemPreKeys(0);
  return prekeys.currentSignedPreKey().id > relaySigned && prekeys.lastResortKemPreKey().id > relayLastResort;
}

/** `<account id>.<device id>` back to an address, or null for a key that is not one. */
function parseDeviceKey(key: string): DeviceAddress | null {
  const dot = key.lastIndexOf('.');
  const deviceId = Number(key.slice(dot + 1));
  if (dot <= 0 || !Number.isSafeInteger(deviceId) || deviceId < 1) return null;
  try {
    return { accountKey: parseAccountId(key.slice(0, dot)), deviceId };
  } catch {
    return null;
  }
}
