/**
 * Message seqs of the SQLite backend, handed out from memory. spec/09-relay.md §7.1.
 *
 * A seq is never reused: a device's cursor (`afterSeq`) and live push's previous seq rely on it.
 * Until schema 9 AUTOINCREMENT guaranteed that, at the price of reading and rewriting
 * `sqlite_sequence` in every INSERT, one more page in the WAL per commit (issue 15,
 * bench/results/relay-latency.md "WAL volume per envelope"). SQLite has one writer, so the
 * process can count itself:
 *
 * - `message_seq.reserved` on disk is at least every seq any committed row ever had. An insert
 *   whose seq passes it first raises it by SEQ_RESERVATION in the same write (the same savepoint,
 *   so the row never commits without it): one small write every SEQ_RESERVATION rows.
 * - At open the next seq is `reserved + 1` (or above the largest seq held, if larger): after any stop, clean, `kill -9` or power loss, no seq
 *   at or below anything a committed row ever had comes back. Up to SEQ_RESERVATION seqs are
 *   skipped per restart (seqs only need to grow; gaps are normal, seqs are global).
 * - A rolled-back write or batch undoes its raise in SQL, so the memory forgets it too (the next
 *   insert raises again); seqs it drew are not reused, only skipped.
 */
import type { Database, Statement } from 'better-sqlite3';

/**
 * Seqs reserved per write of `message_seq`: at 5,000 envelopes/s one write every 13 s, and a
 * restart skips at most this many (2^53 seqs last 2^37 restarts).
 */
export const SEQ_RESERVATION = 65_536;

export class SeqAllocator {
  /** The next seq to hand out. */
  #next: number;
  /** What `message_seq.reserved` holds as far as this batch knows (never more than SQL's). */
  #reserved: number;
  /** `#reserved` when the batch began: committed, so safe to return to after any rollback. */
  #committed: number;
  readonly #raise: Statement<[number]>;
  readonly #reservation: number;

  /** `reservation`: seqs per raise (SEQ_RESERVATION; tests pass small ones to cross many raises). */
  constructor(db: Database, reservation = SEQ_RESERVATION) {
    this.#reservation = reservation;
    const row = db.prepare<[], { reserved: number }>('SELECT reserved FROM message_seq WHERE id = 1').get();
    if (row === undefined) throw new Error('relay database has no message_seq row');
    this.#reserved = row.reserved;
    this.#committed = row.reserved;
    // Also above the largest seq held (one search of the rowid b-tree): a row written into the
    // file by something other than this class (a tool, a bench) cannot be handed out again either.
    const held = db.prepare<[], number | null>('SELECT MAX(seq) FROM messages').pluck().get() ?? 0;
    this.#next = Math.max(row.reserved, held) + 1;
    this.#raise = db.prepare<[number]>('UPDATE message_seq SET reserved = ? WHERE id = 1');
  }

  /** The seq of a row about to be inserted in the running write (raising the reservation first if needed). */
  take(): number {
    const seq = this.#next++;
    if (seq > this.#reserved) {
      const reserved = seq - 1 + this.#reservation;
      this.#raise.run(reserved);
      this.#reserved = reserved;
    }
    return seq;
  }

  /** The highest seq reserved in memory (tests). */
  get reserved(): number {
    return this.#reserved;
  }

  // ---- the write batcher's transaction boundaries (sqlite.ts chains them with the counters')

  begin(): void {
    this.#committed = this.#reserved;
  }

  /**
   * A write or the whole batch rolled back: its raise is undone in SQL, so memory returns to the
   * batch's start (lower than SQL may hold after a partial rollback, which only costs another raise).
   */
  rollback(): void {
    this.#reserved = this.#committed;
  }

  commit(): void {
    this.#committed = this.#reserved;
  }
}
