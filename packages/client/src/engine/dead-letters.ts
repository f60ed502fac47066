/**
 * Dead letters: envelopes this device's store failed on again and again.
 * spec/10-client.md §4.2.2.
 *
 * An envelope is left unacknowledged only when the local store fails (see
 * store-origin.ts), so the relay delivers it again. A failure that does not
 * go away (a full disk, a corrupted table, a bug that only this envelope
 * reaches inside the store) would then hold the inbox for ever, so each
 * local failure is counted, and at MAX_LOCAL_ATTEMPTS the envelope is parked
 * here, acknowledged, and reported. A dead letter keeps the envelope as it
 * came (ciphertext: this device can still decrypt it later), its sender and
 * the failure's label, so the app can show it, retry it or discard it.
 *
 *   dead-letters/n/<id>   attempts so far (text), expiring with the dedup window
 *   dead-letters/d/<id>   the parked envelope (versioned CBOR), with its delivery record: a v2
 *                         message is refused without the franking tag in it, so a letter that
 *                         lost it could never be delivered (letters parked before it read with none)
 *
 * `id` is a digest of sender device and client id: fixed length and printable
 * whatever the relay put in the client id.
 */
import { type CryptoProvider, decodeCbor, encodeCbor } from '@parley/core';
import { readArray, readBytes, readTimestamp, readUint, timestampToBytes } from '../content/fields.ts';
import { type DeviceAddress, deviceKey, toBase64Url } from '../state/ids.ts';
import type { DeliveryRecord, IncomingEnvelope } from '../relay-link/link.ts';
import { DEDUP_WINDOW_MS } from '../state/dedup.ts';
import type { ClientStore } from '../store/types.ts';

/**
 * Local failures one envelope may cause before it is parked. The mailbox
 * reconnects with a growing delay after each (about two minutes for ten),
 * which outlasts a busy database or a briefly full disk, yet a failure that
 * stays cannot hold what follows for longer.
 */
export const MAX_LOCAL_ATTEMPTS = 10;
/** Most dead letters kept; the oldest go first. Bounds what a broken store plus a flood can pile up. */
export const MAX_DEAD_LETTERS = 1000;
/** How long a dead letter is kept: as long as the relay would have kept the envelope (30 days), plus a day. */
export const DEAD_LETTER_RETENTION_MS = DEDUP_WINDOW_MS;

const VERSION = 1;
/** An envelope is at most core's message bound plus framing; the record adds a few hundred bytes. */
const MAX_RECORD_BYTES = (1 << 20) + 64 * 1024;

export interface DeadLetter {
  readonly id: string;
  readonly sender: DeviceAddress;
  readonly clientId: string;
  readonly serverTimestamp: number;
  readonly envelope: Uint8Array;
  /** The relay's delivery record (a franked v2 envelope), kept so a retry still has the tag; null without one. */
  readonly delivery: DeliveryRecord | null;
  /** The local failure's label (SQLITE_FULL, STORE_FAILED, ...): never content or key bytes. */
  readonly code: string;
  readonly attempts: number;
  readonly parkedAt: number;
}

export function deadLetterId(provider: CryptoProvider, sender: DeviceAddress, clientId: string): string {
  const digest = provider.backend.sha256(new TextEncoder().encode(`${deviceKey(sender)}\n${clientId}`));
  return toBase64Url(digest.subarray(0, 18));
}

/** Counts one more local failure of `env`; returns the count so far. Call inside a transaction. */
export function countLocalFailure(store: ClientStore, id: string, now: number): number {
  const key = `n/${id}`;
  const before = Number(new TextDecoder().decode(store.get('dead-letters', key) ?? new Uint8Array()) || '0');
  const attempts = before + 1;
  store.put('dead-letters', key, new TextEncoder().encode(String(attempts)), now + DEDUP_WINDOW_MS);
  return attempts;
}

