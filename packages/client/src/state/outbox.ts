/**
 * Sends not yet accepted by the relay, in the `outbox` table, oldest first.
 * spec/10-client.md §4.1.
 *
 * An entry is written in the same transaction as the history entry (and,
 * once encrypted, as the session states it advanced), so a crash or a relay
 * outage between "the app called send" and "the relay stored it" loses
 * nothing: the entry is retried with the same envelope bytes and client ids,
 * which the relay deduplicates.
 *
 *   outbox/<sequence, 12 digits> -> ["parley/client-outbox", 1, messageId, attempt,
 *       accounts: [* bstr .size 32], toContacts / null, toOwnDevices / null,
 *       groupMessage / null, freshSession: [account, deviceId] / null, keepForRetry: bool,
 *       conversation: tstr / null, ttlSeconds: uint / null,
 *       envelopes: [* [account, deviceId, clientId, envelope, certificateHash, frankingTag / null]], createdAt,
 *       groupFrankingTag: bstr .size 32 / null]
 *
 * The two franking tags (a v2 message's, spec/14-franking.md §2) came later
 * as trailing fields: entries written before them (5-field envelopes, 12
 * fields) still read, with no tag.
 *
 * An entry for a disappearing message expires with it (spec §7.4): at
 * `createdAt + ttlSeconds`, or at its contents' own `sentAt + expireTimer`,
 * whichever is sooner. A message whose timer runs out before the relay took
 * it is never sent: it is gone from history too.
 */
