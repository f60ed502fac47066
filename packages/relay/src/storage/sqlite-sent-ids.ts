/**
 * The SQLite backend's idempotency records as fixed-size keys. spec/09-relay.md §7.1, §8.
 *
 * A record says "this sender device already sent this client id to this recipient device"
 * (spec §4.3). Until schema 9 its row held the whole tuple (two 32-byte account keys, two device
 * ids, the client id): about 100 bytes of random key, written again into the expiry index (a
 * WITHOUT ROWID table's index entries carry the whole primary key). At 5,000 envelopes/s those two
 * B-trees were the dearest statement per envelope after the commit (issue 15,
 * bench/results/relay-latency.md "SQLite cost per envelope"). Now the row is
 * (SENT_ID_KEY_BYTES-byte key, expiry): the key is HMAC-SHA-256 of the exact tuple under a secret
 * kept in the database, truncated.
 *
 * Why a keyed hash and why 16 bytes: two different tuples with one key would make a fresh envelope
 * look like a retry and drop it. Under a secret nobody outside the database knows, no sender can
 * search for such a pair; by chance, with 2^40 records alive at once (far past any relay's TTL
 * times its rate), the odds of any two sharing a key are below 2^-48.
 * The tuple is encoded without ambiguity (lengths before the variable fields, the client id
 * last), so distinct tuples are distinct inputs.
 */
import { defaultProvider } from '@parley/core';
import type { Database } from 'better-sqlite3';

/**
 * Bytes of HMAC-SHA-256 kept as a record's key: 128 bits, so chance collisions stay below 2^-48
 * for 2^40 live records (birthday bound n^2 / 2^129), at a sixth of the old row's key size.
 */
export const SENT_ID_KEY_BYTES = 16;

/** The secret's name in `relay_secrets` (schema 9). */
const SECRET_NAME = 'sent_ids';

/** Bytes of the secret: HMAC-SHA-256's block-size-independent full strength. */
const SECRET_BYTES = 32;

const backend = defaultProvider().backend;

/** Computes record keys under one database's secret. */
export type SentIdKey = (
  senderAccount: Uint8Array,
  senderDevice: number,
  recipientAccount: Uint8Array,
  recipientDevice: number,
  clientId: string,
) => Buffer;

export function sentIdKeyer(secret: Uint8Array): SentIdKey {
  const key = Uint8Array.from(secret);
  return (senderAccount, senderDevice, recipientAccount, recipientDevice, clientId) => {
    // [u16 length, sender, u32 device, u16 length, recipient, u32 device, client id (UTF-8, the rest)]
    const idBytes = Buffer.byteLength(clientId, 'utf8');
    const input = Buffer.allocUnsafe(2 + senderAccount.length + 4 + 2 + recipientAccount.length + 4 + idBytes);
    let at = input.writeUInt16BE(senderAccount.length, 0);
    input.set(senderAccount, at);
    at = input.writeUInt32BE(senderDevice, at + senderAccount.length);
    at = input.writeUInt16BE(recipientAccount.length, at);
    input.set(recipientAccount, at);
    at = input.writeUInt32BE(recipientDevice, at + recipientAccount.length);
    input.write(clientId, at, 'utf8');
    const mac = backend.hmacSha256(key, input);
    return Buffer.from(mac.buffer, mac.byteOffset, SENT_ID_KEY_BYTES);
  };
}

/** Creates the database's secret if it has none (schema 9's migration), from the platform CSPRNG. */
export function createSentIdSecret(db: Database): void {
  db.prepare('INSERT OR IGNORE INTO relay_secrets (name, secret) VALUES (?, ?)').run(
    SECRET_NAME,
    Buffer.from(defaultProvider().random(SECRET_BYTES)),
  );
}

/** The keyer of this database (schema 9 or later). */
export function loadSentIdKeyer(db: Database): SentIdKey {
  const row = db.prepare<[string], { secret: Buffer }>('SELECT secret FROM relay_secrets WHERE name = ?').get(SECRET_NAME);
  if (!row || row.secret.length !== SECRET_BYTES) throw new Error('relay database has no idempotency-record secret');
  return sentIdKeyer(row.secret);
}
