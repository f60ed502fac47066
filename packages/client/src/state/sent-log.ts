/**
 * Recently sent contents, kept so that a device that could not decrypt one
 * can ask for it again. spec/10-client.md §6.
 *
 *   sent/<message id> -> ["parley/client-sent", 1, toContacts: bstr / null,
 *                         toOwnDevices: bstr / null, recipients: [* [account, deviceId]],
 *                         resent: [* [account, deviceId]], sentAt: bstr .size 8]
 *
 * Bounded twice: each entry expires RETRY_WINDOW_MS after it was sent, and
 * `pruneSentLog` keeps at most MAX_SENT_LOG entries. A disappearing message
 * leaves the log no later than it leaves history (spec §7.4): the entry
 * expires at the content's own `sentAt + expireTimer` when that is sooner,
 * which is never after the sender's history entry (stored at or after
 * `sentAt`) disappears. A re-send to a device
 * is done at most once (the `resent` list), so a retry request cannot make
 * a sender loop. Only devices the message was sent to may get it again.
 */

import { bytesEqual } from '@parley/core';
import { contentExpiry } from './expiry.ts';
import { readArray, readBytes, readOptional, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import { type DeviceAddress, fromBase64Url, messageIdText } from './ids.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-sent';

/** A week: long enough for a phone that was off over a holiday to ask; the relay TTL bounds delivery anyway. */
export const RETRY_WINDOW_MS = 7 * 24 * 3600 * 1000;
/** Most contents kept; each is at most a content (1 MiB, usually < 1 KiB). */
export const MAX_SENT_LOG = 2000;

export interface SentEntry {
  readonly messageId: Uint8Array;
  /** The content as the other accounts' devices got it. */
  readonly toContacts: Uint8Array | null;
  /** The content as this account's other devices got it (a sync transcript). */
  readonly toOwnDevices: Uint8Array | null;
  readonly recipients: readonly DeviceAddress[];
  readonly resent: readonly DeviceAddress[];
  readonly sentAt: number;
}

const toCbor = (a: DeviceAddress) => [a.accountKey, a.deviceId];
const fromCbor = (v: unknown): DeviceAddress => {
  const f = readArray(v, 'device', 2);
  return { accountKey: readBytes(f[0], 'account', 32), deviceId: readUint(f[1], 'deviceId') };
};
export const sameDevice = (a: DeviceAddress, b: DeviceAddress) => a.deviceId === b.deviceId && bytesEqual(a.accountKey, b.accountKey);

export function putSent(store: ClientStore, entry: SentEntry): void {
  store.put(
    'sent',
    messageIdText(entry.messageId),
    encodeRecord(TAG, [
      entry.toContacts,
      entry.toOwnDevices,
      entry.recipients.map(toCbor),
      entry.resent.map(toCbor),
      timestampToBytes(entry.sentAt),
    ]),
    sentExpiry(entry, store),
  );
}

/** When an entry must be gone: the retry window, or the soonest disappearing timer among its contents. */
export function sentExpiry(entry: Pick<SentEntry, 'toContacts' | 'toOwnDevices' | 'sentAt'>, store?: ClientStore): number {
  let at = entry.sentAt + RETRY_WINDOW_MS;
  for (const payload of [entry.toContacts, entry.toOwnDevices]) {
    const disappears = payload ? contentExpiry(payload, store) : null;
    if (disappears !== null) at = Math.min(at, disappears);
  }
  return at;
}

export function getSent(store: ClientStore, messageId: Uint8Array): SentEntry | null {
  const bytes = store.get('sent', messageIdText(messageId));
  if (!bytes) return null;
  const f = decodeRecord(bytes, TAG, 5);
  return asRecord(TAG, () => ({
    messageId,
    toContacts: readOptional(f[0], (v) => readBytes(v, 'toContacts', { max: 1 << 21 })),
    toOwnDevices: readOptional(f[1], (v) => readBytes(v, 'toOwnDevices', { max: 1 << 21 })),
    recipients: readArray(f[2], 'recipients', { min: 0, max: 1 << 16 }).map(fromCbor),
    resent: readArray(f[3], 'resent', { min: 0, max: 1 << 16 }).map(fromCbor),
    sentAt: readTimestamp(f[4], 'sentAt'),
  }));
}

/**
 * Moves each entry's expiry earlier where a group timer set since it was
 * logged now asks for it (distributions, see state/expiry.ts). Upkeep runs
 * it before each sweep. Returns how many entries changed.
 */
export function reexpireSentLog(store: ClientStore): number {
  let changed = 0;
  for (const e of store.list('sent')) {
    const id = fromBase64Url(e.key, 16);
    const entry = id ? getSent(store, id) : null;
    if (!entry) continue;
    const at = sentExpiry(entry, store);
    if (e.expiresAt === null || at < e.expiresAt) {
      store.put('sent', e.key, e.value, at);
      changed++;
    }
  }
  return changed;
}

/** Deletes the oldest entries beyond `max`. Returns how many went. */
export function pruneSentLog(store: ClientStore, max = MAX_SENT_LOG): number {
  const entries = store.list('sent');
  if (entries.length <= max) return 0;
  // Entries expire a fixed time after they were sent, so expiry order is sending order.
  const oldest = entries.sort((a, b) => (a.expiresAt ?? 0) - (b.expiresAt ?? 0)).slice(0, entries.length - max);
  for (const e of oldest) store.delete('sent', e.key);
  return oldest.length;
}
