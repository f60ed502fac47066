/**
 * Franked material of received v2 messages: everything a report of the
 * message needs (spec/14-franking.md §6, formats-v2 §6.5), kept in the
 * `franked` table beside the message and gone with it.
 * spec/10-client.md §7.6.
 *
 *   franked/m/<history key> -> ["parley/client-franked", 1, envelopeId: bstr .size 16,
 *       acceptedAt: bstr .size 8, frankKeyId: uint, frank: bstr .size 32, frankingTag: bstr .size 32,
 *       frankingKey: bstr .size 32, sender account: bstr .size 32, sender device: uint,
 *       recipientDevice: uint, plaintext: bstr, conversation: tstr, group: bstr .size 32 / null,
 *       messageId: bstr .size 16, receivedAt: bstr .size 8, attestation: bstr .size 64 / null,
 *       sealed: bool]
 *   franked/o/<received at, 15 digits>/<history key> -> (empty)   ; oldest-first order, for the bound
 *   franked/n -> rows written since the bound was last enforced
 *
 * The history key (`<conversation>/<stored at>/<message id>`, state/history.ts)
 * names the row, so a conversation's rows list in time order under its
 * prefix, and every entry carries the message's own expiry: a disappearing
 * message takes its franking key with it (formats-v2 §9.4) without any code
 * path having to remember to delete it. Rows are written in the transaction
 * that stores the message (engine/apply.ts).
 *
 * This module knows nothing of sessions, groups or the relay; it stores
 * bytes it is given and hands them back. Its rows hold secrets (the franking
 * key opens the tag, the plaintext is the message): never logged.
 */
