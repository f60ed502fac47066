/**
 * The tokens this account issued (to each contact) and the tokens it holds
 * (granted by each contact), in the store. spec/12-sealed-sender.md §3.
 *
 * Issued: keyed by token hash, so a sealed envelope (which the relay
 * delivers under that hash) names its contact in one lookup. Held: the
 * newest token per contact account. Both live in the 'identity' table under
 * their own prefixes and carry an expiry, so the store forgets them by itself.
 */
import { fromHex, toHex } from '@parley/core';
import { readBool, readBytes, readTimestamp, timestampToBytes } from '../content/fields.ts';
import { accountId } from '../state/ids.ts';
import { asRecord, decodeRecord, encodeRecord } from '../state/record.ts';
import type { ClientStore } from '../store/types.ts';
import { ISSUED_RETENTION_MS } from './constants.ts';

const ISSUED_TAG = 'parley/client-issued-token';
const HELD_TAG = 'parley/client-held-token';
const ISSUED_PREFIX = 'sealed/issued/';
const HELD_PREFIX = 'sealed/held/';
const POOL_TAG = 'parley/client-pooled-token';
const POOL_PREFIX = 'sealed/pool/';

export interface IssuedToken {
  readonly hash: Uint8Array;
  /** The contact account the token was granted to. */
  readonly contact: Uint8Array;
  readonly token: Uint8Array;
  readonly expiresAt: number;
  readonly grantedAt: number;
  readonly revoked: boolean;
}

export interface HeldToken {
  readonly token: Uint8Array;
  readonly expiresAt: number;
}

export function putIssued(store: ClientStore, t: IssuedToken): void {
  store.put(
    'identity',
    `${ISSUED_PREFIX}${toHex(t.hash)}`,
    encodeRecord(ISSUED_TAG, [t.contact, t.token, timestampToBytes(t.expiresAt), timestampToBytes(t.grantedAt), t.revoked]),
    t.expiresAt + ISSUED_RETENTION_MS,
  );
}

function readIssued(hash: Uint8Array, bytes: Uint8Array): IssuedToken {
  const f = decodeRecord(bytes, ISSUED_TAG, 5);
  return asRecord(ISSUED_TAG, () => ({
    hash,
    contact: readBytes(f[0], 'contact', 32),
    token: readBytes(f[1], 'token', 32),
    expiresAt: readTimestamp(f[2], 'expiresAt'),
    grantedAt: readTimestamp(f[3], 'grantedAt'),
    revoked: readBool(f[4], 'revoked'),
  }));
}

export function getIssued(store: ClientStore, hash: Uint8Array): IssuedToken | null {
  const bytes = store.get('identity', `${ISSUED_PREFIX}${toHex(hash)}`);
  return bytes ? readIssued(hash, bytes) : null;
}

/** Every issued token still remembered (expired ones included until their retention ends). */
export function listIssued(store: ClientStore): IssuedToken[] {
  return store.list('identity', ISSUED_PREFIX).map((e) => {
    const hex = e.key.slice(ISSUED_PREFIX.length);
    return readIssued(fromHex(hex), e.value);
  });
}

export function issuedTo(store: ClientStore, contact: Uint8Array): IssuedToken[] {
  const id = accountId(contact);
  return listIssued(store).filter((t) => accountId(t.contact) === id);
}

export function putHeld(store: ClientStore, account: Uint8Array, t: HeldToken): void {
  store.put(
    'identity',
    `${HELD_PREFIX}${accountId(account)}`,
    encodeRecord(HELD_TAG, [t.token, timestampToBytes(t.expiresAt)]),
    t.expiresAt,
  );
}

/** The token `account` granted us, while it is live. */
export function getHeld(store: ClientStore, account: Uint8Array, now: number): HeldToken | null {
  const bytes = store.get('identity', `${HELD_PREFIX}${accountId(account)}`);
  if (!bytes) return null;
  const f = decodeRecord(bytes, HELD_TAG, 2);
  const held = asRecord(HELD_TAG, () => ({ token: readBytes(f[0], 'token', 32), expiresAt: readTimestamp(f[1], 'expiresAt') }));
  return held.expiresAt > now ? held : null;
}

export function dropHeld(store: ClientStore, account: Uint8Array): void {
  store.delete('identity', `${HELD_PREFIX}${accountId(account)}`);
}

/** A token registered at the relay ahead of any grant (the pool, spec/12 §3). */
export interface PooledToken {
  readonly hash: Uint8Array;
  readonly token: Uint8Array;
  readonly expiresAt: number;
}

export function putPooled(store: ClientStore, t: PooledToken): void {
  store.put('identity', `${POOL_PREFIX}${toHex(t.hash)}`, encodeRecord(POOL_TAG, [t.token, timestampToBytes(t.expiresAt)]), t.expiresAt);
}

export function listPooled(store: ClientStore, now: number): PooledToken[] {
  return store
    .list('identity', POOL_PREFIX)
    .map((e) => {
      const f = decodeRecord(e.value, POOL_TAG, 2);
      return asRecord(POOL_TAG, () => ({
        hash: fromHex(e.key.slice(POOL_PREFIX.length)),
        token: readBytes(f[0], 'token', 32),
        expiresAt: readTimestamp(f[1], 'expiresAt'),
      }));
    })
    .filter((t) => t.expiresAt > now);
}

/** Takes the pooled token with the most life left (removing it from the pool), or null. */
export function takePooled(store: ClientStore, now: number): PooledToken | null {
  const best = listPooled(store, now).sort((a, b) => b.expiresAt - a.expiresAt)[0] ?? null;
  if (best) store.delete('identity', `${POOL_PREFIX}${toHex(best.hash)}`);
  return best;
}
