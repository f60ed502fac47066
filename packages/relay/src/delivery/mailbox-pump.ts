/**
 * Pushes one device's stored envelopes over its websocket: the backlog
 * first, then each new envelope as it is committed; a "drained" signal once
 * the backlog has been sent. spec/09-relay.md §5.
 *
 * Delivery is at-least-once: an envelope is deleted only when the device
 * acknowledges it, and a new connection starts again from the oldest stored
 * envelope. Order is per device: envelopes go out in seq order, and a seq is
 * sent at most once per connection.
 *
 * Flow control: at most `maxInFlight` envelopes (and `maxInFlightBytes`)
 * are pushed and unacknowledged at once; acknowledgements open the window.
 *
 * Live push (spec/09-relay.md §5.2.1): a commit of this process hands its rows
 * with the wake-up, and the pump pushes them from memory, without reading
 * its mailbox, when it can prove that no stored row lies between its cursor
 * and them. The cursor (`#lastSeq`) is the highest seq this connection has
 * pushed or passed over; every stored, unexpired row at or below it that
 * the device has not acknowledged has been pushed on this connection. A
 * handed row keeps that true when, at the time it is handled:
 *  - no read is in flight (the read's page could hold rows before it, or
 *    the row itself: both would go out of order or twice);
 *  - the backlog was drained ("drained" sent);
 *  - its `previousSeq` (the newest unexpired row of the mailbox when it
 *    was stored, read under the send's lock on the device row, so that
 *    every row committed before it has a lower seq) is at or below the
 *    cursor: nothing stored lies between;
 *  - the window has room for it, or it is held until it has: the held rows
 *    continue the cursor (each one's previous seq at or below the one
 *    before it), at most MAX_HELD_ROWS / MAX_HELD_BYTES, and no read starts
 *    while any is held.
 * Otherwise the row and those after it are dropped and the pump reads from
 * its cursor: now, or once the held rows are out and the window has room.
 * A wake-up without rows (another process's NOTIFY, a retry's re-wake,
 * `wakeAll`) always reads. Order and at-least-once are those of the read
 * path: the rows pushed are exactly those a read at that moment would have
 * returned (a held row acknowledged over HTTP is dropped with it).
 */
import { type DeliveredMessage, MAX_ACKS_PER_REQUEST } from '../schemas.ts';
import { deliveryJson } from '../franking/delivery.ts';
import type { CommittedMessage, DeviceAddress, RelayStorage, StoredMessage } from '../storage/types.ts';
import { toBase64Url } from '../http/encoding.ts';

/** Most envelopes read from storage at once. */
const PAGE = 64;

/**
 * Most handed rows a connection holds while its window is full, and their most bytes: past either,
 * the rest are dropped and read once the window opens. A device that acknowledges late (its loop
 * busy, 40-100 ms at 5,000 envelopes/s in bench/results/relay-latency.md) gets a few rows per
 * group commit meanwhile; holding them spares a read per window-full (a read costs about 30 µs per
 * row it returns). The bytes bound keeps this at 1/32 of the 8 MiB in-flight window a connection
 * may already hold (spec/09-relay.md §5.2).
 */
export const MAX_HELD_ROWS = 64;
export const MAX_HELD_BYTES = 256 * 1024;

/**
 * Most acknowledged seqs a connection gathers for its next delete while one is being written
 * (`MailboxPump.ack`): one ack frame's most (MAX_ACKS_PER_REQUEST), so a delete is never larger
 * than the largest single acknowledgement (8 KB of seqs).
 */
export const MAX_GATHERED_ACK_SEQS = MAX_ACKS_PER_REQUEST;

/**
 * Deletes of acknowledged seqs one connection has in storage (its group commit) at once. Before
 * this bound an ack that did not fit the gathered batch was written on its own at once, so a device
 * sending full ack frames as fast as its socket allowed put one write per frame into the commit
 * queue that every other device waits behind (232 at once from one connection in
 * test/ack-flood.test.ts), for seqs that need not even exist. spec/09-relay.md §5.2.
 */
