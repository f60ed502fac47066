/**
 * Which device has a live websocket on this relay process, and waking it
 * when new envelopes are committed. spec/09-relay.md §5.
 *
 * One connection per device: attaching a second one closes the first
 * ("replaced"). The hub is in-process; with a storage shared by several
 * relay processes (PostgreSQL), the storage's `watchMailboxes` feeds
 * `notify` from every process's sends (LISTEN/NOTIFY).
 */
import type { DeviceAddress } from '../storage/types.ts';

/** Websocket close codes the relay uses (4000-4999 is the application range). */
export const CloseCode = {
  goingAway: 1001,
  tryAgainLater: 1013,
  authFailed: 4001,
  replaced: 4002,
  protocolError: 4003,
  deviceRemoved: 4004,
  authTimeout: 4008,
} as const;

export interface MailboxConnection {
  readonly address: DeviceAddress;
  /** New envelopes may be waiting. */
  wake(): void;
  /** These seqs were acknowledged some other way (HTTP): stop counting them in flight. */
  acknowledged(seqs: readonly number[]): void;
  close(code: number, reason: string): void;
}

export function addressKey(a: DeviceAddress): string {
  return `${Buffer.from(a.accountKey).toString('hex')}:${a.deviceId}`;
}

export class DeliveryHub {
  readonly #connections = new Map<string, MailboxConnection>();

  /** Makes `connection` the device's one connection; a previous one is closed. */
  attach(connection: MailboxConnection): void {
    const key = addressKey(connection.address);
    const previous = this.#connections.get(key);
    this.#connections.set(key, connection);
    if (previous && previous !== connection) previous.close(CloseCode.replaced, 'replaced by a newer connection');
  }

  detach(connection: MailboxConnection): void {
    const key = addressKey(connection.address);
    if (this.#connections.get(key) === connection) this.#connections.delete(key);
  }

  notify(addresses: readonly DeviceAddress[]): void {
    for (const a of addresses) this.#connections.get(addressKey(a))?.wake();
  }

  /** Wakes every connection (wake-ups may have been missed). */
  wakeAll(): void {
    for (const c of this.#connections.values()) c.wake();
  }

  acknowledged(address: DeviceAddress, seqs: readonly number[]): void {
    this.#connections.get(addressKey(address))?.acknowledged(seqs);
  }

  disconnect(address: DeviceAddress, code: number, reason: string): void {
    this.#connections.get(addressKey(address))?.close(code, reason);
  }

  closeAll(code: number, reason: string): void {
    for (const c of [...this.#connections.values()]) c.close(code, reason);
    this.#connections.clear();
  }

  get size(): number {
    return this.#connections.size;
  }
}
