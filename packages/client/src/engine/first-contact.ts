/**
 * A per-sender budget for first-contact handshakes. spec/10-client.md §4.2.2.
 *
 * A PreKeyMessage that matches no session we hold makes us run a whole
 * PQXDH handshake (signature checks, four X25519, one ML-KEM decapsulation:
 * about 1.4 ms with node:crypto, 6.8 ms with noble) before anything about it
 * can be judged, and one that fails afterwards leaves nothing behind, so the
 * same bytes cost the same again. Without a bound, one account could keep a
 * device's CPU busy. The budget is per sender account (the relay
 * authenticates it) and per hour, and it is spent before the handshake runs,
 * in its own transaction, so a handshake that fails still counts. A
 * PreKeyMessage repeating the handshake of a session we hold, current or
 * archived (its sender has not heard from us yet, or we started a fresh
 * session since), is not a handshake and costs nothing.
 */
import { type CryptoProvider, decodeMessage } from '@parley/core';
import { ClientError } from '../errors.ts';
import { type DeviceAddress, accountId } from '../state/ids.ts';
import { loadSession } from '../state/sessions.ts';
import type { ClientStore } from '../store/types.ts';

/**
 * Handshakes one sender account may make us run per hour. An honest account
 * needs one per device it starts a session from (the relay allows 32 devices
 * per account), and again after a reinstall or a session reset; twice that
 * covers re-linking every device within the hour. 64 handshakes cost at most
 * about 0.45 s of CPU per account per hour with the slowest backend.
 */
export const MAX_FIRST_CONTACTS_PER_HOUR = 64;

const HOUR = 3600 * 1000;

/**
 * True when `bytes` (a PreKeyMessage of either version) would start a new
 * session with `sender` rather than repeat one we hold. Both versions run
 * the same handshake (v2 adds a version list), so both spend the budget.
 */
export function startsHandshake(store: ClientStore, provider: CryptoProvider, sender: DeviceAddress, bytes: Uint8Array): boolean {
  const message = decodeMessage(bytes);
  if (message.type !== 'prekey' && message.type !== 'prekey2') return false;
  return !loadSession(store, sender, provider).record.hasBaseKey(message.use.baseKey);
}

/**
 * Spends one handshake from `sender`'s account budget, or throws
 * RATE_LIMITED when it is spent. Runs its own transaction.
 */
export function spendFirstContact(store: ClientStore, sender: DeviceAddress, now: number): void {
  const key = `h/${accountId(sender.accountKey)}/${Math.floor(now / HOUR)}`;
  store.transaction(() => {
    const used = Number(new TextDecoder().decode(store.get('processed', key) ?? new Uint8Array()) || '0');
    if (used >= MAX_FIRST_CONTACTS_PER_HOUR) {
      throw new ClientError('RATE_LIMITED', 'too many first-contact handshakes from this account this hour', {
        limit: MAX_FIRST_CONTACTS_PER_HOUR,
      });
    }
    store.put('processed', key, new TextEncoder().encode(String(used + 1)), now + 2 * HOUR);
  });
}
