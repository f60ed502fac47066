/**
 * What the SDK needs from a relay, as one small interface. spec/10-client.md §1.
 *
 * The SDK's logic is written against this interface, not against HTTP:
 * `adapter.ts` (beside this file) implements it on the typed relay client
 * (`../relay-client/`), and the unit tests implement it with an in-memory
 * fake relay. Every byte string here is opaque to the relay (certificates,
 * prekeys and bundles are core's canonical encodings; envelopes are core
 * messages).
 *
 * Errors: a method that cannot reach the relay, or gets a 5xx or 429, throws
 * ClientError RELAY_UNAVAILABLE (retry later); a refusal throws
 * RELAY_REFUSED with the relay's code in `details.relayCode`.
 */
import type { DeviceCertificate, KemPreKeyPublic, OneTimePreKeyPublic, SignedPreKeyPublic, SignedPreKeyV2Public } from '@parley/core';
import type { DeviceAddress } from '../state/ids.ts';
import type { DeliveryRecord } from '../relay-client/types.ts';

export type { DeliveryRecord };

export interface RelayDevice {
  readonly deviceId: number;
  /** Canonical certificate encoding, exactly as registered (unverified until the SDK checks it). */
  readonly certificate: Uint8Array;
}

export interface RelayBundle {
  readonly deviceId: number;
  /** Core's `encodeBundle` bytes (unverified until the SDK checks them). */
  readonly bundle: Uint8Array;
}

export interface PreKeyCounts {
  readonly oneTimePreKeys: number;
  readonly kemPreKeys: number;
  readonly signedPreKeyId: number | null;
  /** Whether the relay holds the v2 form of the current signed prekey (absent: a relay before version 2). */
  readonly signedPreKeyV2?: boolean;
  readonly lastResortKemPreKeyId: number | null;
}

/** Public prekeys to publish. */
export interface PreKeyUpload {
  readonly signedPreKey?: SignedPreKeyPublic;
  /** The same key's v2 form (versions and the second signature); only with `signedPreKey`. */
  readonly signedPreKeyV2?: SignedPreKeyV2Public;
  readonly lastResortKemPreKey?: KemPreKeyPublic;
  readonly oneTimePreKeys?: readonly OneTimePreKeyPublic[];
  readonly kemPreKeys?: readonly KemPreKeyPublic[];
}

export interface Registration extends PreKeyUpload {
  readonly certificate: DeviceCertificate;
  readonly signedPreKey: SignedPreKeyPublic;
  readonly lastResortKemPreKey: KemPreKeyPublic;
}

export interface OutgoingEnvelope {
  readonly recipient: DeviceAddress;
  readonly clientId: string;
  readonly envelope: Uint8Array;
  /** SHA-256 of the certificate the envelope was encrypted for (the relay answers stale-devices if it changed). */
  readonly certificateHash?: Uint8Array;
  /** A v2 message's franking tag: sent beside the envelope, franked by the relay, delivered with it (spec/14 §4). */
  readonly frankingTag?: Uint8Array;
}

export type SendOutcome =
  | { readonly status: 'stored' }
  | {
      readonly status: 'mismatched-devices';
      readonly mismatches: readonly { accountKey: Uint8Array; missingDevices: readonly number[]; extraDevices: readonly number[] }[];
    }
  | { readonly status: 'stale-devices'; readonly stale: readonly { accountKey: Uint8Array; staleDevices: readonly number[] }[] };

export interface IncomingEnvelope {
  /** The relay's handle for acknowledging. */
  readonly seq: number;
  /** Who sent it, as the relay says (checked against the decrypted session). */
  readonly sender: DeviceAddress;
  readonly clientId: string;
  readonly serverTimestamp: number;
  readonly expiresAt: number;
  readonly envelope: Uint8Array;
  /**
   * The relay's delivery record (a franked v2 envelope): the franking tag the
   * sender supplied and the relay's frank over it. Absent or null when the
   * relay sent none (v1 messages, relays before franking).
   */
  readonly delivery?: DeliveryRecord | null;
  /** The relay sent a record without the form of one (its code); `delivery` is then null. */
  readonly deliveryError?: string;
}

/** A sealed envelope: sent without authentication, under the recipient's delivery token (spec/12-sealed-sender.md §5). */
export interface SealedOutgoingEnvelope extends OutgoingEnvelope {
  readonly token: Uint8Array;
}

/** A sealed send's outcome: the v1 outcomes, or the token was refused (unknown, expired or revoked). */
export type SealedSendOutcome = SendOutcome | { readonly status: 'token-invalid' };

