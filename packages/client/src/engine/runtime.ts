/**
 * What keeps a client running (spec/10-client.md §1, §4, §7): its serial
 * queue, the runner that every command goes through (engine/run.ts), the
 * outbox scheduler, the relay's push connection and the upkeep timer. The
 * facade (client.ts) holds one and hands it the commands; this knows nothing
 * of what each command does.
 */
import type { ContentBody } from '../content/content.ts';
import { ClientError } from '../errors.ts';
import type { IncomingEnvelope, Mailbox } from '../relay-link/link.ts';
import { messageIdText } from '../state/ids.ts';
import { listQueued } from '../state/outbox.ts';
import type { AttachmentFiles } from '../store/downloads.ts';
import type { Context } from './context.ts';
import { receiveJob } from './inbox.ts';
import { maintenanceJob } from './maintenance.ts';
import { flushEntry } from './outbox.ts';
import { OutboxScheduler } from './outbox-scheduler.ts';
import { Runner } from './run.ts';
import { type SendResult, sendCommand } from './send.ts';
import { SerialQueue } from './serial.ts';
import { checkForRestore } from './upkeep.ts';
import { releaseDueReceipts } from '../sealed/receipts.ts';

export class ClientRuntime {
  readonly ctx: Context;
  readonly files: AttachmentFiles | null;
  readonly runner: Runner;
  readonly #serial = new SerialQueue();
  readonly #outbox: OutboxScheduler;
  #mailbox: Mailbox | null = null;
  #maintenance: ReturnType<typeof setInterval> | null = null;
  #upkeepSoon = false;
  /** Releases receipts held back for sealed sending when their delay runs out (spec/12 §8). */
  #receiptTimer: ReturnType<typeof setTimeout> | null = null;
  #closed = false;

  constructor(ctx: Context, files: AttachmentFiles | null) {
    this.ctx = ctx;
    this.files = files;
    this.#outbox = new OutboxScheduler({
      queued: () => listQueued(ctx.store).map((q) => q.key),
      flush: (key) => this.#serial.run(() => flushEntry(ctx, key)),
      gate: () => this.#serial.run(async () => void (await checkForRestore(ctx))),
      idle: () => this.#serial.idle(),
      warn: (e) => this.warn(e),
      retryDelayMs: ctx.options.retryDelayMs,
      blockedRetryMs: ctx.options.blockedRetryMs,
    });
    this.runner = new Runner(ctx, this.#serial, this.#outbox);
  }

  /** Connects the receive loop, runs upkeep once, sends what is queued, and schedules upkeep. */
  async start(): Promise<void> {
    this.assertOpen();
    if (this.#mailbox) return;
    const events = this.ctx.events;
    this.#mailbox = this.ctx.relay.openMailbox({
      onEnvelope: (e) => this.#onEnvelope(e),
      onOpen: () => {
        events.emit('connection', { state: 'open' });
        this.#outbox.connected();
        this.#outbox.kick();
      },
      onClose: (reason) => events.emit('connection', { state: 'closed', reason }),
      onEnded: (reason) => {
        // The link will not reconnect: forget it, so start() can connect again (and take the device back).
        this.#mailbox = null;
        if (this.#maintenance) clearInterval(this.#maintenance);
        this.#maintenance = null;
        events.emit('connection', { state: 'ended', reason });
      },
      onDrained: () => events.emit('connection', { state: 'drained' }),
    });
    this.#maintenance = setInterval(() => void this.maintain().catch(() => undefined), this.ctx.options.maintenanceIntervalMs);
    (this.#maintenance as { unref?: () => void }).unref?.();
    await this.maintain().catch((e) => this.warn(e));
    this.#scheduleReceipts();
    this.#outbox.kick();
  }

  /** Stops the receive loop and timers, waits for running work, and settles every waiting send. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#maintenance) clearInterval(this.#maintenance);
    if (this.#receiptTimer) clearTimeout(this.#receiptTimer);
    this.#outbox.stop();
    const mailbox = this.#mailbox;
    this.#mailbox = null;
    await mailbox?.close().catch(() => undefined);
    await this.#outbox.close();
  }

  /** One round of upkeep (engine/maintenance.ts); it runs the restore check, so the outbox need not. */
  async maintain(): Promise<void> {
    this.assertOpen();
    await this.runner.job(maintenanceJob(this.files, () => this.#outbox.openGate()));
  }

  /** Resolves when the outbox is empty, or rejects with the error that keeps an entry waiting. */
  flush(): Promise<void> {
    return this.#outbox.drain();
  }

  /** Queues a content to a conversation (engine/send.ts) and resolves once the relay holds it. */
  async send(conversation: string, body: ContentBody, record: boolean): Promise<SendResult> {
    this.assertOpen();
    const { result, flushed } = await this.runner.queue(sendCommand(conversation, body, record));
    const sent = await flushed;
    if (sent.status === 'sent' || sent.status === 'gone') return { messageId: messageIdText(result.messageId) };
    throw sent.error;
  }

  /** A background failure, as the app's `warning` event (its code, never secrets). */
  warn(e: unknown): void {
    const code = (e as { code?: unknown }).code;
    this.ctx.events.emit('warning', {
      code: typeof code === 'string' ? code : 'INTERNAL',
      message: e instanceof Error ? e.message : String(e),
    });
  }

  assertOpen(): void {
    if (this.#closed) throw new ClientError('CLOSED', 'the client was closed');
  }

  async #onEnvelope(e: IncomingEnvelope): Promise<void> {
    this.assertOpen();
    try {
      const outcome = await this.runner.job(receiveJob(e));
      if (outcome.usedPreKeys) this.#scheduleUpkeep();
      this.#scheduleReceipts();
    } catch (err) {
      // Our own failure (the store): the envelope is not acknowledged and comes again.
      this.warn(err);
      throw err;
    }
  }

  /** Queues held receipts that are due (a job: serial, then an outbox kick), then sleeps until the next one is. */
  #scheduleReceipts(): void {
    if (this.#closed || !this.ctx.options.sealedSender) return;
    if (this.#receiptTimer) clearTimeout(this.#receiptTimer);
    this.#receiptTimer = null;
    const next = this.ctx.store.transaction(() => releaseDueReceipts(this.ctx));
    if (next === null) return;
    // setTimeout's largest delay is 2^31-1 ms; a later batch is looked at again then.
    const wait = Math.min(Math.max(next - this.ctx.clock(), 0), 0x7fffffff);
    this.#receiptTimer = setTimeout(() => {
      this.#receiptTimer = null;
      if (this.#closed) return;
      void this.runner.job(async () => this.#scheduleReceipts()).catch((e) => this.warn(e));
    }, wait);
    (this.#receiptTimer as { unref?: () => void }).unref?.();
  }

  /** Upkeep soon after a new session used our prekeys (one round however many did). */
  #scheduleUpkeep(): void {
    if (this.#upkeepSoon) return;
    this.#upkeepSoon = true;
    setTimeout(() => {
      this.#upkeepSoon = false;
      if (!this.#closed) void this.maintain().catch((e) => this.warn(e));
    }, 0);
  }
}
