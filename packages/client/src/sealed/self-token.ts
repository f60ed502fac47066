/**
 * The self token (spec/12-sealed-sender.md §13): a delivery token of our own
 * account, held by each of our devices, so copies for our other devices go
 * sealed in the same request as the contacts' part.
 *
 * When it may be used matters. Our other devices open a sealed envelope only
 * under a hash they know, and they learn a new self token from the sync
 * content that announces it. So a device starts sealing with the token it
 * granted only once that sync was accepted by the relay (its outbox entry is
 * gone): every later sealed copy sits behind the announcement in each
 * mailbox. A token learned from another device's sync is usable at once (the
 * relay stored that sync for all our devices together). And a token is used
 * only while our device set is the one it was announced to; after a device
 * is linked or removed the copies go identified until upkeep grants again.
 */
import { readArray, readBytes, readOptional, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import type { Context } from '../engine/context.ts';
import { loadDevices } from '../state/devices.ts';
import { getQueued } from '../state/outbox.ts';
import { asRecord, decodeRecord, encodeRecord } from '../state/record.ts';
import { REFRESH_BEFORE_EXPIRY_MS } from './constants.ts';

const SELF_TAG = 'parley/client-self-token';
const SELF_KEY = 'sealed/self';
/** Our devices besides this one: at most the relay's devices per account. */
const MAX_OWN_DEVICES = 64;

export interface SelfToken {
  readonly token: Uint8Array;
  readonly expiresAt: number;
  /** The outbox key of the sync announcing a token this device granted; null once usable. */
  readonly syncKey: string | null;
  /** Our other devices (ids, ascending) when the token was announced. */
  readonly devices: readonly number[];
}

function ownDevices(ctx: Context): number[] {
  return loadDevices(ctx.store, ctx.self.accountKey, ctx.provider)
    .trusted.map((c) => c.deviceId)
    .filter((id) => id !== ctx.self.deviceId)
    .sort((a, b) => a - b);
}

export function putSelfToken(ctx: Context, t: Omit<SelfToken, 'devices'>): void {
  const devices = ownDevices(ctx);
  ctx.store.put('identity', SELF_KEY, encodeRecord(SELF_TAG, [t.token, timestampToBytes(t.expiresAt), t.syncKey, devices]), t.expiresAt);
}

function readSelfToken(ctx: Context): SelfToken | null {
  const bytes = ctx.store.get('identity', SELF_KEY);
  if (!bytes) return null;
  const f = decodeRecord(bytes, SELF_TAG, 4);
  return asRecord(SELF_TAG, () => ({
    token: readBytes(f[0], 'token', 32),
    expiresAt: readTimestamp(f[1], 'expiresAt'),
    syncKey: readOptional(f[2], (v) => {
      if (typeof v !== 'string' || v.length > 256) throw new TypeError('syncKey');
      return v;
    }),
    devices: readArray(f[3], 'devices', { min: 0, max: MAX_OWN_DEVICES }).map((d) => readUint(d, 'device')),
  }));
}

/** The self token to seal our own copies with now, or null (they go identified). */
export function usableSelfToken(ctx: Context): Uint8Array | null {
  const t = readSelfToken(ctx);
  if (!t || t.expiresAt <= ctx.clock()) return null;
  if (t.syncKey !== null && getQueued(ctx.store, t.syncKey) !== null) return null;
  const now = ownDevices(ctx);
  if (now.length !== t.devices.length || now.some((id, i) => id !== t.devices[i])) return null;
  return t.token;
}

/** True when upkeep should grant a new self token: none, near its end, or our device set changed since. */
export function needsSelfGrant(ctx: Context): boolean {
  const t = readSelfToken(ctx);
  if (!t || t.expiresAt - ctx.clock() <= REFRESH_BEFORE_EXPIRY_MS) return true;
  const now = ownDevices(ctx);
  return now.length !== t.devices.length || now.some((id, i) => id !== t.devices[i]);
}

/** A self token another of our devices announced: the one with the most life left wins. */
export function acceptSelfToken(ctx: Context, token: Uint8Array, expiresAt: number): void {
  if (expiresAt <= ctx.clock()) return;
  const t = readSelfToken(ctx);
  if (t && t.expiresAt > expiresAt && t.syncKey === null) return;
  putSelfToken(ctx, { token, expiresAt, syncKey: null });
}

/** The relay refused it (revoked, expired): our copies go identified until upkeep grants a new one. */
export function forgetSelfToken(ctx: Context): void {
  ctx.store.delete('identity', SELF_KEY);
}
