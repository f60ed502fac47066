/**
 * How the SDK names things in storage keys, on the relay's wire and to the
 * app. spec/10-client.md §2.
 *
 *  - An account id is its 32-byte account key in unpadded base64url (43
 *    characters), the relay's spelling too.
 *  - A device is `<account id>.<device id>`.
 *  - A message id is 16 random bytes, base64url (22 characters) in keys.
 *  - An envelope's client id (the relay's idempotency key) is the message
 *    id's base64url, plus `.r<n>` for the n-th re-send after a retry request
 *    (a fresh id, since the relay remembers ids it has stored).
 *
 * Base64url uses btoa/atob so this file runs in browsers as well as Node.
 */
import type { CryptoProvider } from '@parley/core';
import { MESSAGE_ID_BYTES } from '../content/content.ts';

export interface DeviceAddress {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i] as number);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Strict: only the canonical unpadded spelling decodes. Returns null otherwise. */
export function fromBase64Url(text: string, length?: number): Uint8Array | null {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  let bin: string;
  try {
    bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (toBase64Url(out) !== text) return null;
  if (length !== undefined && out.length !== length) return null;
  return out;
}

/** The account id the app and the relay see. */
export function accountId(accountKey: Uint8Array): string {
  return toBase64Url(accountKey);
}

/** Parses an account id; throws a TypeError naming the argument when it is not one. */
export function parseAccountId(id: string, name = 'accountId'): Uint8Array {
  const key = fromBase64Url(id.trim(), 32);
  if (!key) throw new TypeError(`"${name}" expected a 43-character base64url account id`);
  return key;
}

export function deviceKey(a: DeviceAddress): string {
  return `${accountId(a.accountKey)}.${a.deviceId}`;
}

export function newMessageId(provider: CryptoProvider): Uint8Array {
  return provider.random(MESSAGE_ID_BYTES);
}

export function messageIdText(messageId: Uint8Array): string {
  return toBase64Url(messageId);
}

/** The relay client id for a message's envelopes: attempt 0 is the first send, n > 0 the n-th re-send. */
export function clientIdFor(messageId: Uint8Array, attempt = 0): string {
  return attempt === 0 ? messageIdText(messageId) : `${messageIdText(messageId)}.r${attempt}`;
}

/** The message id a client id names, or null when it is not one of ours. */
export function messageIdFromClientId(clientId: string): Uint8Array | null {
  const m = /^([A-Za-z0-9_-]{22})(?:\.r[1-9][0-9]{0,5})?$/.exec(clientId);
  return m ? fromBase64Url(m[1] as string, MESSAGE_ID_BYTES) : null;
}
