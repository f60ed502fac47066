/**
 * Contacts and per-conversation settings. spec/10-client.md §7.
 *
 *   contacts/<account id>       -> ["parley/client-contact", 1, name: tstr, verified: bool]
 *   contacts/name:<name>        -> the account id the name points at (names are unique)
 *   conversations/<conversation id> -> ["parley/client-conversation", 1, expireTimer: uint]
 */
import { readBool, readText, readUint } from '../content/fields.ts';
import { MAX_EXPIRE_TIMER } from '../content/content.ts';
import { accountId, fromBase64Url } from './ids.ts';
import type { ClientStore } from '../store/types.ts';
import { asRecord, decodeRecord, encodeRecord } from './record.ts';

const CONTACT_TAG = 'parley/client-contact';
const CONVERSATION_TAG = 'parley/client-conversation';

export interface Contact {
  readonly accountKey: Uint8Array;
  readonly name: string;
  /** The user compared safety numbers with this contact. */
  readonly verified: boolean;
}

const nameKey = (name: string) => `name:${encodeURIComponent(name)}`;

export function getContact(store: ClientStore, accountKey: Uint8Array): Contact | null {
  const bytes = store.get('contacts', accountId(accountKey));
  if (!bytes) return null;
  const f = decodeRecord(bytes, CONTACT_TAG, 2);
  return asRecord(CONTACT_TAG, () => ({ accountKey, name: readText(f[0], 'name', 256), verified: readBool(f[1], 'verified') }));
}

/** The account a contact name points at, or null. */
export function contactByName(store: ClientStore, name: string): string | null {
  const ref = store.get('contacts', nameKey(name));
  return ref ? new TextDecoder().decode(ref) : null;
}

export function putContact(store: ClientStore, contact: Contact): void {
  const id = accountId(contact.accountKey);
  const previous = getContact(store, contact.accountKey);
  if (previous && previous.name !== contact.name) store.delete('contacts', nameKey(previous.name));
  store.put('contacts', id, encodeRecord(CONTACT_TAG, [contact.name, contact.verified]));
  store.put('contacts', nameKey(contact.name), new TextEncoder().encode(id));
}

/**
 * Takes a contact from one of our other devices (spec §7.1): its name wins
 * (an account that held the name before keeps it with a mark, as when the
 * user renames), and a verification mark is never taken away by a sync.
 * Returns whether anything changed.
 */
export function mergeSyncedContact(store: ClientStore, synced: Contact): boolean {
  const id = accountId(synced.accountKey);
  const current = getContact(store, synced.accountKey);
  const verified = synced.verified || (current?.verified ?? false);
  if (current && current.name === synced.name && current.verified === verified) return false;
  const holder = contactByName(store, synced.name);
  if (holder && holder !== id) {
    const other = getContact(store, fromBase64Url(holder, 32) as Uint8Array);
    if (other) putContact(store, { ...other, name: `${synced.name} (old ${holder.slice(0, 6)})` });
  }
  putContact(store, { accountKey: synced.accountKey, name: synced.name, verified });
  return true;
}

export function removeContact(store: ClientStore, accountKey: Uint8Array): void {
  const previous = getContact(store, accountKey);
  if (!previous) return;
  store.delete('contacts', accountId(accountKey));
  store.delete('contacts', nameKey(previous.name));
}

export function listContacts(store: ClientStore): Contact[] {
  return store
    .list('contacts')
    .filter((e) => !e.key.startsWith('name:'))
    .map((e) => getContact(store, fromBase64Url(e.key, 32) as Uint8Array) as Contact);
}

export function getExpireTimer(store: ClientStore, conversation: string): number {
  const bytes = store.get('conversations', conversation);
  if (!bytes) return 0;
  const f = decodeRecord(bytes, CONVERSATION_TAG, 1);
  return asRecord(CONVERSATION_TAG, () => readUint(f[0], 'expireTimer', MAX_EXPIRE_TIMER));
}

export function setExpireTimer(store: ClientStore, conversation: string, seconds: number): void {
  store.put('conversations', conversation, encodeRecord(CONVERSATION_TAG, [seconds]));
}
