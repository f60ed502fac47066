/**
 * Each mailbox's newest row, in the SQLite backend's memory: what live push asks before every
 * insert ("the newest unexpired seq of this mailbox", CommittedMessage.previousSeq,
 * spec/09-relay.md §5.2.1) without a statement per row (issue 15: 5.8 µs per envelope at 5,000/s,
 * bench/results/relay-latency.md "SQLite cost per envelope").
 *
 * What is kept is only ever exact or absent: an entry is the newest row the mailbox holds (seqs
 * only grow, sqlite-seqs.ts, so a row just inserted is its mailbox's newest); anything that may have
 * deleted that row drops the entry, and a missing or expired entry sends the question to SQL. An
 * empty mailbox (the counters, sqlite-counters.ts, say it holds nothing) answers 0 at once.
 * Rollbacks drop everything (they are rare; the next insert of each mailbox fills it again), and a
 * reopened relay starts empty, so nothing here can outlive the rows it describes.
 *
 * One entry per mailbox holding rows at most (an entry goes when its row may have gone), as many as
 * the counters keep.
 */
import { type MailboxCounters, mailboxKey } from './sqlite-counters.ts';

interface Newest {
  readonly seq: number;
  readonly expiresAt: number;
}

/** The SQL answer: the newest unexpired seq of the mailbox at `now`, 0 for none. */
export type NewestQuery = (recipient: Buffer, deviceId: number, now: number) => number;

export class NewestSeqs {
  readonly #rows = new Map<string, Newest>();
  readonly #counters: MailboxCounters;
  readonly #query: NewestQuery;

  constructor(counters: MailboxCounters, query: NewestQuery) {
    this.#counters = counters;
    this.#query = query;
  }

  /** The newest unexpired seq of the mailbox at `now` (0 for none), as the SQL query would answer. */
  previousSeq(recipient: Buffer, deviceId: number, now: number, key = mailboxKey(recipient, deviceId)): number {
    if (this.#counters.queued(recipient, deviceId, key) === 0) return 0;
    const newest = this.#rows.get(key);
    // The newest row, unexpired: the newest unexpired one. Expired: an older row may not be.
    if (newest !== undefined && newest.expiresAt > now) return newest.seq;
    return this.#query(recipient, deviceId, now);
  }

  /** A row was inserted: it is its mailbox's newest. */
  inserted(recipient: Buffer, deviceId: number, seq: number, expiresAt: number, key = mailboxKey(recipient, deviceId)): void {
    this.#rows.set(key, { seq, expiresAt });
  }

  /** The mailbox's rows with these seqs were deleted (an acknowledgement). */
  deleted(recipient: Buffer, deviceId: number, seqs: readonly number[], key = mailboxKey(recipient, deviceId)): void {
    const newest = this.#rows.get(key);
    if (newest !== undefined && seqs.includes(newest.seq)) this.#rows.delete(key);
  }

  /** The mailbox's rows expired at `now` were deleted (a purge or a sweep). */
  expired(recipient: Buffer, deviceId: number, now: number): void {
    const key = mailboxKey(recipient, deviceId);
    const newest = this.#rows.get(key);
    if (newest !== undefined && newest.expiresAt <= now) this.#rows.delete(key);
  }

  /**
   * Every row of the mailbox was deleted (its device removed). The answer would stay right without
   * this (an empty mailbox answers 0 from the counters): the entry goes so the map holds no mailbox
   * that is gone.
   */
  removed(recipient: Buffer, deviceId: number): void {
    this.#rows.delete(mailboxKey(recipient, deviceId));
  }

  /** A rollback: what the entries say may have been undone. */
  forgetAll(): void {
    this.#rows.clear();
  }

  /** Mailboxes with an entry (tests: the bound). */
  get size(): number {
    return this.#rows.size;
  }
}
