/**
 * When a stored copy of one of our own contents must disappear.
 * spec/10-client.md §7.4.
 *
 * History is not the only place a disappearing message lives on the
 * sending device: the outbox holds it until the relay takes it, and the
 * sent log keeps it for retry requests. Both take their expiry from the
 * content they hold, so no caller can forget to pass the timer on. The
 * timer counts from the content's `sentAt`, which is this device's clock
 * when the message was composed, at or before the moment its history
 * entry was stored: a copy never outlives the history entry.
 */
import { decodeContent } from '../content/content.ts';
import type { ClientStore } from '../store/types.ts';
import { getExpireTimer } from './contacts.ts';
import { conversationId } from './conversation-id.ts';

/**
 * `sentAt + expireTimer` of an encoded content (the sooner of it and its
 * inner content, for a sync transcript), or null.
 *
 * A group distribution carries our sending chain key, from which the keys
 * of every later message on that chain derive: a copy kept past a message's
 * timer could still open that message's ciphertext. So a distribution for a
 * group with a timer expires after that timer, counted from when it was
 * made: every message on the chain was sent after it, so none outlives it.
 */
export function contentExpiry(encoded: Uint8Array, store?: ClientStore): number | null {
  const content = decodeContent(encoded);
  const times = [content];
  if (content.body.type === 'sync') times.push(content.body.content);
  let at: number | null = null;
  for (const c of times) {
    if (c.expireTimer > 0) at = Math.min(at ?? Number.POSITIVE_INFINITY, c.sentAt + c.expireTimer * 1000);
    if (store && c.group && c.body.type === 'distribution') {
      const timer = getExpireTimer(store, conversationId({ kind: 'group', groupId: c.group }));
      if (timer > 0) at = Math.min(at ?? Number.POSITIVE_INFINITY, c.sentAt + timer * 1000);
    }
  }
  return at;
}

/** The sooner of two optional times. */
export function sooner(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