import { readArray, readBool, readBytes, readOptional, readText, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import type { DeviceAddress } from './ids.ts';
import type { OutgoingEnvelope } from '../relay-link/link.ts';
import type { ClientStore } from '../store/types.ts';
import { contentExpiry, sooner } from './expiry.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-outbox';
const SEQUENCE_KEY = 'outbox-sequence';

export interface OutboxEntry {
  readonly messageId: Uint8Array;
  /** 0 for the first send; n for the n-th re-send (it gets a fresh client id). */
  readonly attempt: number;
  /** Accounts whose every device gets an envelope (our own account: our other devices). */
  readonly accounts: readonly Uint8Array[];
  /** Content for other accounts' devices, through one-to-one sessions. */
  readonly toContacts: Uint8Array | null;
  /** Content for this account's other devices. */
  readonly toOwnDevices: Uint8Array | null;
  /** A group message: these same bytes go to every device instead (spec §4.3). */
  readonly groupMessage: Uint8Array | null;
  /** A v2 group message's franking tag (the one in its signed header), sent beside it; null for v1. */
  readonly groupFrankingTag?: Uint8Array | null;
  /** Start a new session with this device before encrypting to it (retry requests, spec §6). */
  readonly freshSession: DeviceAddress | null;
  /** Keep the contents for retry requests once sent. */
  readonly keepForRetry: boolean;
  /** The conversation whose history entry becomes "sent". */
  readonly conversation: string | null;
  /** Relay TTL for the envelopes (disappearing messages), or null for the relay's default. */
  readonly ttlSeconds: number | null;
  /** Envelopes already encrypted (their session steps are committed). */
  readonly envelopes: readonly OutgoingEnvelope[];
  readonly createdAt: number;
}

export interface QueuedEntry {
  readonly key: string;
  readonly entry: OutboxEntry;
}

const device = (v: unknown, what: string): DeviceAddress => {
  const f = readArray(v, what, 2);
  return { accountKey: readBytes(f[0], `${what}.account`, 32), deviceId: readUint(f[1], `${what}.deviceId`) };
};

function encode(e: OutboxEntry): Uint8Array {
  return encodeRecord(TAG, [
    e.messageId,
    e.attempt,
    [...e.accounts],
    e.toContacts,
    e.toOwnDevices,
    e.groupMessage,
    e.freshSession ? [e.freshSession.accountKey, e.freshSession.deviceId] : null,
    e.keepForRetry,
    e.conversation,
    e.ttlSeconds,
    e.envelopes.map((x) => [
      x.recipient.accountKey,
      x.recipient.deviceId,
      x.clientId,
      x.envelope,
      x.certificateHash ?? null,
      x.frankingTag ?? null,
    ]),
    timestampToBytes(e.createdAt),
    e.groupFrankingTag ?? null,
  ]);
}

function decode(bytes: Uint8Array): OutboxEntry {
  const f = decodeRecord(bytes, TAG, [12, 13]);
  const payload = (v: unknown, what: string) => readOptional(v, (x) => readBytes(x, what, { max: 1 << 21 }));
  return asRecord(TAG, () => ({
    messageId: readBytes(f[0], 'messageId', 16),
    attempt: readUint(f[1], 'attempt'),
    accounts: readArray(f[2], 'accounts', { min: 1, max: 4096 }).map((a) => readBytes(a, 'account', 32)),
    toContacts: payload(f[3], 'toContacts'),
    toOwnDevices: payload(f[4], 'toOwnDevices'),
    groupMessage: payload(f[5], 'groupMessage'),
    freshSession: readOptional(f[6], (v) => device(v, 'freshSession')),
    keepForRetry: readBool(f[7], 'keepForRetry'),
    conversation: readOptional(f[8], (v) => readText(v, 'conversation', 64)),
    ttlSeconds: readOptional(f[9], (v) => readUint(v, 'ttlSeconds')),
    envelopes: readArray(f[10], 'envelopes', { min: 0, max: 1 << 16 }).map((v) => {
      const x = readArray(v, 'envelope', { min: 5, max: 6 });
      const certificateHash = readOptional(x[4], (h) => readBytes(h, 'certificateHash', 32));
      const frankingTag = readOptional(x[5] ?? null, (t) => readBytes(t, 'frankingTag', 32));
      return {
        recipient: { accountKey: readBytes(x[0], 'recipient', 32), deviceId: readUint(x[1], 'deviceId') },
        clientId: readText(x[2], 'clientId', 64),
        envelope: readBytes(x[3], 'envelope', { max: 1 << 21 }),
        ...(certificateHash ? { certificateHash } : {}),
        ...(frankingTag ? { frankingTag } : {}),
      };
    }),
    createdAt: readTimestamp(f[11], 'createdAt'),
    groupFrankingTag: readOptional(f[12] ?? null, (t) => readBytes(t, 'groupFrankingTag', 32)),
  }));
}

/** Appends an entry; returns its key. Call inside the transaction that records the message. */
export function enqueue(store: ClientStore, entry: OutboxEntry): string {
  const seqBytes = store.get('identity', SEQUENCE_KEY);
  const seq = seqBytes ? Number(new TextDecoder().decode(seqBytes)) + 1 : 1;
  store.put('identity', SEQUENCE_KEY, new TextEncoder().encode(String(seq)));
  const key = String(seq).padStart(12, '0');
  store.put('outbox', key, encode(entry), expiryOf(entry, store));
  return key;
}

export function updateQueued(store: ClientStore, key: string, entry: OutboxEntry): void {
  store.put('outbox', key, encode(entry), expiryOf(entry, store));
}

/** When the entry disappears (null: it waits until sent). */
export function expiryOf(entry: OutboxEntry, store?: ClientStore): number | null {
  let at = entry.ttlSeconds ? entry.createdAt + entry.ttlSeconds * 1000 : null;
  for (const payload of [entry.toContacts, entry.toOwnDevices]) if (payload) at = sooner(at, contentExpiry(payload, store));
  return at;
}

export function dequeue(store: ClientStore, key: string): void {
  store.delete('outbox', key);
}

export function getQueued(store: ClientStore, key: string): OutboxEntry | null {
  const bytes = store.get('outbox', key);
  return bytes ? decode(bytes) : null;
}

/** Every queued entry, oldest first. */
export function listQueued(store: ClientStore): QueuedEntry[] {
  return store.list('outbox').map((e) => ({ key: e.key, entry: decode(e.value) }));
}
