/**
 * The mailbox counters of the SQLite backend, kept in process memory.
 * spec/09-relay.md §8.3.
 *
 * Per mailbox (recipient device): envelopes queued and their bytes; per
 * mailbox and sender account: that sender's share. The mailbox limits of a
 * send (rules/send-checks.ts), the quota-pressure gauges and `stats` read
 * them. Until schema 7 four triggers on `messages` kept them in tables; at
 * 5,000 delivered envelopes/s those triggers were a third of the relay's
 * SQLite time per envelope (bench/results/relay-latency.md, "Counters in
 * memory"). SQLite has one process and one writer, so the process can keep
 * them itself:
 *
 * - rebuilt exactly from `messages` when the storage opens (one aggregate
 *   query), so a crash loses nothing: the rows are the truth and nothing is
 *   ever written back;
 * - changed by every statement that inserts or deletes a message row, with
 *   what it inserted or, through `DELETE … RETURNING`, what it deleted;
 * - journaled per group commit (write-batcher.ts `BatchJournal`): a write
 *   whose savepoint rolls back, or a batch whose commit fails, leaves them as
 *   if it never ran.
 *
 * Changes apply in place rather than as pending deltas merged at the outer
 * commit: the connection is synchronous and a batch runs in one turn of the
 * event loop, so no read can see the counters between a write and its
 * commit, and later writes in the same batch must see earlier ones (as they
 * see their rows).
 */
import type { Database } from 'better-sqlite3';
import type { BatchJournal } from './write-batcher.ts';

export interface Tally {
  messages: number;
  bytes: number;
}

interface Mailbox extends Tally {
  readonly key: string;
  readonly account: Buffer;
  readonly deviceId: number;
  /** By sender account (latin1 key): that account's share. */
  readonly shares: Map<string, Tally>;
}

/** One mailbox's share held by one sender account (tests compare these with a recount). */
export interface ShareEntry {
  readonly recipient: Buffer;
  readonly deviceId: number;
  readonly sender: Buffer;
  readonly messages: number;
  readonly bytes: number;
}

/** What a threshold scan answers (types.ts QuotaPressure's mailbox half). */
export interface MailboxPressure {
  readonly mailboxMessages: number;
  readonly mailboxBytes: number;
  readonly senderShares: number;
}

/** Bytes a row counts against its mailbox: its own envelope (a seal, or nothing for a fan-out row) and its payload's. */
export const ROW_BYTES_SQL = 'length(envelope) + payload_bytes';

/** A mailbox's key in the in-memory maps of the SQLite backend (here and sqlite-newest.ts). */
export const mailboxKey = (account: Buffer, deviceId: number): string => `${deviceId}:${account.toString('latin1')}`;
const senderKey = (account: Buffer): string => account.toString('latin1');

/** Journal entries are flat: mailbox, sender key, messages, bytes (no object per change). */
const ENTRY = 4;

export class MailboxCounters implements BatchJournal {
  readonly #mailboxes = new Map<string, Mailbox>();
  #messages = 0;
  #bytes = 0;
  /** The changes of the open batch, undone on a rollback; undefined outside a batch. */
  #journal: (Mailbox | string | number)[] | undefined;

  /**
   * Replaces everything with the counts of the rows in `messages` (at open; the rows are the truth).
   * `soonest`, when given, hears each share's earliest expiry in the same pass (sqlite-expiry.ts).
   */
  rebuild(db: Database, soonest?: (key: string, recipient: Buffer, deviceId: number, expiresAt: number) => void): void {
    this.#mailboxes.clear();
    this.#messages = 0;
    this.#bytes = 0;
    // One pass over the table in rowid order, summed into a temporary table keyed by share: the
    // relay opened 10^6 rows in 3.2-4.5 s this way against 22-33 s with GROUP BY (which sorts every
    // row, or reads the table through an index in random order), and summing in JavaScript took
    // 15 s (two Buffers per row), on this project's 2-core machine at a load average of 10
    // (bench/src/relay/write-path.ts --rebuild, bench/results/relay-latency.md).
    db.exec(`
      CREATE TEMP TABLE counters_rebuild (
        recipient BLOB, device INTEGER, sender BLOB, messages INTEGER, bytes INTEGER, soonest INTEGER,
        PRIMARY KEY (recipient, device, sender)
      ) WITHOUT ROWID;
      INSERT INTO temp.counters_rebuild
        SELECT recipient_account, recipient_device, sender_account, 1, ${ROW_BYTES_SQL}, expires_at FROM messages NOT INDEXED WHERE true
        ON CONFLICT DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes, soonest = MIN(soonest, excluded.soonest);
    `);
    try {
      const rows = db.prepare<[], [Buffer, number, Buffer, number, number, number]>('SELECT * FROM temp.counters_rebuild').raw().all();
      for (const [recipient, deviceId, sender, messages, bytes, expiresAt] of rows) {
        this.add(recipient, deviceId, sender, messages, bytes);
        soonest?.(mailboxKey(recipient, deviceId), recipient, deviceId, expiresAt);
      }
    } finally {
      db.exec('DROP TABLE temp.counters_rebuild');
    }
  }

