/**
 * The one way an SDK operation reaches the store. spec/10-client.md §1.
 *
 * `run(command)` is the only place that goes serial queue → the command's
 * network reads → one store transaction around its write → its follow-up
 * network steps → the events it gathered (only once everything committed)
 * → an outbox kick. Engine commands (engine/send.ts, contacts.ts,
 * devices.ts, read-receipts.ts, group-changes.ts, setup.ts) say what to do;
 * this file says in what order and under which lock.
 *
 * Jobs that commit in several steps of their own (receiving an envelope,
 * upkeep, registration) go through `job`: the same queue, events and kick,
 * with the transactions inside the job.
 */
import { type Context, Pending } from './context.ts';
import type { FlushResult } from './outbox.ts';
import type { OutboxScheduler } from './outbox-scheduler.ts';
import type { SerialQueue } from './serial.ts';

/**
 * An operation in three phases; its phases share what they learn through
 * the closure that builds it. Only `commit` writes (anything else the
 * phases learn, such as a fetched device list, is committed by the
 * directory's own helpers), and its value is the command's result.
 */
export interface Command<T> {
  /** Network reads the write needs (device lists). Runs in the serial queue, outside the transaction. */
  readonly prepare?: (ctx: Context, pending: Pending) => Promise<void>;
  /** The write: runs inside one store transaction; events go to `pending` and out only if it commits. */
  readonly commit: (ctx: Context, pending: Pending) => T;
  /** Network steps that must follow the commit (publishing our new device list to the relay). */
  readonly publish?: (ctx: Context) => Promise<void>;
}

/** A multi-step job that commits its own transactions (receive, upkeep, registration). */
export type Job<T> = (ctx: Context, pending: Pending) => Promise<T>;

/** A queued outbox entry a command produced: the caller may wait for its flush. */
export interface Queued {
  readonly key: string;
}

export class Runner {
  readonly #ctx: Context;
  readonly #serial: SerialQueue;
  readonly #outbox: OutboxScheduler;

  constructor(ctx: Context, serial: SerialQueue, outbox: OutboxScheduler) {
    this.#ctx = ctx;
    this.#serial = serial;
    this.#outbox = outbox;
  }

  /** Runs a command to its end; resolves with what its commit returned. */
  run<T>(command: Command<T>): Promise<T> {
    return this.#execute((pending) => this.#phases(command, pending));
  }

  /**
   * Runs a command that queues an outbox entry and also hands back a
   * promise of that entry's flush result, registered inside the serial job
   * (so the pump cannot flush the entry before anyone listens).
   */
  async queue<T extends Queued>(command: Command<T>): Promise<{ result: T; flushed: Promise<FlushResult> }> {
    return this.#execute(async (pending) => {
      const result = await this.#phases(command, pending);
      return { result, flushed: this.#outbox.waitFor(result.key) };
    });
  }

  /**
   * For the SDK's synchronous methods: a command without network phases
   * runs at once when nothing is queued (so the app sees its write on
   * return, as it always has), and otherwise waits its turn behind the
   * queued jobs, never writing between two steps of one. A failure is the
   * app's `warning`.
   */
  runSoon(command: Command<unknown>, warn: (e: unknown) => void): void {
    if (command.prepare || command.publish) throw new TypeError('runSoon takes a command without network phases');
    if (this.#serial.busy) {
      this.run(command).catch(warn);
      return;
    }
    const pending = new Pending();
    try {
      this.#ctx.store.transaction(() => command.commit(this.#ctx, pending));
    } catch (e) {
      warn(e);
      return;
    }
    pending.flush(this.#ctx.events);
    this.#outbox.kick();
  }

  /** Runs a job in the queue; the outbox is kicked after it unless `kick` says otherwise for its result. */
  job<T>(job: Job<T>, kick: (result: T) => boolean = () => true): Promise<T> {
    return this.#execute((pending) => job(this.#ctx, pending), kick);
  }

  async #phases<T>(command: Command<T>, pending: Pending): Promise<T> {
    await command.prepare?.(this.#ctx, pending);
    const result = this.#ctx.store.transaction(() => command.commit(this.#ctx, pending));
    await command.publish?.(this.#ctx);
    return result;
  }

  /**
   * The sequence itself. A step that throws leaves its events unsent and
   * the outbox unkicked: the caller gets the error.
   */
  async #execute<T>(step: (pending: Pending) => Promise<T>, kick: (result: T) => boolean = () => true): Promise<T> {
    const pending = new Pending();
    const result = await this.#serial.run(() => step(pending));
    pending.flush(this.#ctx.events);
    if (kick(result)) this.#outbox.kick();
    return result;
  }
}
