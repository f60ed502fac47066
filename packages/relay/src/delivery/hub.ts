/**
 * Which device has a live websocket on this relay process, and waking it
 * when new envelopes are committed. spec/09-relay.md §5.
 *
 * One connection per device: attaching a second one closes the first
 * ("replaced"). The hub is in-process; with a storage shared by several
 * relay processes (PostgreSQL), the storage's `watchMailboxes` feeds
 * `notify` from every process's sends (LISTEN/NOTIFY).
 *
 * A commit of this process hands its rows along with the wake-up
 * (`notify(devices, rows)`): each connected device gets its own rows, in seq
 * order, and its pump decides whether it may push them without reading
 * (mailbox-pump.ts). Rows for a device without a connection here are
 * dropped at once; nothing is kept.
 */
import type { CommittedMessage, DeviceAddress } from '../storage/types.ts';

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
  /**
   * New envelopes may be waiting. `rows`: the device's rows of one commit of this process, in seq
   * order (possibly not all that is waiting); without them the pump reads its mailbox.
   */
  wake(rows?: readonly CommittedMessage[]): void;
  /** These seqs were acknowledged some other way (HTTP): stop counting them in flight. */
  acknowledged(seqs: readonly number[]): void;
  close(code: number, reason: string): void;
}

/**
 * A device's key in the hub's map: its account key's bytes as a latin1 string (read in place, no
 * copy; one byte per character) and its device id. Computed per committed row (issue 15's profile:
 * a hex copy per row was a tenth of the hub's cost). Never logged or sent.
 */
export function addressKey(a: DeviceAddress): string {
  const k = a.accountKey;
  return `${Buffer.from(k.buffer, k.byteOffset, k.length).toString('latin1')}:${a.deviceId}`;
}

export class DeliveryHub {
  readonly #connections = new Map<string, MailboxConnection>();
  /** Wake-ups of this turn, handed over at its end (`notify`). */
  #pending: { rowless: string[]; keys: string[]; rows: CommittedMessage[] } | undefined;

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

  /**
   * Wakes these devices' connections; `rows` (of one commit, in seq order) go to their recipients'
   * connections, also when a recipient is not in `addresses`; a device of `addresses` without rows
   * in the call reads (a retry's re-wake, another process's NOTIFY). The wake-ups of one turn of
   * the event loop are gathered and handed over together at its end (a microtask): a group commit
   * of SQLite calls this once per write, and each recipient then gets one wake-up with all its rows
   * of the batch instead of one per write (those that came while a read ran were dropped, and read
   * again).
   */
  notify(addresses: readonly DeviceAddress[], rows: readonly CommittedMessage[] = []): void {
    let pending = this.#pending;
    if (!pending) {
      pending = { rowless: [], keys: [], rows: [] };
      this.#pending = pending;
      queueMicrotask(() => this.#handOver());
    }
    if (rows.length === 0) {
      for (const a of addresses) pending.rowless.push(addressKey(a));
      return;
    }
    // Runs per committed row (issue 15): the storage names a recipient with its rows' own address
    // object, so such an address is found by identity and needs no key of its own.
    const withRows = new Set<string>();
    const recipients = new Set<DeviceAddress>();
    for (const row of rows) {
      const key = addressKey(row.recipient);
      withRows.add(key);
      recipients.add(row.recipient);
      pending.keys.push(key);
      pending.rows.push(row);
    }
    for (const a of addresses) {
      if (recipients.has(a)) continue;
      const key = addressKey(a);
      if (!withRows.has(key)) pending.rowless.push(key);
    }
  }

  #handOver(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) return;
    const handed = new Map<MailboxConnection, CommittedMessage[]>();
    const { keys, rows } = pending;
    for (let i = 0; i < rows.length; i++) {
      const c = this.#connections.get(keys[i] as string);
      if (!c) continue;
      const row = rows[i] as CommittedMessage;
      const list = handed.get(c);
      if (list) list.push(row);
      else handed.set(c, [row]);
    }
    for (const [c, list] of handed) c.wake(list);
    // After the rows: a wake-up without rows may stand for rows committed after them (another process's).
    for (const key of new Set(pending.rowless)) this.#connections.get(key)?.wake();
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
