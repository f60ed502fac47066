/**
 * Contacts and verification marks: the commands behind addContact,
 * syncContacts and verifySafetyNumber. spec/10-client.md §5.6.
 *
 * Every change to a contact also goes to our other devices (a `contacts`
 * content, engine/contacts-sync.ts), in the transaction that makes it.
 */
import { ClientError } from '../errors.ts';
import { type Contact, contactByName, getContact, listContacts, putContact } from '../state/contacts.ts';
import { accountId, parseAccountId } from '../state/ids.ts';
import { queueContactsSync } from './contacts-sync.ts';
import { devicesFor } from './directory.ts';
import type { ClientStore } from '../store/types.ts';
import type { Command } from './run.ts';

/** Longest contact name, in UTF-16 code units: at most 3 UTF-8 bytes each, so any script fits the stored record's 256 bytes. */
const MAX_CONTACT_NAME = 64;

/**
 * Adds (or renames) a contact; the account must have a device on the relay.
 * A name that pointed at another account moves off it (renamed "<name> (old
 * xxxxxx)") with a `safety-number-change` event.
 */
export function addContactCommand(id: string, name: string): Command<void> {
  const accountKey = parseAccountId(id);
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_CONTACT_NAME)
    throw new TypeError(`"name" expected 1..${MAX_CONTACT_NAME} characters`);
  return {
    async prepare(ctx, pending) {
      const known = await devicesFor(ctx, accountKey, pending, true);
      if (known.trusted.length === 0 && known.refused.length === 0)
        throw new ClientError('UNKNOWN_ACCOUNT', 'no device of this account is registered');
    },
    commit(ctx, pending) {
      const previous = contactByName(ctx.store, name);
      if (previous && previous !== id) {
        pending.add('safety-number-change', { name, previous, account: id });
        const oldContact = getContact(ctx.store, parseAccountId(previous));
        if (oldContact) putContact(ctx.store, { ...oldContact, name: `${name} (old ${previous.slice(0, 6)})` });
      }
      const current = getContact(ctx.store, accountKey);
      putContact(ctx.store, { accountKey, name, verified: current?.verified ?? false });
      const changed = [getContact(ctx.store, accountKey) as Contact];
      if (previous && previous !== id) changed.push(getContact(ctx.store, parseAccountId(previous)) as Contact);
      queueContactsSync(ctx, changed.filter(Boolean));
    },
  };
}

/** Sends every contact to our other devices again. */
export function syncContactsCommand(): Command<void> {
  return {
    commit(ctx) {
      queueContactsSync(ctx, listContacts(ctx.store));
    },
  };
}

/** Marks a contact verified here and on our other devices (a sync never takes a mark away). No contact: nothing. */
export function markVerifiedCommand(accountKey: Uint8Array): Command<void> {
  return {
    commit(ctx) {
      const c = getContact(ctx.store, accountKey);
      if (!c) return;
      putContact(ctx.store, { ...c, verified: true });
      queueContactsSync(ctx, [{ ...c, verified: true }]);
    },
  };
}

/** The contacts as the app sees them. */
export function contactList(store: ClientStore): { account: string; name: string; verified: boolean }[] {
  return listContacts(store).map((c) => ({ account: accountId(c.accountKey), name: c.name, verified: c.verified }));
}
