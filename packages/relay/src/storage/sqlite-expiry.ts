/**
 * Which mailboxes may hold expired rows, in the SQLite backend's memory. spec/09-relay.md §7.1.
 *
 * Until schema 9 the sweep found expired rows through a global index on `messages (expires_at)`,
 * which every insert and every acknowledgement also wrote: a b-tree page more per commit in the
 * WAL, for a sweep that runs once a minute (issue 15, bench/results/relay-latency.md "WAL volume
 * per envelope"). Now each mailbox has a lower bound on the expiry of its rows (`soonest`), and the
 * sweep visits only the mailboxes whose bound has passed, in bound order, each through
 * `messages_mailbox_expiry`, then sets the bound to the mailbox's true soonest expiry (or drops the
 * mailbox when it is empty).
 *
 * - A bound is only ever lower than or equal to every row's expiry in its mailbox: an insert lowers
 *   it (never undone: too low only costs a visit), acknowledgements leave it (still a lower bound),
 *   and a sweep's raise is journaled, undone when its write or batch rolls back (the rows it
 *   deleted come back).
 * - Complete: a mailbox with an expired row has a bound at or before that row's expiry, so it is
 *   due, and stays due until a visit leaves no expired row in it.
 * - Rebuilt at every open from the rows (the counters' single pass, sqlite-counters.ts), so it
 *   holds after any stop.
 * - Memory: one entry per mailbox that held a row since its last visit, and heap items for them
 *   (stale ones are dropped when they come up, and the heap is rebuilt once it holds more than
 *   twice the entries plus HEAP_SLACK).
 */

interface Entry {
  readonly key: string;
  readonly account: Buffer;
  readonly deviceId: number;
  /** At most the expiry of every row in the mailbox (Infinity: nothing known to expire). */
  soonest: number;
}

interface Item {
  readonly at: number;
  readonly entry: Entry;
}

/** Stale heap items tolerated beyond twice the entries before the heap is rebuilt. */
const HEAP_SLACK = 1024;

/** A mailbox the sweep should visit: its address and key. */
export interface DueMailbox {
  readonly key: string;
  readonly account: Buffer;
  readonly deviceId: number;
}

export class ExpiryQueue {
  readonly #entries = new Map<string, Entry>();
  /** Min-heap on `at`; an item is stale once its entry's bound moved or the entry left the map. */
  #heap: Item[] = [];
  /** Raises of the open batch (entry, previous bound), undone on a rollback. */
  #undo: (Entry | number)[] = [];

  /** A row expiring at `expiresAt` is in the mailbox (an insert, or the rebuild at open). */
  lower(key: string, account: Buffer, deviceId: number, expiresAt: number): void {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      // Copied: the caller's buffer may be reused.
      entry = { key, account: Buffer.from(account), deviceId, soonest: Number.POSITIVE_INFINITY };
      this.#entries.set(key, entry);
    }
    if (expiresAt < entry.soonest) {
      entry.soonest = expiresAt;
      this.#push({ at: expiresAt, entry });
    }
  }

  /** The mailbox with the earliest bound, if that bound is at or before `now` (it stays due until `visited`). */
  due(now: number): DueMailbox | undefined {
    for (;;) {
      const top = this.#heap[0];
      if (top === undefined || top.at > now) return undefined;
      if (this.#entries.get(top.entry.key) === top.entry && top.entry.soonest === top.at) return top.entry;
      this.#pop();
    }
  }

  /**
   * The sweep visited the mailbox: `soonest` is the earliest expiry of the rows left in it
   * (undefined: none left). Journaled: a rollback of the running write or batch undoes it.
   */
  visited(mailbox: DueMailbox, soonest: number | undefined): void {
    const entry = this.#entries.get(mailbox.key);
    if (entry === undefined) return;
    const next = soonest ?? Number.POSITIVE_INFINITY;
    if (next === entry.soonest) return;
    this.#undo.push(entry, entry.soonest);
    entry.soonest = next;
    if (soonest === undefined) this.#entries.delete(entry.key);
    else this.#push({ at: next, entry });
  }

  /** Mailboxes tracked (tests: the bound on memory). */
  get size(): number {
    return this.#entries.size;
  }

  /** Heap items, stale ones included (tests: the bound on memory). */
  get heapSize(): number {
    return this.#heap.length;
  }

  /** The bound of a mailbox (tests compare it with the rows), Infinity when not tracked. */
  soonest(key: string): number {
    return this.#entries.get(key)?.soonest ?? Number.POSITIVE_INFINITY;
  }

  // ---- the write batcher's transaction boundaries (sqlite.ts chains them with the counters')

  begin(): void {
    this.#undo = [];
  }

  savepoint(): number {
    return this.#undo.length;
  }

  rollbackTo(mark: number): void {
    const undo = this.#undo;
    for (let i = undo.length - 2; i >= mark; i -= 2) {
      const entry = undo[i] as Entry;
      const previous = undo[i + 1] as number;
      // Back in the map if the visit dropped it; the bound only goes down (an insert since may have lowered it).
      const live = this.#entries.get(entry.key);
      const target = live ?? entry;
      if (live === undefined) this.#entries.set(entry.key, entry);
      if (previous < target.soonest || live === undefined) {
        target.soonest = Math.min(target.soonest, previous);
        this.#push({ at: target.soonest, entry: target });
      }
    }
    undo.length = mark;
  }

  commit(): void {
    this.#undo = [];
  }

  rollback(): void {
    this.rollbackTo(0);
    this.#undo = [];
  }

  /** `item.entry` is in #entries with `soonest` = `item.at` already (every caller sets both first). */
  #push(item: Item): void {
    if (this.#heap.length > 2 * this.#entries.size + HEAP_SLACK) {
      // The rebuild makes the heap from the entries, this one included.
      this.#rebuildHeap();
      return;
    }
    const heap = this.#heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as Item).at <= item.at) break;
      heap[i] = heap[parent] as Item;
      i = parent;
    }
    heap[i] = item;
  }

  #pop(): void {
    const heap = this.#heap;
    const last = heap.pop() as Item;
    if (heap.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const r = l + 1;
      const child = r < heap.length && (heap[r] as Item).at < (heap[l] as Item).at ? r : l;
      if ((heap[child] as Item).at >= last.at) break;
      heap[i] = heap[child] as Item;
      i = child;
    }
    heap[i] = last;
  }

  /** One item per tracked mailbox with a finite bound, heap-ordered. */
  #rebuildHeap(): void {
    const items: Item[] = [];
    for (const entry of this.#entries.values()) if (entry.soonest !== Number.POSITIVE_INFINITY) items.push({ at: entry.soonest, entry });
    items.sort((a, b) => a.at - b.at);
    // A sorted array is a valid min-heap.
    this.#heap = items;
  }
}
