/**
 * The "no sender anywhere" scan of sealed-sender tests (spec/12 §5.4): copies
 * of every envelope row as inserted (the relay deletes rows on
 * acknowledgement), every table's rows, and the identifiers that would name a
 * client (account key, device certificates, their hashes and signing keys),
 * in hex or base64url. Shared by the 1:1 and the group end-to-end tests.
 */
import { toHex } from '@parley/core';
import Database from 'better-sqlite3';
import { toBase64Url } from '../../src/state/ids.ts';

/** Keeps a copy of every envelope row and idempotency row as inserted. */
export function auditInserts(dbPath: string): void {
  const db = new Database(dbPath);
  db.exec(`
    CREATE TABLE audit_messages AS SELECT * FROM messages WHERE 0;
    CREATE TRIGGER audit_messages_insert AFTER INSERT ON messages BEGIN
      INSERT INTO audit_messages SELECT * FROM messages WHERE seq = NEW.seq;
    END;
    CREATE TABLE audit_sent_ids AS SELECT * FROM sent_ids WHERE 0;
    CREATE TRIGGER audit_sent_ids_insert AFTER INSERT ON sent_ids BEGIN
      INSERT INTO audit_sent_ids VALUES (NEW.sender_account, NEW.sender_device, NEW.recipient_account, NEW.recipient_device, NEW.client_id, NEW.expires_at);
    END;
  `);
  db.close();
}

export type Row = Record<string, string>;

/** Every row of one table, blobs as hex. */
export function rows(dbPath: string, table: string): Row[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]).map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : String(v)])),
    );
  } finally {
    db.close();
  }
}

export function tables(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((t) => t.name);
  } finally {
    db.close();
  }
}

/** What names these accounts: the account keys, and every device's certificate, certificate hash and signing key. */
export function identifiersOf(dbPath: string, accounts: readonly Uint8Array[]): Uint8Array[] {
  const named: Uint8Array[] = [...accounts];
  const db = new Database(dbPath, { readonly: true });
  try {
    const query = db.prepare<[Buffer], { certificate: Buffer; certificate_hash: Buffer; signing_key: Buffer }>(
      'SELECT certificate, certificate_hash, signing_key FROM devices WHERE account = ?',
    );
    for (const a of accounts) {
      for (const d of query.all(Buffer.from(a))) {
        named.push(new Uint8Array(d.certificate), new Uint8Array(d.certificate_hash), new Uint8Array(d.signing_key));
      }
    }
  } finally {
    db.close();
  }
  return named;
}

export const mentions = (text: string, v: Uint8Array): boolean => text.includes(toHex(v)) || text.includes(toBase64Url(v));

/**
 * Rows, in any table, that belong to a sealed send (they carry one of
 * `sealedHashes`, the token hashes in hex) and name one of `named` other
 * than as their own recipient (a sealed row names its mailbox, never a
 * sender). Returns a description of each; an empty list is the pass.
 */
export function sealedRowsNaming(dbPath: string, sealedHashes: readonly string[], named: readonly Uint8Array[]): string[] {
  const found: string[] = [];
  for (const table of tables(dbPath)) {
    for (const r of rows(dbPath, table)) {
      const text = JSON.stringify(r);
      if (!sealedHashes.some((h) => text.includes(h))) continue;
      const recipient = r['recipient_account'] ?? r['account'];
      for (const v of named) {
        if (recipient === toHex(v)) continue;
        if (mentions(text, v)) found.push(`${table} row of a sealed send names ${toHex(v).slice(0, 16)}…`);
      }
    }
  }
  return found;
}
