/**
 * Exactly-once processing. spec/10-client.md §4.
 *
 * The relay delivers at least once: an envelope whose acknowledgement was
 * lost comes again, and a sender that re-sends after a retry request (or
 * after losing the relay's answer) produces a second envelope with the same
 * message id. Two records in the `processed` table, written in the same
 * transaction as the message itself, make both harmless:
 *
 *   e/<sender device>/<client id>   an envelope already handled (whatever its outcome)
 *   m/<sender account id>/<message id>   a message id already applied
 *
 * Both expire after DEDUP_WINDOW_MS, longer than any relay keeps an
 * envelope (its TTL is the outer bound), so a duplicate can never outlive
 * its record.
 */
import { type DeviceAddress, accountId, deviceKey, messageIdText } from './ids.ts';
import type { ClientStore } from '../store/types.ts';

/** 31 days: the relay's default message TTL (30 days) plus a day of clock skew and delay. */
export const DEDUP_WINDOW_MS = 31 * 24 * 3600 * 1000;

const MARK = Uint8Array.of(1);

const envelopeKey = (sender: DeviceAddress, clientId: string) => `e/${deviceKey(sender)}/${clientId}`;
const messageKey = (senderAccount: Uint8Array, messageId: Uint8Array) => `m/${accountId(senderAccount)}/${messageIdText(messageId)}`;

export function envelopeSeen(store: ClientStore, sender: DeviceAddress, clientId: string): boolean {
  return store.get('processed', envelopeKey(sender, clientId)) !== undefined;
}

export function markEnvelope(store: ClientStore, sender: DeviceAddress, clientId: string, now: number): void {
  store.put('processed', envelopeKey(sender, clientId), MARK, now + DEDUP_WINDOW_MS);
}

export function messageSeen(store: ClientStore, senderAccount: Uint8Array, messageId: Uint8Array): boolean {
  return store.get('processed', messageKey(senderAccount, messageId)) !== undefined;
}

export function markMessage(store: ClientStore, senderAccount: Uint8Array, messageId: Uint8Array, now: number): void {
  store.put('processed', messageKey(senderAccount, messageId), MARK, now + DEDUP_WINDOW_MS);
}