export const MAX_ACK_DELETES_PER_CONNECTION = 1;

/**
 * Most acknowledged seqs a connection may have waiting for a delete (beside the one being written)
 * before it is closed with 4003 (ACK_FLOOD). Reading is held once a batch is full (`holdReading`),
 * so an honest device has at most 2,000 waiting plus what the relay had already read from the
 * socket: acknowledging each seq pushed to it once, that is at most the window (256, §5.2), since
 * every seq it names was pushed after the acks the relay had read. More (16,000 seqs, 128 KB) come
 * only from a device naming seqs it was never pushed, or naming them again: one 64 KiB read of
 * JSON acks repeating a one-digit seq holds 32,000. The bound on memory rests on this, not on how
 * soon reading stops.
 */
export const MAX_QUEUED_ACK_SEQS = 16 * MAX_GATHERED_ACK_SEQS;

/** Why `ack` refused an acknowledgement: the connection queued more than MAX_QUEUED_ACK_SEQS. */
export class AckFloodError extends Error {
  readonly code = 'ACK_FLOOD';
  constructor() {
    super(`more than ${MAX_QUEUED_ACK_SEQS} acknowledged seqs waiting for their delete`);
  }
}

export interface PumpOptions {
  readonly address: DeviceAddress;
  readonly storage: RelayStorage;
  /** Sends one JSON text frame. */
  readonly send: (frame: string) => void;
  /** Set when the device asked for binary push frames (push-frame.ts, spec §5.2.2): each envelope goes as `encode(m)` through `send`. */
  readonly binary?: { readonly encode: (m: StoredMessage) => Uint8Array; readonly send: (frame: Uint8Array) => void };
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  /** Handed rows held while the window is full (default MAX_HELD_ROWS, MAX_HELD_BYTES). */
  readonly maxHeldRows?: number;
  readonly maxHeldBytes?: number;
  readonly now: () => number;
  readonly onPushed?: (count: number) => void;
  /** Envelopes pushed from a commit's rows, without a read (live push). */
  readonly onPushedLive?: (count: number) => void;
  /** One read of the mailbox (`fetchMessages`). */
  readonly onRead?: () => void;
  /** An envelope accepted while the device was connected (after the backlog) was pushed `ms` after its acceptance. */
  readonly onLivePush?: (ms: number) => void;
  readonly onError?: (error: unknown) => void;
  /**
   * Stop (true) or restart (false) reading the connection: true once a full batch of acknowledged
   * seqs waits behind the delete being written, false when it has been taken. The device's further
   * frames wait in TCP meanwhile (backpressure), instead of in the relay's memory or commit queue.
   */
  readonly holdReading?: (hold: boolean) => void;
}

/** Acknowledged seqs for one delete, and who waits for it. */
interface AckBatch {
  readonly seqs: number[];
  readonly waiters: { resolve: (n: number) => void; reject: (e: unknown) => void }[];
}

export function deliveredMessage(m: StoredMessage): DeliveredMessage {
  return {
    seq: m.seq,
    sender: { account: toBase64Url(m.sender.accountKey), deviceId: m.sender.deviceId },
    id: m.clientId,
    serverTimestamp: m.serverTimestamp,
    expiresAt: m.expiresAt,
    envelope: toBase64Url(m.envelope),
    ...(m.delivery === undefined ? {} : { delivery: deliveryJson(m.delivery) }),
  };
}