  /**
   * Counts `messages` rows of `bytes` in all (negative: removed) from `sender` in this mailbox.
   * `key`: the mailbox's key when the caller built it already (one string per row, not four).
   */
  add(recipient: Buffer, deviceId: number, sender: Buffer, messages: number, bytes: number, key = mailboxKey(recipient, deviceId)): void {
    let mailbox = this.#mailboxes.get(key);
    if (!mailbox) {
      // Copied: the caller's buffer may be reused (better-sqlite3 hands out fresh ones, but a rule may not).
      mailbox = { key, account: Buffer.from(recipient), deviceId, messages: 0, bytes: 0, shares: new Map() };
      this.#mailboxes.set(key, mailbox);
    }
    const s = senderKey(sender);
    this.#apply(mailbox, s, messages, bytes);
    this.#journal?.push(mailbox, s, messages, bytes);
  }

  #apply(mailbox: Mailbox, sender: string, messages: number, bytes: number): void {
    mailbox.messages += messages;
    mailbox.bytes += bytes;
    this.#messages += messages;
    this.#bytes += bytes;
    let share = mailbox.shares.get(sender);
    if (!share) mailbox.shares.set(sender, (share = { messages: 0, bytes: 0 }));
    share.messages += messages;
    share.bytes += bytes;
    // Empty entries go: the maps hold only mailboxes and shares with queued envelopes.
    if (share.messages === 0 && share.bytes === 0) mailbox.shares.delete(sender);
    if (mailbox.messages === 0 && mailbox.bytes === 0 && mailbox.shares.size === 0) {
      this.#mailboxes.delete(mailbox.key);
    }
  }

  /** The mailbox's counters, and `sender`'s share of it (zeros when nothing is queued). */
  read(recipient: Buffer, deviceId: number, sender: Buffer): { mailbox: Tally; share: Tally } {
    const mailbox = this.#mailboxes.get(mailboxKey(recipient, deviceId));
    if (!mailbox) return { mailbox: ZERO, share: ZERO };
    return { mailbox, share: mailbox.shares.get(senderKey(sender)) ?? ZERO };
  }

  /** Envelopes queued in the mailbox (expired ones not swept yet included). */
  queued(recipient: Buffer, deviceId: number, key = mailboxKey(recipient, deviceId)): number {
    return this.#mailboxes.get(key)?.messages ?? 0;
  }

  /** Queued envelopes and bytes over all mailboxes. */
  totals(): Tally {
    return { messages: this.#messages, bytes: this.#bytes };
  }

  /**
   * Mailboxes at or above the message / byte thresholds, and shares at or
   * above either share threshold. One pass over the mailboxes; the gauges
   * ask at most every QUOTA_METRICS_MAX_AGE_MS. `devices`: how many devices
   * are registered, for a threshold of 0 or less, which every device meets
   * (the map holds only mailboxes with something queued).
   */
  pressure(
    t: { mailboxMessages: number; mailboxBytes: number; senderMessages: number; senderBytes: number },
    devices: () => number,
  ): MailboxPressure {
    let mailboxMessages = 0;
    let mailboxBytes = 0;
    let senderShares = 0;
    for (const m of this.#mailboxes.values()) {
      if (m.messages >= t.mailboxMessages) mailboxMessages++;
      if (m.bytes >= t.mailboxBytes) mailboxBytes++;
      for (const s of m.shares.values()) if (s.messages >= t.senderMessages || s.bytes >= t.senderBytes) senderShares++;
    }
    if (t.mailboxMessages <= 0) mailboxMessages = devices();
    if (t.mailboxBytes <= 0) mailboxBytes = devices();
    return { mailboxMessages, mailboxBytes, senderShares };
  }

  /** Every share with something queued (tests compare it with a recount by SQL). */
  *shares(): Generator<ShareEntry> {
    for (const m of this.#mailboxes.values()) {
      for (const [sender, s] of m.shares) {
        yield { recipient: m.account, deviceId: m.deviceId, sender: Buffer.from(sender, 'latin1'), messages: s.messages, bytes: s.bytes };
      }
    }
  }

  // ---- BatchJournal: the write batcher's transaction boundaries

  begin(): void {
    this.#journal = [];
  }

  savepoint(): number {
    return this.#journal?.length ?? 0;
  }

  rollbackTo(mark: number): void {
    const journal = this.#journal;
    if (!journal) return;
    for (let i = journal.length - ENTRY; i >= mark; i -= ENTRY) {
      // The journaled mailbox may have emptied and left the map since: it (empty) or its successor is the live one.
      const entry = journal[i] as Mailbox;
      let mailbox = this.#mailboxes.get(entry.key);
      if (!mailbox) this.#mailboxes.set(entry.key, (mailbox = entry));
      this.#apply(mailbox, journal[i + 1] as string, -(journal[i + 2] as number), -(journal[i + 3] as number));
    }
    journal.length = mark;
  }

  commit(): void {
    this.#journal = undefined;
  }

  rollback(): void {
    this.rollbackTo(0);
    this.#journal = undefined;
  }

  rows(): number {
    // One entry per row inserted or deleted (every caller of `add` in a batch counts one row).
    return (this.#journal?.length ?? 0) / ENTRY;
  }
}

const ZERO: Tally = Object.freeze({ messages: 0, bytes: 0 });
