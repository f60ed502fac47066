/**
 * When outbox entries are flushed. spec/10-client.md §4.1.
 *
 * One pump at a time walks the outbox oldest first and flushes each entry
 * (engine/outbox.ts does one flush, through the serial queue). A kick while
 * the pump runs makes it go round once more, so any number of kicks costs
 * one extra round. Callers wait for one entry's next flush result.
 *
 * - The relay unreachable: the round ends, every waiter hears `unavailable`
 *   at once (later entries would meet the same relay), and the pump comes
 *   back after a delay that doubles up to MAX_RETRY_DELAY_MS.
 * - An entry blocked by a refused device is skipped for the rest of the
 *   round (it holds up no other entry) and retried after `blockedRetryMs`.
 * - A failed entry (flushEntry dropped it) is reported, and the next goes.
 * - The gate (the restore check, spec §7.5) runs before the first flush
 *   until it succeeds once; upkeep may open it earlier (`openGate`).
 *
 * It knows nothing of the store or the relay: what is queued, how an entry
 * is flushed and the gate are handed to it, so it is tested on its own
 * (test/outbox-scheduler.test.ts).
 */
import { ClientError, isClientError } from '../errors.ts';
import type { FlushResult } from './outbox.ts';

/** Longest the retry delay grows to while the relay is unreachable: a returning relay is found within this. */
const MAX_RETRY_DELAY_MS = 30_000;

export interface OutboxSchedulerDeps {
  /** The keys of the queued entries, oldest first. */
  readonly queued: () => readonly string[];
  /** Flushes one entry (through the serial queue). */
  readonly flush: (key: string) => Promise<FlushResult>;
  /** Must succeed once before anything is flushed (the restore check). */
  readonly gate: () => Promise<void>;
  /** Resolves when no job is left in the serial queue (close waits for it). */
  readonly idle: () => Promise<void>;
  /** A background failure for the app's `warning` event. */
  readonly warn: (e: unknown) => void;
  /** First delay after the relay was unreachable (doubles up to MAX_RETRY_DELAY_MS). */
  readonly retryDelayMs: number;
  /** Delay before retrying entries held back by a refused device. */
  readonly blockedRetryMs: number;
}

export class OutboxScheduler {
  readonly #deps: OutboxSchedulerDeps;
  readonly #waiters = new Map<string, ((r: FlushResult) => void)[]>();
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #retryDelay: number;
  #pumping: Promise<void> | null = null;
  #pumpAgain = false;
  #gateOpen = false;
  #closed = false;

  constructor(deps: OutboxSchedulerDeps) {
    this.#deps = deps;
    this.#retryDelay = deps.retryDelayMs;
  }

  /** Starts a pump round, or asks the running one for another. */
  kick(): void {
    if (this.#closed) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = this.#pump()
      .catch((e) => this.#deps.warn(e))
      .finally(() => {
        this.#pumping = null;
        if (this.#pumpAgain) {
          this.#pumpAgain = false;
          this.kick();
        }
      });
  }

  /**
   * The next flush result of one entry. Register it before the entry can be
   * flushed (inside the serial job that queued it), or the result may be
   * missed. With `kick`, also starts the pump.
   */
  waitFor(key: string, options: { kick?: boolean } = {}): Promise<FlushResult> {
    const promise = new Promise<FlushResult>((resolve) => {
      const list = this.#waiters.get(key) ?? [];
      list.push(resolve);
      this.#waiters.set(key, list);
    });
    if (options.kick) this.kick();
    return promise;
  }

  /** Resolves when the outbox is empty, or rejects with the error that keeps an entry waiting. */
  async drain(): Promise<void> {
    for (;;) {
      const next = this.#deps.queued()[0];
      if (next === undefined) return;
      const result = await this.waitFor(next, { kick: true });
      if (result.status === 'blocked' || result.status === 'unavailable') throw result.error;
    }
  }

  /** The gate's work was done elsewhere (upkeep ran the restore check). */
  openGate(): void {
    this.#gateOpen = true;
  }

  /** The relay is reachable again: the next failure waits the first delay, not the grown one. */
  connected(): void {
    this.#retryDelay = this.#deps.retryDelayMs;
  }

  /** No more rounds or retries from now on. */
  stop(): void {
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /**
   * Stops, waits for the running round and every queued job (a job may
   * still register a waiter), then tells every waiter CLOSED.
   */
  async close(): Promise<void> {
    this.stop();
    await this.#pumping;
    await this.#deps.idle();
    this.#settleAll({ status: 'unavailable', error: new ClientError('CLOSED', 'the client was closed') });
  }

  async #pump(): Promise<void> {
    if (!this.#gateOpen && this.#deps.queued().length > 0) {
      // No session state loaded from this store encrypts before the restore check ran (spec §7.5).
      try {
        await this.#deps.gate();
        this.#gateOpen = true;
      } catch (e) {
        const unavailable = isClientError(e, 'RELAY_UNAVAILABLE');
        const error = unavailable ? e : new ClientError('RELAY_UNAVAILABLE', 'the restore check could not run');
        this.#settleAll({ status: 'unavailable', error });
        if (!unavailable) this.#deps.warn(e);
        this.#backOff();
        return;
      }
    }
    const skip = new Set<string>();
    for (;;) {
      if (this.#closed) return;
      const next = this.#deps.queued().find((key) => !skip.has(key));
      if (next === undefined) return;
      const result = await this.#deps.flush(next);
      const waiters = this.#waiters.get(next) ?? [];
      this.#waiters.delete(next);
      for (const w of waiters) w(result);
      if (result.status === 'unavailable') {
        // Later entries would meet the same relay: their callers hear now, and the entries wait for the retry.
        this.#settleAll(result);
        this.#backOff();
        return;
      }
      if (result.status === 'blocked') {
        skip.add(next);
        this.#retryLater(this.#deps.blockedRetryMs);
        continue;
      }
      if (result.status === 'failed') this.#deps.warn(result.error);
      this.#retryDelay = this.#deps.retryDelayMs;
    }
  }

  #settleAll(result: FlushResult): void {
    for (const [key, list] of this.#waiters) {
      this.#waiters.delete(key);
      for (const w of list) w(result);
    }
  }

  #backOff(): void {
    this.#retryLater(this.#retryDelay);
    this.#retryDelay = Math.min(this.#retryDelay * 2, MAX_RETRY_DELAY_MS);
  }

  #retryLater(ms: number): void {
    if (this.#closed || this.#retryTimer) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.kick();
    }, ms);
    (this.#retryTimer as { unref?: () => void }).unref?.();
  }
}
