/**
 * Received files the CLI still has to download. The SDK acknowledges a
 * message to the relay once it is stored, while the file behind it is
 * downloaded afterwards from the relay's attachment store. So a message
 * with a file is written here (synchronously, before the acknowledgement)
 * and leaves only once the file is saved; `inbox` and `listen` wait for
 * every download before they exit, and every command that opens the home
 * resumes what an earlier process left (it was killed, the relay went
 * away). `parley download` fetches a file again while the relay holds it.
 *
 *   <home>/pending-downloads.json   [{ "conversation": ..., "messageId": ... }]
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ParleyClient } from '../client.ts';
import { isClientError } from '../errors.ts';
import type { Out } from './device-socket.ts';

/** Attempts per file in one process before it waits for the next command (the relay may be down). */
const MAX_ATTEMPTS = 3;
/** Most downloads remembered; beyond it the oldest are dropped (`parley download` still fetches them). Bounds the file. */
const MAX_PENDING = 1000;

export interface PendingDownload {
  readonly conversation: string;
  readonly messageId: string;
}

export class Downloads {
  readonly #path: string;
  readonly #client: ParleyClient;
  readonly #out: () => Out;
  readonly #running = new Map<string, Promise<void>>();

  constructor(homeDir: string, client: ParleyClient, out: () => Out) {
    this.#path = join(homeDir, 'pending-downloads.json');
    this.#client = client;
    this.#out = out;
  }

  #read(): PendingDownload[] {
    if (!existsSync(this.#path)) return [];
    try {
      const list = JSON.parse(readFileSync(this.#path, 'utf8')) as unknown;
      return Array.isArray(list)
        ? list.filter(
            (d): d is PendingDownload =>
              typeof d === 'object' && d !== null && typeof d.conversation === 'string' && typeof d.messageId === 'string',
          )
        : [];
    } catch {
      return [];
    }
  }

  #write(list: readonly PendingDownload[]): void {
    const tmp = `${this.#path}.tmp`;
    writeFileSync(tmp, JSON.stringify(list.slice(-MAX_PENDING)), { mode: 0o600 });
    renameSync(tmp, this.#path);
  }

  /** Remembers a file to download (synchronously: before the message is acknowledged) and starts it. */
  add(d: PendingDownload): void {
    const list = this.#read();
    if (!list.some((x) => x.messageId === d.messageId)) this.#write([...list, d]);
    this.#start(d);
  }

  /** Starts every download an earlier process left. */
  resume(): void {
    for (const d of this.#read()) this.#start(d);
  }

  /** Resolves when every started download finished or gave up for now. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()]);
  }

  get pending(): number {
    return this.#read().length;
  }

  #start(d: PendingDownload): void {
    if (this.#running.has(d.messageId)) return;
    const run = this.#download(d).finally(() => this.#running.delete(d.messageId));
    this.#running.set(d.messageId, run);
  }

  async #download(d: PendingDownload): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const path = await this.#client.saveAttachment(d.conversation, d.messageId);
        this.#forget(d);
        this.#out().print(`  saved to ${path}`);
        return;
      } catch (e) {
        // Gone for good: the message disappeared, or the relay no longer has the file.
        // This process is closing: the entry stays, the next command resumes it.
        if (isClientError(e, 'CLOSED')) return;
        // Only an unreachable relay is worth another try; anything else (the message disappeared, the
        // relay no longer has the file, the bytes are not what the sender described) stays as it is.
        if (!isClientError(e, 'RELAY_UNAVAILABLE')) {
          this.#forget(d);
          this.#out().print(`  could not save the file: ${(e as Error).message}`);
          return;
        }
        if (attempt >= MAX_ATTEMPTS) {
          this.#out().print(`  the file is not saved yet (${(e as Error).message}); parley will try again next time`);
          return;
        }
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  #forget(d: PendingDownload): void {
    this.#write(this.#read().filter((x) => x.messageId !== d.messageId));
  }
}
