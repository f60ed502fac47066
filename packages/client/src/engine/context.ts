/**
 * What every engine module shares: the store, the crypto provider, the
 * clock, the relay link, this device's identity and the event emitter.
 * spec/10-client.md §1.
 *
 * Rule for everything that uses it: mutable protocol state (session
 * records, the prekey store, group sessions) is loaded from the store
 * inside the synchronous transaction that changes it and saved before the
 * transaction ends; nothing mutable is cached across an `await`. So a
 * failed transaction leaves no in-memory copy ahead of the stored one.
 */
import type { Account, AsyncCurves, CryptoProvider, DeviceIdentity } from '@parley/core';
import type { ClientEvents, Emitter, EventName } from '../events.ts';
import type { DeviceAddress } from '../state/ids.ts';
import type { AccountRelayLink, RelayLink } from '../relay-link/link.ts';
import type { Clock, ClientStore } from '../store/types.ts';
import { RECEIPT_DELAY_MS } from '../sealed/constants.ts';

export interface ClientOptions {
  /** One-time X25519 prekeys kept on the relay (refilled to this). */
  oneTimePreKeys: number;
  /** One-time ML-KEM prekeys kept on the relay (1184 bytes each). */
  kemPreKeys: number;
  /** Refill when the relay holds fewer than this fraction of the targets. */
  refillBelow: number;
  /** How often the signed prekey is replaced. */
  signedPreKeyRotationMs: number;
  /** How long a replaced signed prekey still accepts initial messages (at least the relay's message TTL). */
  signedPreKeyGraceMs: number;
  /** How often the last-resort ML-KEM prekey is replaced (spec/10-client.md §4.4). */
  lastResortKemRotationMs: number;
  /** How long a replaced last-resort ML-KEM prekey still accepts initial messages (at least the relay's message TTL). */
  lastResortKemGraceMs: number;
  /** A device list fetched longer ago than this is fetched again before sending. */
  deviceListMaxAgeMs: number;
  /** How often upkeep runs (rotation, refill, sweep, outbox retry). */
  maintenanceIntervalMs: number;
  /** Send delivery receipts for received messages. */
  deliveryReceipts: boolean;
  /** First delay before retrying the outbox after the relay was unreachable (doubles up to 30 s). */
  retryDelayMs: number;
  /** Delay before retrying a send held back by a refused (ghost) device. */
  blockedRetryMs: number;
  /**
   * Message versions this client starts and accepts sessions in, and so
   * publishes (the v2 form of its signed prekey is uploaded only with 2 in
   * it: a device must never sign a version it does not run, or pinned peers
   * would refuse it, spec/design/formats-v2.md §3.3). See DEFAULT_SESSION_VERSIONS.
   */
  sessionVersions: readonly number[];
  /**
   * Sealed sender (spec/12-sealed-sender.md): grant delivery tokens to
   * contacts and seal sends to accounts that granted us one. Off by default
   * until the relays and clients a user talks to have the v2 routes.
   */
  sealedSender: boolean;
  /**
   * With sealed sending, how long a receipt to a peer waits (uniform in this
   * range, fresh per batch) unless a message to that peer carries it sooner
   * (spec/12-sealed-sender.md §8: statistical disclosure).
   */
  receiptDelayMs: { readonly min: number; readonly max: number };
}

/**
 * Version 2 where the peer runs it, version 1 with peers that do not
 * (formats-v2 §3.2, §10). Every v2 message carries its franking tag beside
 * it on every send path (HTTP, fan-out, sealed) and is checked on receive
 * (engine/receive.ts); `[1]` makes a client that never starts or accepts v2.
 */
export const DEFAULT_SESSION_VERSIONS: readonly number[] = Object.freeze([1, 2]);

export const DEFAULT_OPTIONS: ClientOptions = {
  oneTimePreKeys: 100,
  kemPreKeys: 20,
  refillBelow: 0.25,
  // Signal rotates every two days and keeps old keys for a month; a week is gentler on a relay
  // that many clients share, and still limits what a stolen signed prekey exposes.
  signedPreKeyRotationMs: 7 * 24 * 3600 * 1000,
  signedPreKeyGraceMs: 31 * 24 * 3600 * 1000,
  // The last-resort KEM key is what every initiator falls back on when the relay has (or claims to
  // have) no one-time KEM key left: rotating it with the signed prekey bounds how many sessions one
  // leaked or withheld-for key covers to a week's worth, as Signal does for its last-resort Kyber key.
  lastResortKemRotationMs: 7 * 24 * 3600 * 1000,
  lastResortKemGraceMs: 31 * 24 * 3600 * 1000,
  deviceListMaxAgeMs: 24 * 3600 * 1000,
  maintenanceIntervalMs: 3600 * 1000,
  deliveryReceipts: true,
  retryDelayMs: 500,
  // A lying relay rarely stops lying within seconds; each retry costs a device-list fetch.
  blockedRetryMs: 30_000,
  sessionVersions: DEFAULT_SESSION_VERSIONS,
  sealedSender: false,
  receiptDelayMs: RECEIPT_DELAY_MS,
};

export interface Context {
  readonly store: ClientStore;
  readonly provider: CryptoProvider;
  /**
   * Asynchronous X25519/Ed25519 (WebCrypto in browsers), or null. The
   * receive path prepares each decryption's curve operations on them before
   * its synchronous transaction (core's prepareAsyncCurves, spec 01 §4.2.1).
   */
  readonly curves?: AsyncCurves | null;
  readonly clock: Clock;
  readonly relay: RelayLink & Partial<AccountRelayLink>;
  readonly device: DeviceIdentity;
  /** Only on the primary device. */
  readonly account: Account | null;
  readonly self: DeviceAddress;
  readonly events: Emitter;
  readonly options: ClientOptions;
}

/**
 * Events gathered during a transaction and emitted only after it commits,
 * so the app never hears of a change that was rolled back.
 */
export class Pending {
  readonly #events: [EventName, unknown][] = [];

  add<E extends EventName>(event: E, payload: ClientEvents[E]): void {
    this.#events.push([event, payload]);
  }

  flush(events: Emitter): void {
    for (const [name, payload] of this.#events.splice(0)) events.emit(name, payload as never);
  }
}
