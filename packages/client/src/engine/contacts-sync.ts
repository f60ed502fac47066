/**
 * Contacts on all of an account's devices (spec/10-client.md §5.6): names
 * and verification marks go to our own other devices in `contacts`
 * contents. An empty list is a request: a device that was just linked sends
 * one, and our other devices answer with their whole list (the primary
 * cannot send it at approval time: the new device is not registered yet, so
 * nothing would be encrypted to it).
 */
import { MAX_SYNCED_CONTACTS } from '../content/content.ts';
import { type Contact, listContacts } from '../state/contacts.ts';
import { newContent, queueDirect } from './compose.ts';
import type { Context } from './context.ts';

/** Queues these contacts to our own other devices, in contents of at most MAX_SYNCED_CONTACTS. Inside a transaction. */
export function queueContactsSync(ctx: Context, contacts: readonly Contact[]): void {
  for (let i = 0; i < contacts.length; i += MAX_SYNCED_CONTACTS) {
    const part = contacts.slice(i, i + MAX_SYNCED_CONTACTS).map((c) => ({ accountKey: c.accountKey, name: c.name, verified: c.verified }));
    queueDirect(ctx, ctx.self.accountKey, newContent(ctx, { type: 'contacts', contacts: part }), { keepForRetry: true });
  }
}

/** Asks our other devices for their contacts (an empty list). Inside a transaction. */
export function requestContacts(ctx: Context): void {
  queueDirect(ctx, ctx.self.accountKey, newContent(ctx, { type: 'contacts', contacts: [] }), { keepForRetry: true });
}

/** Answers a request from one of our devices with the whole list. Inside a transaction. */
export function answerContactsRequest(ctx: Context): void {
  queueContactsSync(ctx, listContacts(ctx.store));
}
