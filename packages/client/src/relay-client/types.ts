/**
 * The relay's JSON wire shapes as the client sees them (spec/09-relay.md §4,
 * spec/openapi.json), and the decoded forms the client hands to callers.
 * Declared here, not imported, so the client does not depend on the relay
 * package; test/relay-wire-types.test.ts checks they match the relay's
 * schemas at compile time.
 */
import type { AnyPreKeyBundle, DeviceCertificate, PreKeyBundle } from '@parley/core';

// ---- wire (JSON; byte strings are base64url) ----------------------------

export interface WirePreKeyCounts {
  oneTimePreKeys: number;
  kemPreKeys: number;
  signedPreKeyId: number;
  /** Absent from relays that predate version 2 (the type follows this release's relay). */
  signedPreKeyV2: boolean;
  lastResortKemPreKeyId: number;
}

export interface WirePreKeyUploadResponse extends WirePreKeyCounts {
  ignored: number;
}

export interface WireRegisterDeviceResponse {
  status: 'created' | 'replaced' | 'unchanged';
  account: string;
  deviceId: number;
  preKeys: WirePreKeyUploadResponse;
}

export interface WireDeviceListResponse {
  account: string;
  devices: { deviceId: number; certificate: string; certificateHash: string; registeredAt: number }[];
}

/** `GET /v1/accounts/{account}/device-list` (spec/09-relay.md §4.1). */
export interface WireSignedDeviceListResponse {
  account: string;
  revision: number;
  deviceList: string;
  updatedAt: number;
}

export interface WirePutDeviceListResponse {
  status: 'stored' | 'unchanged';
  revision: number;
}

export interface WireBundleResponse {
  account: string;
  bundles: { deviceId: number; bundle: string; certificateHash: string }[];
}

export interface WireOutgoingMessage {
  account: string;
  deviceId: number;
  id: string;
  envelope: string;
  certificateHash?: string;
  frankingTag?: string;
}

export interface WireSendBody {
  messages: WireOutgoingMessage[];
  ttlSeconds?: number;
}

/** A group fan-out: one envelope for many devices, stored once (spec/09-relay.md §4.3.1). */
export interface WireFanoutBody {
  id: string;
  envelope: string;
  frankingTag?: string;
  recipients: { account: string; deviceId: number; certificateHash?: string }[];
  ttlSeconds?: number;
}

export interface WireSendResponse {
  accepted: number;
}

/** The relay's delivery record of a franked envelope (spec/17-franking-and-reports.md §4). */
export interface WireDeliveryRecord {
  envelopeId: string;
  acceptedAt: number;
  frankKeyId: number;
  frank: string;
  frankingTag: string;
}

export interface WireDeliveredMessage {
  seq: number;
  sender: { account: string; deviceId: number };
  id: string;
  serverTimestamp: number;
  expiresAt: number;
  envelope: string;
  /** Present when the sender supplied a franking tag (a v2 message). */
  delivery?: WireDeliveryRecord;
}

export interface WireFetchResponse {
  messages: WireDeliveredMessage[];
  more: boolean;
}

export interface WireUploadStatus {
  id: string;
  size: number;
  offset: number;
  complete: boolean;
  expiresAt: number;
}

export interface WireErrorResponse {
  statusCode: number;
  code: string;
  error: string;
  message: string;
  details?: Record<string, unknown>;
}

// ---- decoded ------------------------------------------------------------

export interface DeviceAddress {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export interface ListedDevice {
  readonly deviceId: number;
  /** Verified against the account key by the client. */
  readonly certificate: DeviceCertificate;
  readonly certificateHash: Uint8Array;
  readonly registeredAt: number;
}

export interface FetchedBundle<B extends AnyPreKeyBundle = PreKeyBundle> {
  readonly deviceId: number;
  /** Decoded and verified (certificate against the account, prekey signatures). */
  readonly bundle: B;
  /** Pass back with envelopes so the relay can answer STALE_DEVICES when the device re-registers. */
  readonly certificateHash: Uint8Array;
}

export interface OutgoingEnvelope {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  /** Client-chosen idempotency key: reuse it when retrying the same message. */
  readonly id: string;
  readonly envelope: Uint8Array;
  readonly certificateHash?: Uint8Array;
  /** A v2 message's 32-byte franking tag: the relay franks the envelope and delivers the tag beside it. */
  readonly frankingTag?: Uint8Array;
}

/**
 * A delivery record, decoded and checked for form (lengths, types): what a
 * report of the message carries (spec/17-franking-and-reports.md §4). Only
 * the relay (or its moderation service) can check the frank itself.
 */
export interface DeliveryRecord {
  /** 16 random bytes the relay assigned to this recipient's envelope. */
  readonly envelopeId: Uint8Array;
  /** When the relay accepted the envelope (ms since the epoch). */
  readonly acceptedAt: number;
  readonly frankKeyId: number;
  /** 32-byte HMAC under the relay's frank key. */
  readonly frank: Uint8Array;
  /** The 32-byte franking tag the sender supplied. */
  readonly frankingTag: Uint8Array;
}

export interface ReceivedEnvelope {
  readonly seq: number;
  readonly sender: DeviceAddress;
  readonly id: string;
  readonly serverTimestamp: number;
  readonly expiresAt: number;
  readonly envelope: Uint8Array;
  /** The delivery record (franked v2 envelopes), or null when the relay sent none. */
  readonly delivery: DeliveryRecord | null;
  /**
   * Set when the relay sent a delivery record that does not have the form of
   * one (BAD_DELIVERY_RECORD): the envelope is still handed on, with
   * `delivery` null, so one malformed record never blocks the mailbox; the
   * SDK refuses a v2 message without a usable tag and accounts for it.
   */
  readonly deliveryError?: string;
}

/** What 409 MISMATCHED_DEVICES says, per recipient account. */
export interface DeviceMismatch {
  readonly accountKey: Uint8Array;
  readonly missingDevices: readonly number[];
  readonly extraDevices: readonly number[];
}

// ---- websocket ------------------------------------------------------------

/** The subset of the WebSocket API the client uses (browser WebSocket and the `ws` package both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  /**
   * Browsers: "blob" by default, set to "arraybuffer" for binary push frames
   * (spec/09-relay.md §5.2.2); the `ws` package's "nodebuffer" is left as is.
   */
  binaryType?: string;
  /** Text frames (JSON), and binary send and ack frames (spec/09-relay.md §5.2.2, §5.4). */
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;
