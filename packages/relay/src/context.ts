/**
 * What the relay's plugins share, attached to the fastify instance as
 * `app.relay`, and the request fields the auth hook fills in. Typed here by
 * module augmentation so every route sees the same shapes.
 */
import type { CryptoProvider } from '@parley/core';
import type { BlobStore } from './attachments/blob-store.ts';
import type { ReplayGuard } from './auth/replay-cache.ts';
import type { RelayConfig } from './config.ts';
import type { DeliveryHub } from './delivery/hub.ts';
import type { FrankKeys } from './franking/keys.ts';
import type { RelayMetrics } from './metrics.ts';
import type { DeviceRecord, RelayStorage } from './storage/types.ts';

export interface RelayContext {
  readonly config: RelayConfig;
  readonly storage: RelayStorage;
  readonly blobs: BlobStore;
  readonly metrics: RelayMetrics;
  readonly hub: DeliveryHub;
  readonly replay: ReplayGuard;
  /** Crypto for verification only (signatures, hashes, random ids). */
  readonly provider: CryptoProvider;
  /** The relay's frank keys (spec/14-franking.md §4). */
  readonly frankKeys: FrankKeys;
  /** The clock (milliseconds since the epoch); injectable for tests. */
  readonly now: () => number;
  /** Set once shutdown starts: readiness fails and new websockets are refused. */
  closing: boolean;
}

/** Who signed the request. */
export interface Identity {
  readonly accountKey: Uint8Array;
  /** The account key in base64url (the form used in paths). */
  readonly account: string;
  /** 1..2^31-1 for a device; 0 when the account key itself signed. */
  readonly deviceId: number;
  /** The registered device (null for the account key; for a registration, the device being registered). */
  readonly device: DeviceRecord | null;
}

/**
 * How a route authenticates (spec/09-relay.md §3):
 *  - 'none': public (health, metrics, OpenAPI);
 *  - 'device': a registered device's signature;
 *  - 'device-or-account': a device's, or the account key's (device id 0);
 *  - 'registration': the device key in the certificate of the request body
 *    (proof of possession), the certificate signed by the account key.
 */
export type AuthMode = 'none' | 'device' | 'device-or-account' | 'registration';

declare module 'fastify' {
  interface FastifyInstance {
    relay: RelayContext;
  }
  interface FastifyRequest {
    identity: Identity | null;
    /** The exact body bytes of a JSON request, for the signature's body hash. */
    rawBody: Buffer | undefined;
  }
  interface FastifyContextConfig {
    auth?: AuthMode;
    /** The body is streamed and not covered by the signature (attachment chunks). */
    unsignedBody?: boolean;
  }
}
