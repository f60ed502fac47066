/**
 * The events the SDK raises for the app. spec/10-client.md §8.
 *
 * A tiny typed emitter (no Node dependency, so it runs in browsers): each
 * listener is called synchronously, after the state it reports has been
 * committed to the store. A listener that throws does not break the SDK;
 * its error is reported on `listener-error`.
 */
import type { AttachmentInfo } from './content/content.ts';
import type { RefusalReason } from './devices/trust.ts';
import type { MessageStatusName } from './state/history.ts';

export interface SenderRef {
  /** Account id (base64url). */
  readonly account: string;
  readonly deviceId: number;
}

export type MessageBody =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'attachment'; readonly attachment: AttachmentInfo; readonly caption: string };

export interface MessageEvent {
  /** The conversation: the other account's id, or `g.<group id>`. */
  readonly conversation: string;
  /** Message id (base64url). */
  readonly messageId: string;
  readonly sender: SenderRef;
  /** True when one of this account's other devices sent it (a sync transcript). */
  readonly outgoing: boolean;
  /** The sender's clock (display only). */
  readonly sentAt: number;
  readonly body: MessageBody;
  /** When the message disappears from the store, or null. */
  readonly expiresAt: number | null;
}

export interface ClientEvents {
  message: MessageEvent;
  /** A delivery or read receipt raised one of our messages' status. */
  receipt: { readonly conversation: string; readonly messageId: string; readonly status: MessageStatusName; readonly from: string };
  typing: { readonly conversation: string; readonly from: SenderRef; readonly typing: boolean };
  /** A group's name or members changed (or we were added or removed). */
  'group-change': {
    readonly conversation: string;
    readonly name: string;
    readonly members: readonly string[];
    readonly added: readonly string[];
    readonly removed: readonly string[];
    readonly by: string;
  };
  /** The devices we trust for an account changed. */
  'devices-change': { readonly account: string; readonly added: readonly number[]; readonly removed: readonly number[] };
  /** A contact name now points at another account: a different safety number; re-verify. */
  'safety-number-change': { readonly name: string; readonly previous: string; readonly account: string };
  'timer-change': { readonly conversation: string; readonly expireTimer: number; readonly by: string };
  /** The relay lists a device the account did not certify (or removed): it is refused. */
  'untrusted-device': { readonly account: string; readonly deviceId: number; readonly reason: RefusalReason };
  /**
   * An envelope was refused and acknowledged: it could not be decrypted, or its
   * content could not be applied, or its sender exceeded a limit. `code` says
   * which (a core or client error code; INTERNAL for an untyped failure).
   * `retryRequested`: a retry request went to its sender.
   */
  undecryptable: { readonly sender: SenderRef; readonly clientId: string; readonly code: string; readonly retryRequested: boolean };
  /**
   * An envelope failed on this device's store MAX_LOCAL_ATTEMPTS times and was
   * parked as a dead letter (acknowledged; see `ParleyClient.deadLetters`).
   */
  'dead-letter': {
    readonly id: string;
    readonly sender: SenderRef;
    readonly clientId: string;
    readonly code: string;
    readonly attempts: number;
  };
  /** We re-sent a message in a fresh session because its recipient asked. */
  resent: { readonly messageId: string; readonly to: string };
  /** The relay accepted a queued message. */
  sent: { readonly messageId: string; readonly conversation: string | null };
  /**
   * The relay connection: 'drained' once everything that waited when it
   * opened has been processed; 'closed' while it reconnects by itself.
   * 'ended' is final: the relay refused this connection for good, `reason`
   * says why ('replaced': another connection for this device, in this or
   * another process, took over; 'removed'; 'auth-failed'). Nothing arrives
   * until the app calls `start()` again (which takes the connection back).
   */
  connection: { readonly state: 'open' | 'drained' | 'closed' | 'ended'; readonly reason?: string };
  /**
   * A peer device already seen signing message version `minVersion` offered
   * a lower `version` (a bundle without its v2 signature, or a version-1
   * first message): refused as a downgrade, never retried
   * (spec/design/formats-v2.md §3.3). The relay, or the device's software, went back.
   */
  'downgrade-refused': { readonly account: string; readonly deviceId: number; readonly version: number; readonly minVersion: number };
  /**
   * The session with a peer device moved from message version 1 to 2 (both
   * devices run v2; spec/design/formats-v2.md §3.3): from now on its messages
   * are franked and can be reported. The v1 session is archived and still
   * decrypts late messages.
   */
  'session-upgraded': { readonly account: string; readonly deviceId: number; readonly version: 2; readonly previousVersion: 1 };
  /** A background problem the app may want to log (codes only, never secrets). */
  warning: { readonly code: string; readonly message: string };
  'listener-error': { readonly event: string; readonly error: unknown };
}

export type EventName = keyof ClientEvents;
export type Listener<E extends EventName> = (event: ClientEvents[E]) => void;

export class Emitter {
  readonly #listeners = new Map<EventName, Set<Listener<never>>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<E extends EventName>(event: E, listener: Listener<E>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<E extends EventName>(event: E, payload: ClientEvents[E]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as Listener<E>)(payload);
      } catch (error) {
        if (event !== 'listener-error') this.emit('listener-error', { event, error });
      }
    }
  }
}
