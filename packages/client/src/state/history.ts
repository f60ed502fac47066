/**
 * Message history: every text and attachment sent or received, per
 * conversation, in the `messages` table, with an index by message id for
 * receipts. spec/10-client.md §7-§8.
 *
 *   messages/<conversation id>/<stored at, 15 digits>/<message id>
 *     -> ["parley/client-message", 1, outgoing: bool, sender account: bstr .size 32,
 *         sender device: uint, content: bstr (Content), storedAt: bstr .size 8,
 *         status: uint (0 queued, 1 sent, 2 delivered, 3 read)]
 *   message-index/<sender account id>/<message id> -> history key
 *
 * A message with a disappearing timer is written with `expiresAt` set on
 * both entries: the store hides it from that moment and sweeps it later, so
 * no code path can show an expired message.
 */
import { readBool, readBytes, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import { type Content, decodeContent, encodeContent } from '../content/content.ts';
import { accountId, messageIdText } from './ids.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const TAG = 'parley/client-message';

export const MessageStatus = { queued: 0, sent: 1, delivered: 2, read: 3 } as const;
export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus];
const STATUS_NAMES = ['queued', 'sent', 'delivered', 'read'] as const;
export type MessageStatusName = (typeof STATUS_NAMES)[number];

export interface StoredMessage {
  readonly conversation: string;
  readonly outgoing: boolean;
  readonly sender: { readonly accountKey: Uint8Array; readonly deviceId: number };
  readonly content: Content;
  readonly storedAt: number;
  readonly status: MessageStatusName;
  /** When the message disappears, or null. */
  readonly expiresAt: number | null;
}

/** A message's key in `messages` (and the name of its franked row, franking/store.ts). */
export function historyKey(conversation: string, storedAt: number, messageId: Uint8Array): string {
  return `${conversation}/${String(storedAt).padStart(15, '0')}/${messageIdText(messageId)}`;
}

function indexKey(senderAccount: Uint8Array, messageId: Uint8Array): string {
  return `${accountId(senderAccount)}/${messageIdText(messageId)}`;
}

export function addMessage(
  store: ClientStore,
  m: Omit<StoredMessage, 'status' | 'expiresAt'> & { status: MessageStatus; expiresAt: number | null },
): void {
  const key = historyKey(m.conversation, m.storedAt, m.content.messageId);
  const value = encodeRecord(TAG, [
    m.outgoing,
    m.sender.accountKey,
    m.sender.deviceId,
    encodeContent(m.content),
    timestampToBytes(m.storedAt),
    m.status,
  ]);
  store.put('messages', key, value, m.expiresAt);
  store.put('message-index', indexKey(m.sender.accountKey, m.content.messageId), new TextEncoder().encode(key), m.expiresAt);
}

function decodeStored(conversation: string, bytes: Uint8Array, expiresAt: number | null): StoredMessage {
  const f = decodeRecord(bytes, TAG, 6);
  return asRecord(TAG, () => ({
    conversation,
    outgoing: readBool(f[0], 'outgoing'),
    sender: { accountKey: readBytes(f[1], 'sender', 32), deviceId: readUint(f[2], 'senderDevice') },
    content: decodeContent(readBytes(f[3], 'content', { max: 1 << 21 })),
    storedAt: readTimestamp(f[4], 'storedAt'),
    status: STATUS_NAMES[readUint(f[5], 'status', 3)] as MessageStatusName,
    expiresAt,
  }));
}

/** A conversation's messages, oldest first (the most recent `limit` when given). */
export function listMessages(store: ClientStore, conversation: string, limit?: number): StoredMessage[] {
  const entries = store.list('messages', `${conversation}/`);
  const chosen = limit === undefined ? entries : entries.slice(Math.max(0, entries.length - limit));
  return chosen.map((e) => decodeStored(conversation, e.value, e.expiresAt));
}

/** The message `sender` sent with this id, with its history key. */
export function findMessage(
  store: ClientStore,
  senderAccount: Uint8Array,
  messageId: Uint8Array,
): { key: string; message: StoredMessage } | null {
  const ref = store.get('message-index', indexKey(senderAccount, messageId));
  if (!ref) return null;
  const key = new TextDecoder().decode(ref);
  const entry = store.list('messages', key).find((e) => e.key === key);
  if (!entry) return null;
  return { key, message: decodeStored(key.slice(0, key.indexOf('/')), entry.value, entry.expiresAt) };
}

/** Raises a message's status (never lowers it: a late "delivered" after "read" changes nothing). Returns true if it changed. */
export function raiseStatus(store: ClientStore, senderAccount: Uint8Array, messageId: Uint8Array, status: MessageStatus): boolean {
  const found = findMessage(store, senderAccount, messageId);
  if (!found || STATUS_NAMES.indexOf(found.message.status) >= status) return false;
  addMessage(store, { ...found.message, status });
  return true;
}
