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
 */
import type { DeliveredMessage } from '../schemas.ts';
import { deliveryJson } from '../franking/delivery.ts';
import type { DeviceAddress, RelayStorage, StoredMessage } from '../storage/types.ts';
import { toBase64Url } from '../http/encoding.ts';

/** Most envelopes read from storage at once. */
const PAGE = 64;

export interface PumpOptions {
  readonly address: DeviceAddress;
  readonly storage: RelayStorage;
  /** Sends one JSON text frame. */
  readonly send: (frame: string) => void;
  readonly maxInFlight: number;
  readonly maxInFlightBytes: number;
  readonly now: () => number;
  readonly onPushed?: (count: number) => void;
  /** An envelope accepted while the device was connected (after the backlog) was pushed `ms` after its acceptance. */
  readonly onLivePush?: (ms: number) => void;
  readonly onError?: (error: unknown) => void;
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
  /** The last fill stopped because the window was full (not because it had caught up). */
  #windowFull = false;

  constructor(options: PumpOptions) {
    this.#o = options;
  }

  /** Something may be waiting: push what the window allows. */
  wake(): void {
    if (this.#stopped) return;
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
   */
  async ack(seqs: readonly number[]): Promise<number> {
    this.forget(seqs);
    return this.#o.storage.ackMessages(this.#o.address, seqs);
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
    // Only a pump that stopped at a full window has more to push now; one that had caught up is
    // woken by the next send (a read per acknowledgement that finds nothing was a fifth of the
    // relay's reads at 5,000 envelopes/s, bench/results/relay-latency.md).
    if (this.#windowFull) this.wake();
  }

  stop(): void {
    this.#stopped = true;
  }

  get inFlight(): number {
    return this.#inFlight.size;
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
      const page = await o.storage.fetchMessages(o.address, this.#lastSeq, want, o.now());
      if (this.#stopped) return;
      let pushed = 0;
      const live = this.#drainedSent && o.onLivePush ? o.now() : undefined;
      for (const m of page) {
        // Always allow one envelope in flight, however large.
        if (this.#inFlight.size > 0 && this.#inFlightBytes + m.envelope.length > o.maxInFlightBytes) break;
        o.send(JSON.stringify({ type: 'envelope', ...deliveredMessage(m) }));
        this.#inFlight.set(m.seq, m.envelope.length);
        this.#inFlightBytes += m.envelope.length;
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