/** Parks `env` (evicting the oldest beyond MAX_DEAD_LETTERS). Call inside a transaction. */
export function parkEnvelope(
  store: ClientStore,
  id: string,
  env: IncomingEnvelope,
  code: string,
  attempts: number,
  now: number,
): DeadLetter {
  const letter: DeadLetter = {
    id,
    sender: { accountKey: env.sender.accountKey, deviceId: env.sender.deviceId },
    clientId: env.clientId,
    serverTimestamp: env.serverTimestamp,
    envelope: env.envelope,
    delivery: env.delivery ?? null,
    code,
    attempts,
    parkedAt: now,
  };
  store.delete('dead-letters', `n/${id}`);
  store.put('dead-letters', `d/${id}`, encodeLetter(letter), now + DEAD_LETTER_RETENTION_MS);
  const all = listDeadLetters(store);
  for (const old of all.slice(0, Math.max(0, all.length - MAX_DEAD_LETTERS))) store.delete('dead-letters', `d/${old.id}`);
  return letter;
}

/** Every dead letter, oldest first. Records that no longer decode are skipped (and deleted by `deleteDeadLetter`). */
export function listDeadLetters(store: ClientStore): DeadLetter[] {
  const out: DeadLetter[] = [];
  for (const e of store.list('dead-letters', 'd/')) {
    const letter = decodeLetter(e.value);
    if (letter) out.push(letter);
  }
  return out.sort((a, b) => a.parkedAt - b.parkedAt || (a.id < b.id ? -1 : 1));
}

export function getDeadLetter(store: ClientStore, id: string): DeadLetter | null {
  if (!/^[A-Za-z0-9_-]{24}$/.test(id)) return null;
  const bytes = store.get('dead-letters', `d/${id}`);
  return bytes ? decodeLetter(bytes) : null;
}

export function deleteDeadLetter(store: ClientStore, id: string): void {
  if (/^[A-Za-z0-9_-]{24}$/.test(id)) store.delete('dead-letters', `d/${id}`);
}

function encodeLetter(l: DeadLetter): Uint8Array {
  return encodeCbor([
    VERSION,
    l.id,
    l.sender.accountKey,
    l.sender.deviceId,
    l.clientId,
    // Times as 8-byte big-endian, as everywhere in the client's records (CBOR integers stop at 2^32 here).
    timestampToBytes(Math.max(0, Math.floor(l.serverTimestamp))),
    l.envelope,
    l.code,
    l.attempts,
    timestampToBytes(l.parkedAt),
    l.delivery
      ? [l.delivery.envelopeId, timestampToBytes(l.delivery.acceptedAt), l.delivery.frankKeyId, l.delivery.frank, l.delivery.frankingTag]
      : null,
  ]);
}

function decodeLetter(bytes: Uint8Array): DeadLetter | null {
  try {
    const v = decodeCbor(bytes, 'DeadLetter', MAX_RECORD_BYTES);
    if (!Array.isArray(v) || (v.length !== 10 && v.length !== 11) || v[0] !== VERSION) return null;
    const [, id, accountKey, deviceId, clientId, serverTimestamp, envelope, code, attempts, parkedAt, delivery] = v as unknown[];
    if (typeof id !== 'string' || !(accountKey instanceof Uint8Array) || typeof deviceId !== 'number') return null;
    if (typeof clientId !== 'string' || !(envelope instanceof Uint8Array)) return null;
    if (typeof code !== 'string' || typeof attempts !== 'number') return null;
    return {
      id,
      sender: { accountKey: new Uint8Array(accountKey), deviceId },
      clientId,
      serverTimestamp: readTimestamp(serverTimestamp, 'serverTimestamp'),
      envelope: new Uint8Array(envelope),
      code,
      attempts,
      parkedAt: readTimestamp(parkedAt, 'parkedAt'),
      delivery: delivery === undefined || delivery === null ? null : readDelivery(delivery),
    };
  } catch {
    return null;
  }
}

function readDelivery(v: unknown): DeliveryRecord {
  const f = readArray(v, 'delivery', 5);
  return {
    envelopeId: readBytes(f[0], 'envelopeId', 16),
    acceptedAt: readTimestamp(f[1], 'acceptedAt'),
    frankKeyId: readUint(f[2], 'frankKeyId'),
    frank: readBytes(f[3], 'frank', 32),
    frankingTag: readBytes(f[4], 'frankingTag', 32),
  };
}
