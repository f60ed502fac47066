/**
 * What a running `parley` shows as things happen: incoming messages (their
 * files downloaded), receipts, typing, group and device changes, queued
 * messages that went out later, and a connection taken over elsewhere.
 */
import type { ParleyClient } from '../client.ts';
import { messageIdText } from '../state/ids.ts';
import type { Out } from './device-socket.ts';
import type { Downloads } from './downloads.ts';
import { formatEvent, nameOf, preview } from './format.ts';

export interface FollowOptions {
  /** Conversation shown in a chat: its incoming messages are marked read. */
  readonly markRead?: string;
  /** Called when the relay ended this device's connection for good ('replaced', 'removed', 'auth-failed'). */
  readonly onEnded?: (reason: string) => void;
}

/** Prints events to `out()` until the returned function is called. */
export function follow(client: ParleyClient, downloads: Downloads, out: () => Out, options: FollowOptions = {}): () => void {
  const offs = [
    client.on('message', (m) => {
      out().print(formatEvent(client, m));
      // Remembered before this listener returns, so before the SDK acknowledges the message.
      if (m.body.type === 'attachment' && !m.outgoing) downloads.add({ conversation: m.conversation, messageId: m.messageId });
      if (options.markRead && m.conversation === options.markRead && !m.outgoing)
        void client.markRead(m.conversation).catch(() => undefined);
    }),
    client.on('receipt', (r) => {
      if (r.status === 'read') out().print(`  (${nameOf(client, r.from)} read your message)`);
    }),
    client.on('typing', (t) => {
      if (t.typing && (!options.markRead || t.conversation === options.markRead))
        out().print(`  (${nameOf(client, t.from.account)} is typing)`);
    }),
    client.on('group-change', (g) =>
      out().print(`  (group ${g.name}: ${g.members.length} members; +${g.added.length} -${g.removed.length})`),
    ),
    client.on('devices-change', (d) => out().print(`  (${nameOf(client, d.account)} devices changed: +[${d.added}] -[${d.removed}])`)),
    client.on('safety-number-change', (s) => out().print(`  (!) ${s.name} now points at another account: compare safety numbers again`)),
    client.on('timer-change', (t) =>
      out().print(`  (disappearing messages in ${nameOf(client, t.conversation)}: ${t.expireTimer ? `${t.expireTimer} s` : 'off'})`),
    ),
    client.on('untrusted-device', (u) =>
      out().print(
        `  (!) the relay lists a device ${u.deviceId} of ${nameOf(client, u.account)} that the account did not certify (${u.reason}); refused`,
      ),
    ),
    client.on('undecryptable', (u) =>
      out().print(
        `  (a message from ${nameOf(client, u.sender.account)} could not be decrypted; ${u.retryRequested ? 'asked for it again' : 'dropped'})`,
      ),
    ),
    client.on('connection', (c) => {
      if (c.state !== 'ended') return;
      const why =
        c.reason === 'replaced'
          ? 'another program connected to the relay as this device (the same home, or a copy of it)'
          : c.reason === 'removed'
            ? 'this device was removed from the account'
            : 'the relay refused this device';
      out().print(`  (!) disconnected: ${why}; nothing more arrives here`);
      options.onEnded?.(c.reason ?? 'ended');
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** Latest messages of a conversation looked at for queued ones (older ones went out or are announced by the SDK's retry anyway). */
const QUEUED_SCAN = 200;

/**
 * Announces messages that were queued (the relay was unreachable) once they
 * reach the relay. Watches the outgoing messages still queued in these
 * conversations now, and any queued later through `watch`.
 */
export class QueuedWatch {
  readonly #waiting = new Map<string, string>();
  readonly #off: () => void;

  constructor(client: ParleyClient, conversations: readonly string[], out: () => Out) {
    for (const conversation of conversations) this.watch(client, conversation);
    this.#off = client.on('sent', (s) => {
      const what = this.#waiting.get(s.messageId);
      if (what === undefined) return;
      this.#waiting.delete(s.messageId);
      out().print(`  (queued message to ${nameOf(client, s.conversation ?? '')} went out: ${what})`);
    });
  }

  /** Starts watching the messages of a conversation still queued. */
  watch(client: ParleyClient, conversation: string): void {
    for (const m of client.history(conversation, QUEUED_SCAN)) {
      if (m.outgoing && m.status === 'queued') this.#waiting.set(messageIdText(m.content.messageId), preview(m));
    }
  }

  close(): void {
    this.#off();
  }
}