import { readBool, readBytes, readOptional, readText, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import { accountId, messageIdText } from '../state/ids.ts';
import { asRecord, decodeRecord, encodeRecord } from '../state/record.ts';
import type { ClientStore } from '../store/types.ts';
import type { DeliveryRecord } from '../relay-client/types.ts';

const TAG = 'parley/client-franked';

/**
 * Franked rows kept per device. Each row copies its message's plaintext (a
 * text, or an attachment pointer: at most a few KiB in practice, the content
 * limit at worst), so the table is bounded apart from the history; 10,000
 * rows is months of a busy user's received messages, longer than the relay
 * keeps a frank provable in most cases (FRANK_KEY_RETENTION, 90 days), and a
 * few tens of MiB at worst. Past it, the oldest rows go first: their
 * messages stay readable but can no longer be reported.
 */
export const MAX_FRANKED_MESSAGES = 10_000;

/**
 * The bound is enforced every this many rows written (one listing of the
 * small order index each time, not one per message), down to
 * MAX_FRANKED_MESSAGES - FRANKED_PRUNE_EVERY rows, so that the table never
 * holds more than MAX_FRANKED_MESSAGES.
 */
export const FRANKED_PRUNE_EVERY = 64;

/** Most rows one `listFranked` call returns (a report carries 1 + 10 items; a UI pages). */
export const MAX_FRANKED_LIST = 100;

/** Longest plaintext a row holds: the content codec's own bound on a stored content (state/history.ts). */
const MAX_PLAINTEXT_BYTES = 1 << 21;

/** The sender a frank and a report name: an account and one of its devices (core's Member / FrankDevice). */
export interface FrankedSender {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export interface FrankedMessage {
  /** The message's history key (state/history.ts): the row's name. */
  readonly messageKey: string;
  readonly conversation: string;
  /** The group id for a group message (read from its content; the relay never learns it), else null. */
  readonly group: Uint8Array | null;
  readonly messageId: Uint8Array;
  /** As the receiving client authenticated it: the 1:1 session's peer, or the group member whose chain signed. */
  readonly sender: FrankedSender;
  /** This device's id: the recipient device the relay franked for. */
  readonly recipientDevice: number;
  /** The relay's delivery record, as delivered. */
  readonly delivery: DeliveryRecord;
  /** The message's franking key (from its decrypted body). */
  readonly frankingKey: Uint8Array;
  /** The exact plaintext bytes the tag commits to (the encoded Content). */
  readonly plaintext: Uint8Array;
  /** A sealed send's attestation (formats-v2 §6.3), else null. */
  readonly attestation: Uint8Array | null;
  /** Sent sealed: the relay franked it without a sender (a report then needs a moderator token). */
  readonly sealed: boolean;
  readonly receivedAt: number;
  /** When the message (and this row) disappears, or null. */
  readonly expiresAt: number | null;
}

const rowKey = (messageKey: string) => `m/${messageKey}`;
const orderKey = (receivedAt: number, messageKey: string) => `o/${String(receivedAt).padStart(15, '0')}/${messageKey}`;
const COUNT_KEY = 'n';

function encode(m: FrankedMessage): Uint8Array {
  return encodeRecord(TAG, [
    m.delivery.envelopeId,
    timestampToBytes(m.delivery.acceptedAt),
    m.delivery.frankKeyId,
    m.delivery.frank,
    m.delivery.frankingTag,
    m.frankingKey,
    m.sender.accountKey,
    m.sender.deviceId,
    m.recipientDevice,
    m.plaintext,
    m.conversation,
    m.group,
    m.messageId,
    timestampToBytes(m.receivedAt),
    m.attestation,
    m.sealed,
  ]);
}

function decode(messageKey: string, bytes: Uint8Array, expiresAt: number | null): FrankedMessage {
  const f = decodeRecord(bytes, TAG, 16);
  return asRecord(TAG, () => ({
    messageKey,
    delivery: {
      envelopeId: readBytes(f[0], 'envelopeId', 16),
      acceptedAt: readTimestamp(f[1], 'acceptedAt'),
      frankKeyId: readUint(f[2], 'frankKeyId'),
      frank: readBytes(f[3], 'frank', 32),
      frankingTag: readBytes(f[4], 'frankingTag', 32),
    },
    frankingKey: readBytes(f[5], 'frankingKey', 32),
    sender: { accountKey: readBytes(f[6], 'sender', 32), deviceId: readUint(f[7], 'senderDevice') },
    recipientDevice: readUint(f[8], 'recipientDevice'),
    plaintext: readBytes(f[9], 'plaintext', { max: MAX_PLAINTEXT_BYTES }),
    conversation: readText(f[10], 'conversation', 64),
    group: readOptional(f[11], (v) => readBytes(v, 'group', 32)),
    messageId: readBytes(f[12], 'messageId', 16),
    receivedAt: readTimestamp(f[13], 'receivedAt'),
    attestation: readOptional(f[14], (v) => readBytes(v, 'attestation', 64)),
    sealed: readBool(f[15], 'sealed'),
    expiresAt,
  }));
}

/**
 * Stores a row (replacing one of the same message). Call inside the
 * transaction that stores the message, with the message's expiry.
 */
export function putFranked(store: ClientStore, m: FrankedMessage): void {
  store.put('franked', rowKey(m.messageKey), encode(m), m.expiresAt);
  store.put('franked', orderKey(m.receivedAt, m.messageKey), new Uint8Array(0), m.expiresAt);
  const written = Number(new TextDecoder().decode(store.get('franked', COUNT_KEY) ?? new Uint8Array(0))) + 1;
  if (written < FRANKED_PRUNE_EVERY) {
    store.put('franked', COUNT_KEY, new TextEncoder().encode(String(written)));
    return;
  }
  store.put('franked', COUNT_KEY, new TextEncoder().encode('0'));
  pruneFranked(store, MAX_FRANKED_MESSAGES - FRANKED_PRUNE_EVERY);
}

/** Drops the oldest rows past `keep`; returns how many went. */
export function pruneFranked(store: ClientStore, keep: number): number {
  const order = store.list('franked', 'o/');
  const excess = order.length - keep;
  for (const o of order.slice(0, Math.max(0, excess))) {
    store.delete('franked', o.key);
    store.delete('franked', rowKey(o.key.slice('o/'.length + 16)));
  }
  return Math.max(0, excess);
}

/** The row of the message with this history key, or null (never franked, dropped, or disappeared). */
export function getFranked(store: ClientStore, messageKey: string): FrankedMessage | null {
  const entry = store.list('franked', rowKey(messageKey)).find((e) => e.key === rowKey(messageKey));
  return entry ? decode(messageKey, entry.value, entry.expiresAt) : null;
}

/** The row of the message `senderAccount` sent with this id (through the history's message index). */
export function findFranked(store: ClientStore, senderAccount: Uint8Array, messageId: Uint8Array): FrankedMessage | null {
  const ref = store.get('message-index', `${accountId(senderAccount)}/${messageIdText(messageId)}`);
  return ref ? getFranked(store, new TextDecoder().decode(ref)) : null;
}

/**
 * A conversation's rows, oldest first: the most recent `limit` (at most
 * MAX_FRANKED_LIST), or those stored before `before` (a history key) when
 * paging back.
 */
export function listFranked(store: ClientStore, conversation: string, options: { limit?: number; before?: string } = {}): FrankedMessage[] {
  const limit = Math.min(options.limit ?? MAX_FRANKED_LIST, MAX_FRANKED_LIST);
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`"limit" expected an integer in 1..${MAX_FRANKED_LIST}`);
  const prefix = rowKey(`${conversation}/`);
  let entries = store.list('franked', prefix);
  if (options.before !== undefined) entries = entries.filter((e) => e.key < rowKey(options.before as string));
  return entries.slice(Math.max(0, entries.length - limit)).map((e) => decode(e.key.slice(2), e.value, e.expiresAt));
}

/** Deletes a message's row (call where the message itself is deleted). */
export function deleteFranked(store: ClientStore, messageKey: string): void {
  const entry = store.list('franked', rowKey(messageKey)).find((e) => e.key === rowKey(messageKey));
  if (!entry) return;
  const m = decode(messageKey, entry.value, entry.expiresAt);
  store.delete('franked', rowKey(messageKey));
  store.delete('franked', orderKey(m.receivedAt, messageKey));
}

/** acceptedAt as a report carries it: 8 bytes, milliseconds big-endian (core ReportItem). */
export function acceptedAtBytes(acceptedAt: number): Uint8Array {
  return timestampToBytes(acceptedAt);
}
