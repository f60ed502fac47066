/**
 * Replay defence: every verified signed request is remembered in storage by
 * (signer, nonce) until its timestamp can no longer pass the window check,
 * so a captured request cannot be sent again: not after a restart, and not
 * to another relay process on the same PostgreSQL database.
 * spec/09-relay.md §3.3.
 *
 * A signature is valid for at most 2 x window after its first sighting (its
 * timestamp is within one window of the clock at both sightings), so each
 * record lives that long.
 *
 * Records are partitioned by signer, each with its own quota
 * (`signedRequestsPerSigner`): a device that signs requests as fast as it
 * can fills only its own partition and is then refused (429) by itself,
 * while every other device, and every registration, is served. Only
 * verified signatures reach this check, so nobody can spend another
 * signer's quota. One address with many devices is bounded by the per-IP
 * request limit and the device limits; what each costs is in spec §11.
 */
import { relayError } from '../errors.ts';
import type { RelayMetrics } from '../metrics.ts';
import { type DeviceAddress, REPLAY_SLOT_MS, type RelayStorage, type SeenRequest, type SeenVerdict } from '../storage/types.ts';

export interface ReplayGuardOptions {
  readonly windowMs: number;
  readonly maxPerSigner: number;
}

export class ReplayGuard {
  readonly #storage: RelayStorage;
  readonly #metrics: RelayMetrics;
  readonly #lifetimeMs: number;
  readonly #maxPerSigner: number;

  constructor(storage: RelayStorage, metrics: RelayMetrics, options: ReplayGuardOptions) {
    this.#storage = storage;
    this.#metrics = metrics;
    this.#lifetimeMs = 2 * options.windowMs;
    this.#maxPerSigner = options.maxPerSigner;
  }

  /** The record that remembers a verified request (written by `admit`, or with a send: delivery/send.ts). */
  /** `signerCertificateHash`: the signer came from the storage's cache (SeenRequest). */
  record(signer: DeviceAddress, nonce: Uint8Array, now: number, signerCertificateHash?: Uint8Array): SeenRequest {
    return {
      signer: { accountKey: signer.accountKey, deviceId: signer.deviceId },
      nonce,
      now,
      expiresAt: now + this.#lifetimeMs,
      maxPerSigner: this.#maxPerSigner,
      ...(signerCertificateHash ? { signerCertificateHash } : {}),
    };
  }

  /**
   * Remembers a verified request, or throws: AUTH_REPLAYED for a nonce this
   * signer already used, RATE_LIMITED when the signer's quota is spent.
   */
  async admit(signer: DeviceAddress, nonce: Uint8Array, now: number, signerCertificateHash?: Uint8Array): Promise<void> {
    const verdict = await this.#storage.rememberRequest(this.record(signer, nonce, now, signerCertificateHash));
    if (verdict !== 'fresh') throw this.refusal(verdict);
  }

  /** The error for a refused record (counted here when it is the quota). */
  refusal(verdict: Exclude<SeenVerdict, 'fresh'>): Error {
    if (verdict === 'replayed') return relayError('AUTH_REPLAYED', 'this signed request was already received');
    this.#metrics.rateLimited.inc({ limit: 'signed_requests_per_signer' });
    return relayError('RATE_LIMITED', `at most ${this.#maxPerSigner} signed requests per signer in ${this.#lifetimeMs / 1000} s`, {
      // Records are counted per slot: the oldest slot frees within one slot width.
      retryAfterSeconds: Math.ceil(REPLAY_SLOT_MS / 1000),
      limit: this.#maxPerSigner,
    });
  }
}