export interface SealedSendOptions {
  readonly ttlSeconds?: number;
  /** A sealed group send's payload, stored once by the relay. */
  readonly payload?: Uint8Array;
}

/** The relay's sealed-sender routes; absent on a link to a relay that predates them. */
export interface SealedRelayLink {
  registerTokens(tokens: readonly { hash: Uint8Array; expiresAt: number; scope: 'contact' | 'group' }[]): Promise<void>;
  revokeTokens(hashes: readonly Uint8Array[]): Promise<void>;
  /**
   * With `payload`, a sealed group send (spec/12 §10): the payload once, each
   * envelope its device's seal of the key wrap; all or nothing.
   */
  sendSealed(envelopes: readonly SealedOutgoingEnvelope[], options?: SealedSendOptions): Promise<SealedSendOutcome>;
}

export interface MailboxHandlers {
  /**
   * Called for each envelope, one at a time, in relay order. The link
   * acknowledges the envelope once the promise resolves; when it rejects,
   * the envelope stays on the relay and comes again.
   */
  onEnvelope(envelope: IncomingEnvelope): Promise<void>;
  /** The connection is up (again): queued envelopes follow. */
  onOpen?(): void;
  /** The connection dropped; the link reconnects by itself until closed. */
  onClose?(reason: string): void;
  /**
   * The relay refused this connection for good: 'replaced' (another
   * connection for this device took over, close 4002), 'removed' (the device
   * was removed, 4004) or 'auth-failed' (4001). The link does not reconnect.
   */
  onEnded?(why: 'replaced' | 'removed' | 'auth-failed'): void;
  /** Every envelope waiting when the connection opened has been handled. */
  onDrained?(): void;
}

export interface Mailbox {
  /** Stops receiving (and reconnecting). Unacknowledged envelopes stay on the relay. */
  close(): Promise<void>;
}

export interface RelayLink {
  /** This link's device. */
  readonly self: DeviceAddress;
  registerDevice(registration: Registration): Promise<PreKeyCounts>;
  uploadPreKeys(upload: PreKeyUpload): Promise<PreKeyCounts>;
  preKeyCounts(): Promise<PreKeyCounts>;
  /** An account's devices as the relay has them (empty for an unknown account). */
  listDevices(accountKey: Uint8Array): Promise<RelayDevice[]>;
  /** The account's signed device list as the relay holds it (unverified), or null when it has none. */
  fetchDeviceList(accountKey: Uint8Array): Promise<Uint8Array | null>;
  /**
   * Claims bundles: one device, or every device of the account (without the
   * caller's own device). Version-2 bundles where the relay serves them
   * (its v2 route), version 1 otherwise.
   */
  fetchBundles(accountKey: Uint8Array, deviceId: number | 'all'): Promise<RelayBundle[]>;
  /** One atomic send; covers every device of each recipient account (and the sender's other devices). */
  send(envelopes: readonly OutgoingEnvelope[], options?: { ttlSeconds?: number }): Promise<SendOutcome>;
  /** Opens the push connection for this device (a websocket); envelopes arrive through `handlers`. */
  openMailbox(handlers: MailboxHandlers): Mailbox;
  /** Uploads an encrypted attachment; returns the relay's id for it. */
  uploadAttachment(ciphertext: AsyncIterable<Uint8Array>, size: number): Promise<string>;
  /** Streams an attachment's ciphertext, in pieces. */
  downloadAttachment(id: string): AsyncIterable<Uint8Array>;
  /** Sealed sender (spec/12); absent: every send is identified. */
  readonly sealed?: SealedRelayLink;
  /** The report route (spec/17 §5); absent: this link cannot file reports. */
  readonly reports?: ReportsRelayLink;
}

/** Files abuse reports (spec/17-franking-and-reports.md §5), signed by this device. */
export interface ReportsRelayLink {
  /**
   * Sends one encoded AbuseReport. A refusal with one of the report codes is
   * a ReportError carrying the relay's code (and `details.item`, the failing
   * item); anything else is the link's usual ClientError.
   */
  fileReport(report: Uint8Array): Promise<void>;
}

/** Signing as the account key: only the primary device holds it. */
export interface AccountRelayLink {
  /**
   * Removes one of the account's devices (revoking its certificate on the
   * relay), naming the certificate removed, so a replayed removal cannot
   * remove a device re-linked under the same id.
   */
  removeDevice(deviceId: number, certificateHash: Uint8Array): Promise<void>;
  /** Stores our signed device list on the relay (a lower revision than the relay's is refused). */
  publishDeviceList(signedList: Uint8Array): Promise<void>;
}