export class MailboxPump {
  readonly #o: PumpOptions;
  #lastSeq = 0;
  readonly #inFlight = new Map<number, number>();
  #inFlightBytes = 0;
  #running = false;
  #again = false;
  #drainedSent = false;
  #stopped = false;
  /**
   * Rows after the cursor may be stored that this pump neither pushed nor holds (a read stopped at
   * the window, or handed rows were dropped): it reads once the window opens and `#held` is out.
   */
  #windowFull = false;
  /** Handed rows proven next after the cursor, in seq order, waiting for room in the window. */
  #held: StoredMessage[] = [];
  #heldBytes = 0;
  /** A delete of acknowledged seqs is being written (`ack`; at most MAX_ACK_DELETES_PER_CONNECTION). */
  #ackWriting = false;
  /**
   * Acknowledgements waiting for the delete being written, oldest first, in batches of at most
   * MAX_GATHERED_ACK_SEQS: the first is the gathered batch; more only while reading is held.
   */
  #ackQueue: AckBatch[] = [];
  #ackQueuedSeqs = 0;
  #readingHeld = false;

  constructor(options: PumpOptions) {
    this.#o = options;
  }

  /**
   * Something may be waiting: push what the window allows. `rows`: one commit's rows for this
   * device, in seq order, pushed without a read when the module comment's conditions hold.
   */
  wake(rows?: readonly CommittedMessage[]): void {
    if (this.#stopped) return;
    if (rows && !this.#running && this.#pushCommitted(rows)) return;
    if (this.#held.length > 0) {
      // A read starts from the cursor: it waits until the held rows are out.
      this.#windowFull = true;
      return;
    }
    if (this.#running) {
      this.#again = true;
      return;
    }
    void this.#run();
  }

  /**
   * Opens the window for acknowledged envelopes and deletes them (the device's own only).
   * The window opens at once, not after the delete's commit and fsync: the device has
   * processed them, and waiting a commit per acknowledgement held back the next pushes
   * (issue 15, bench/results/relay-latency.md). These seqs are never pushed again on this
   * connection either way; a delete that fails leaves them stored for the next connection.
   *
   * While a delete of this connection is being written, the seqs of further acknowledgements
   * are gathered (up to MAX_GATHERED_ACK_SEQS) and deleted together, in one write, as soon as
   * it is done. Each delete is a write of its own in the group commit; when commits fall behind
   * (at 5,000 envelopes/s on a loaded machine, commit wait 11 ms) 69 % of ack frames arrived
   * during their connection's previous delete, and gathering turned 1,378 ack frames into 194
   * deletes (issue 15, bench/results/relay-latency.md); while commits keep up it changes nothing.
   * A connection never has more than MAX_ACK_DELETES_PER_CONNECTION delete in storage: an ack
   * that does not fit the gathered batch waits, in a batch of its own, and reading is held until
   * the delete in progress is done (`holdReading`); past MAX_QUEUED_ACK_SEQS waiting seqs it
   * throws AckFloodError (synchronously) and the caller closes the connection. Resolves with the
   * envelopes this call's delete removed: a gathered delete counts them all under the first
   * acknowledgement it took (the others resolve with 0), so the sum over calls is what was
   * deleted. The waiting seqs are deleted also if the connection closes meanwhile.
   */
  ack(seqs: readonly number[]): Promise<number> {
    if (!this.#ackWriting) {
      this.forget(seqs);
      return this.#deleteAcked(seqs);
    }
    // Refused before anything changes, and at once: the caller closes the connection before it
    // hands over the next frame ws had already read.
    if (this.#ackQueuedSeqs + seqs.length > MAX_QUEUED_ACK_SEQS) throw new AckFloodError();
    this.forget(seqs);
    let into = this.#ackQueue.at(-1);
    if (!into || into.seqs.length + seqs.length > MAX_GATHERED_ACK_SEQS) {
      into = { seqs: [], waiters: [] };
      this.#ackQueue.push(into);
    }
    for (const seq of seqs) into.seqs.push(seq);
    this.#ackQueuedSeqs += seqs.length;
    this.#holdReadingIfFull();
    return new Promise((resolve, reject) => into.waiters.push({ resolve, reject }));
  }

  /**
   * Holds reading while a full batch waits (the gathered one reached MAX_GATHERED_ACK_SEQS, or an
   * ack did not fit it), and restarts it once there is room again. Backpressure rather than a
   * close: a device acknowledging honestly gets here too when a commit stalls (at 5,000
   * envelopes/s a 200 ms commit gathers 1,000 seqs), and then simply waits for it. Its send frames
   * wait in TCP with the acks (the delete in progress is one commit); their own in-flight bound
   * counts frames read, so it holds unchanged.
   */
  #holdReadingIfFull(): void {
    const first = this.#ackQueue[0];
    const full = this.#ackQueue.length > 1 || (first !== undefined && first.seqs.length >= MAX_GATHERED_ACK_SEQS);
    if (full === this.#readingHeld) return;
    this.#readingHeld = full;
    this.#o.holdReading?.(full);
  }

  /** Writes one delete; when it is done, the next waiting batch (also after the connection closed). */
  async #deleteAcked(seqs: readonly number[]): Promise<number> {
    this.#ackWriting = true;
    try {
      return await this.#o.storage.ackMessages(this.#o.address, seqs);
    } finally {
      this.#ackWriting = false;
      const next = this.#ackQueue.shift();
      if (next) {
        this.#ackQueuedSeqs -= next.seqs.length;
        this.#holdReadingIfFull();
        this.#deleteAcked(next.seqs).then(
          (n) => next.waiters.forEach((w, i) => w.resolve(i === 0 ? n : 0)),
          (error: unknown) => {
            for (const w of next.waiters) w.reject(error);
          },
        );
      }
    }
  }

  /** Stops counting these seqs as in flight (already deleted) and refills the window. */
  forget(seqs: readonly number[]): void {
    for (const seq of seqs) {
      const size = this.#inFlight.get(seq);
      if (size !== undefined) {
        this.#inFlight.delete(seq);
        this.#inFlightBytes -= size;
      }
    }
    if (this.#held.length > 0) {
      // Acknowledged over HTTP before its push: deleted, so a read would not return it either.
      const acked = new Set(seqs);
      if (this.#held.some((m) => acked.has(m.seq))) {
        this.#held = this.#held.filter((m) => !acked.has(m.seq));
        this.#heldBytes = this.#held.reduce((n, m) => n + m.envelope.length, 0);
      }
      this.#pushHeld();
      return;
    }
    // Only a pump that stopped at a full window has more to push now; one that had caught up is
    // woken by the next send (a read per acknowledgement that finds nothing was a fifth of the
    // relay's reads at 5,000 envelopes/s, bench/results/relay-latency.md).
    if (this.#windowFull) this.wake();
  }

  stop(): void {
    this.#stopped = true;
    this.#held = [];
    this.#heldBytes = 0;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /**
   * Takes handed rows: those proven next after the cursor (and the held rows) are held, up to
   * MAX_HELD_ROWS / MAX_HELD_BYTES, and pushed as the window allows; the first that is not proven
   * and all after it are dropped. False: nothing is held and the pump must read now.
   */
  #pushCommitted(rows: readonly CommittedMessage[]): boolean {
    if (!this.#drainedSent) return false;
    let tail = this.#held.at(-1)?.seq ?? this.#lastSeq;
    let dropped = false;
    const o = this.#o;
    const now = o.now();
    let pushed = 0;
    for (const { previousSeq, message: m } of rows) {
      // Pushed or held already (a read that ran after this commit returned it).
      if (m.seq <= tail) continue;
      if (previousSeq > tail) {
        dropped = true;
        break;
      }
      tail = m.seq;
      const size = m.envelope.length;
      if (this.#held.length === 0 && (m.expiresAt <= now || this.#fits(size))) {
        // Expired before its push: a read would pass over it too.
        if (m.expiresAt > now) {
          this.#push(m);
          pushed++;
          o.onLivePush?.(now - m.serverTimestamp);
        }
        this.#lastSeq = m.seq;
        continue;
      }
      if (!this.#mayHold(size)) {
        dropped = true;
        break;
      }
      // Its own copy: the envelope may be a view into a whole request or frame, which a held view
      // would keep alive past MAX_HELD_BYTES.
      this.#held.push({ ...m, envelope: new Uint8Array(m.envelope) });
      this.#heldBytes += size;
    }
    if (pushed) {
      o.onPushed?.(pushed);
      o.onPushedLive?.(pushed);
    }
    if (dropped) {
      if (this.#held.length === 0) return false;
      // A read, once the held rows are out.
      this.#windowFull = true;
    }
    return true;
  }

  /** Room to hold one more row of this size (always one, however large, when the limits allow any). */
  #mayHold(size: number): boolean {
    const rows = this.#o.maxHeldRows ?? MAX_HELD_ROWS;
    const bytes = this.#o.maxHeldBytes ?? MAX_HELD_BYTES;
    if (this.#held.length >= rows) return false;
    return this.#held.length === 0 || this.#heldBytes + size <= bytes;
  }

  /** Pushes held rows while the window has room; once all are out, reads if rows were dropped. */
  #pushHeld(): void {
    const o = this.#o;
    const now = o.now();
    let pushed = 0;
    while (this.#held.length > 0) {
      const m = this.#held[0] as StoredMessage;
      // Expired before its push: a read would pass over it too.
      if (m.expiresAt > now) {
        if (!this.#fits(m.envelope.length)) break;
        this.#push(m);
        pushed++;
        o.onLivePush?.(now - m.serverTimestamp);
      }
      this.#held.shift();
      this.#heldBytes -= m.envelope.length;
      this.#lastSeq = m.seq;
    }
    if (pushed) {
      o.onPushed?.(pushed);
      o.onPushedLive?.(pushed);
    }
    if (this.#held.length === 0 && this.#windowFull) this.wake();
  }

  /** Room in the window for one more envelope of this size (always one, however large). */
  #fits(size: number): boolean {
    const o = this.#o;
    if (this.#inFlight.size === 0) return o.maxInFlight > 0;
    return this.#inFlight.size < o.maxInFlight && this.#inFlightBytes + size <= o.maxInFlightBytes;
  }

  #push(m: StoredMessage): void {
    const o = this.#o;
    if (o.binary) o.binary.send(o.binary.encode(m));
    else o.send(JSON.stringify({ type: 'envelope', ...deliveredMessage(m) }));
    this.#inFlight.set(m.seq, m.envelope.length);
    this.#inFlightBytes += m.envelope.length;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      do {
        this.#again = false;
        await this.#fill();
      } while (this.#again && !this.#stopped);
    } catch (error) {
      this.#o.onError?.(error);
    } finally {
      this.#running = false;
    }
  }

  async #fill(): Promise<void> {
    const o = this.#o;
    while (!this.#stopped) {
      const room = o.maxInFlight - this.#inFlight.size;
      this.#windowFull = room <= 0 || this.#inFlightBytes >= o.maxInFlightBytes;
      if (this.#windowFull) return;
      const want = Math.min(room, PAGE);
      o.onRead?.();
      const page = await o.storage.fetchMessages(o.address, this.#lastSeq, want, o.now());
      if (this.#stopped) return;
      let pushed = 0;
      const live = this.#drainedSent && o.onLivePush ? o.now() : undefined;
      for (const m of page) {
        // Always allow one envelope in flight, however large.
        if (this.#inFlight.size > 0 && this.#inFlightBytes + m.envelope.length > o.maxInFlightBytes) break;
        this.#push(m);
        this.#lastSeq = m.seq;
        pushed++;
        if (live !== undefined) o.onLivePush?.(live - m.serverTimestamp);
      }
      if (pushed) o.onPushed?.(pushed);
      if (pushed < page.length) {
        this.#windowFull = true; // acks resume us
        return;
      }
      if (page.length < want) {
        if (!this.#drainedSent) {
          this.#drainedSent = true;
          o.send(JSON.stringify({ type: 'drained' }));
        }
        return;
      }
    }
  }
}
