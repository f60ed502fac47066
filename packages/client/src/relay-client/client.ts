/**
 * A typed client for every relay route: signs each request, decodes and
 * verifies what comes back (certificates, bundles), retries what is safe to
 * retry. spec/09-relay.md §3-§4.
 *
 * Runs wherever `fetch` exists (Node 20, browsers, React Native); the
 * websocket side is in mailbox.ts.
 */
import {
  type AnyPreKeyBundle,
  type CryptoProvider,
  type DeviceCertificate,
  type KemPreKeyPublic,
  type OneTimePreKeyPublic,
  type PreKeyStore,
  type SignedPreKeyPublic,
  type SignedPreKeyV2Public,
  decodeAnyBundle,
  decodeBundle,
  decodeCertificate,
  defaultProvider,
  encodeCertificate,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodeSignedPreKey,
  encodeSignedPreKeyV2,
  utf8,
  verifyBundle,
  verifyCertificate,
} from '@parley/core';
import { backoffDelay, sleep } from './backoff.ts';
import { decodeDelivered } from './decode.ts';
import { fromBase64Url, toBase64Url } from './encoding.ts';
import { RelayError } from './errors.ts';
import { type MailboxHandlers, MailboxReceiver, type MailboxOptions } from './mailbox.ts';
import { WebSocketSendChannel } from './websocket-sends.ts';
import { type RelaySigner, authorizationHeader, contentDigest } from './signing.ts';
import type {
  DeviceMismatch,
  FetchedBundle,
  ListedDevice,
  OutgoingEnvelope,
  ReceivedEnvelope,
  WireBundleResponse,
  WireDeviceListResponse,
  WireErrorResponse,
  WireFanoutBody,
  WireFetchResponse,
  WirePreKeyCounts,
  WirePreKeyUploadResponse,
  WirePutDeviceListResponse,
  WireRegisterDeviceResponse,
  WireSendBody,
  WireSendResponse,
  WireSignedDeviceListResponse,
  WireUploadStatus,
  WebSocketConstructor,
} from './types.ts';

/**
 * Registration attempts while the relay still deletes the device id's previous mailbox (409
 * DEVICE_PURGING, spec/09-relay.md §4.1.2). The largest mailbox (50,000 rows) takes the relay
 * about a second to delete and it asks for 5 s, so a second attempt nearly always succeeds; the
 * third covers a relay under load, and then the error goes to the caller, retryAfterSeconds with it.
 */
const PURGING_ATTEMPTS = 3;
/** Longest wait between those attempts, whatever Retry-After asks (the relay asks PURGE_RETRY_AFTER_SECONDS = 5). */
const PURGING_WAIT_MAX_SECONDS = 10;

export interface RelayClientOptions {
  /** e.g. https://relay.example or http://127.0.0.1:8787 */
  readonly baseUrl: string;
  readonly signer: RelaySigner;
  /** Hashing and nonces; default: core's platform provider. */
  readonly provider?: CryptoProvider;
  readonly fetch?: typeof fetch;
  /** Browsers: omit (global WebSocket). Node 20: pass `WebSocket` from the `ws` package. */
  readonly WebSocket?: WebSocketConstructor;
  /** Attempts after the first for requests that are safe to repeat (default 2). */
  readonly retries?: number;
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
  /** Clock in ms (tests). */
  readonly now?: () => number;
  /**
   * Upload a group message (the same bytes under one id for several
   * devices) once, through the relay's fan-out route (default true; false
   * sends one envelope per device, as before the route existed).
   */
  readonly groupFanout?: boolean;
  /**
   * Send over the device's authenticated websocket while `connect`'s receiver
   * has it open and the relay offers it (default true): one unsigned binary
   * frame per send instead of a signed POST (spec/09-relay.md §5.4). Same
   * answers and errors; HTTP when not connected or when the socket cannot answer.
   */
  readonly websocketSends?: boolean;
}

export interface PreKeyUploadInput {
  readonly signedPreKey?: SignedPreKeyPublic;
  /** The same key's v2 form (a v2 device's second signature); only with `signedPreKey` (spec/09-relay.md §4.2.1). */
  readonly signedPreKeyV2?: SignedPreKeyV2Public;
  readonly lastResortKemPreKey?: KemPreKeyPublic;
  readonly oneTimePreKeys?: readonly OneTimePreKeyPublic[];
  readonly kemPreKeys?: readonly KemPreKeyPublic[];
}

/** Everything a PreKeyStore currently publishes: what a device uploads at registration. */
export function preKeysOf(store: PreKeyStore): Required<PreKeyUploadInput> {
  return {
    signedPreKey: store.currentSignedPreKey(),
    signedPreKeyV2: store.currentSignedPreKeyV2(),
    lastResortKemPreKey: store.lastResortKemPreKey(),
    oneTimePreKeys: store.oneTimePreKeys(),
    kemPreKeys: store.kemPreKeys(),
  };
}

export interface UploadProgress {
  readonly offset: number;
  readonly size: number;
}

export interface DownloadResult {
  /** 200 for the whole blob, 206 for a range. */
  readonly status: 200 | 206;
  readonly bytes: Uint8Array;
  /** Total size of the attachment. */
  readonly size: number;
  readonly start: number;
}

interface RequestOptions {
  readonly json?: unknown;
  readonly octets?: Uint8Array;
  readonly headers?: Record<string, string>;
  /** Safe to send again after a network error or a 502/503/504. */
  readonly idempotent: boolean;
  /** Sent without any Authorization header: the sealed send must not name its sender (spec/12 §5). */
  readonly unsigned?: boolean;
}

/** One sealed envelope for POST /v2/sealed (spec/12-sealed-sender.md §5). */
export interface SealedOutgoingEnvelope {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly id: string;
  /** The delivery token the recipient granted; the relay keeps only its hash. */
  readonly token: Uint8Array;
  readonly envelope: Uint8Array;
  readonly certificateHash?: Uint8Array;
  /** The inner v2 message's franking tag (also bound into the seal's aad, formats-v2 §7.1). */
  readonly frankingTag?: Uint8Array;
}

const NO_BODY_HASH = new Uint8Array(32);

export class RelayClient {
  readonly #base: URL;
  readonly #signer: RelaySigner;
  readonly #provider: CryptoProvider;
  readonly #fetch: typeof fetch;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #retries: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  /** Set once a 404 on /v2/keys was followed by a 200 on /v1/keys: this relay predates the v2 route. */
  #noV2Route = false;
  /** Server clock minus ours, learned from AUTH_STALE_TIMESTAMP answers. */
  #clockOffset = 0;
  /** Whether group messages go through the fan-out route (until the relay answers 404 for it). */
  #fanout: boolean;
  readonly #websocketSends: boolean;
  /** The send path on the latest `connect`'s socket (websocket-sends.ts), while one exists. */
  #channel: WebSocketSendChannel | undefined;

  constructor(options: RelayClientOptions) {
    this.#base = new URL(options.baseUrl);
    this.#signer = options.signer;
    this.#provider = options.provider ?? defaultProvider();
    this.#fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#WebSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    this.#retries = options.retries ?? 2;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    this.#fanout = options.groupFanout ?? true;
    this.#websocketSends = options.websocketSends ?? true;
  }

  get signer(): RelaySigner {
    return this.#signer;
  }

  /** The same client signing as someone else (e.g. the account key for device removal). */
  withSigner(signer: RelaySigner): RelayClient {
    const options: RelayClientOptions = {
      baseUrl: this.#base.href,
      signer,
      provider: this.#provider,
      fetch: this.#fetch,
      retries: this.#retries,
      timeoutMs: this.#timeoutMs,
      now: this.#now,
      ...(this.#WebSocket ? { WebSocket: this.#WebSocket } : {}),
    };
    return new RelayClient(options);
  }

  // ---- devices -----------------------------------------------------------

  /** Registers the signing device: `certificate` must be its own, with its first prekeys. */
  async registerDevice(
    certificate: DeviceCertificate,
    keys: Required<Pick<PreKeyUploadInput, 'signedPreKey' | 'lastResortKemPreKey'>> & PreKeyUploadInput,
  ): Promise<WireRegisterDeviceResponse> {
    const json = { certificate: toBase64Url(encodeCertificate(certificate)), ...encodeUpload(keys) };
    // The certificate also travels in a header so the relay can check the signature before reading the body (spec/09-relay.md §3.5).
    const headers = { 'parley-certificate': json.certificate };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#json<WireRegisterDeviceResponse>('PUT', '/v1/devices', { json, headers, idempotent: true });
      } catch (error) {
        // The device id's previous mailbox is still being deleted (spec/09-relay.md §4.1.2): wait as asked, then again.
        if (!(error instanceof RelayError) || error.code !== 'DEVICE_PURGING' || attempt >= PURGING_ATTEMPTS) throw error;
        const asked = error.details['retryAfterSeconds'];
        const seconds = typeof asked === 'number' && asked >= 0 ? Math.min(asked, PURGING_WAIT_MAX_SECONDS) : PURGING_WAIT_MAX_SECONDS;
        await sleep(seconds * 1000);
      }
    }
  }

  /** An account's devices; every certificate is checked against `accountKey` (throws BAD_CERTIFICATE from core). */
  async listDevices(accountKey: Uint8Array): Promise<ListedDevice[]> {
    const r = await this.#json<WireDeviceListResponse>('GET', `/v1/accounts/${toBase64Url(accountKey)}/devices`, { idempotent: true });
    return r.devices.map((d) => {
      const certificate = verifyCertificate(this.#provider.backend, decodeCertificate(fromBase64Url(d.certificate)), accountKey);
      if (certificate.deviceId !== d.deviceId) throw new RelayError(200, 'BAD_RESPONSE', 'device list: certificate names another device');
      return { deviceId: d.deviceId, certificate, certificateHash: fromBase64Url(d.certificateHash), registeredAt: d.registeredAt };
    });
  }

  /**
   * Removes a device: the signer's own, or any of the account's when signing
   * with the account key. The removal names the certificate it removes
   * (`certificateHash`, SHA-256 of its encoding), so a replay after the
   * device id was re-linked removes nothing.
   */
  async removeDevice(accountKey: Uint8Array, deviceId: number, certificateHash: Uint8Array): Promise<void> {
    const query = `certificateHash=${toBase64Url(certificateHash)}`;
    await this.#request('DELETE', `/v1/accounts/${toBase64Url(accountKey)}/devices/${deviceId}?${query}`, { idempotent: true });
  }

  /** Stores the account's signed device list on the relay (sign with the account key). Returns the relay's verdict. */
  async publishDeviceList(accountKey: Uint8Array, signedList: Uint8Array): Promise<WirePutDeviceListResponse> {
    return this.#json<WirePutDeviceListResponse>('PUT', `/v1/accounts/${toBase64Url(accountKey)}/device-list`, {
      json: { deviceList: toBase64Url(signedList) },
      idempotent: true,
    });
  }

  /**
   * The signed device list the relay holds for an account, unverified (the
   * caller checks it with core's `decodeSignedDeviceList`), or null when the
   * account published none.
   */
  async fetchDeviceList(accountKey: Uint8Array): Promise<Uint8Array | null> {
    try {
      const r = await this.#json<WireSignedDeviceListResponse>('GET', `/v1/accounts/${toBase64Url(accountKey)}/device-list`, {
        idempotent: true,
      });
      return fromBase64Url(r.deviceList);
    } catch (e) {
      if (e instanceof RelayError && e.status === 404) return null;
      throw e;
    }
  }

  // ---- prekeys -------------------------------------------------------------

  async uploadPreKeys(upload: PreKeyUploadInput): Promise<WirePreKeyUploadResponse> {
    return this.#json<WirePreKeyUploadResponse>('PUT', '/v1/keys', { json: encodeUpload(upload), idempotent: true });
  }

  async preKeyCounts(): Promise<WirePreKeyCounts> {
    return this.#json<WirePreKeyCounts>('GET', '/v1/keys', { idempotent: true });
  }

  /**
   * Bundles for one device or all (`'*'`) of an account, each decoded and
   * verified against `accountKey`. A failed verification throws: the relay
   * (or someone between) served a key the account did not sign.
   */
  async fetchBundles(accountKey: Uint8Array, deviceId: number | '*'): Promise<FetchedBundle[]> {
    const r = await this.#json<WireBundleResponse>('GET', `/v1/keys/${toBase64Url(accountKey)}/${deviceId}`, { idempotent: true });
    return this.#checkBundles(r, accountKey, deviceId, decodeBundle);
  }

  /**
   * As `fetchBundles`, from the v2 route (spec/09-relay.md §4.2.1): a
   * PreKeyBundleV2 for devices that publish one, a v1 bundle for the others.
   * A relay without the route (404, then a v1 answer) is remembered and
   * asked on /v1 from then on (spec/design/formats-v2.md §10); the caller's
   * version pins catch a relay that hides the route to downgrade.
   */
  async fetchBundlesV2(accountKey: Uint8Array, deviceId: number | '*'): Promise<FetchedBundle<AnyPreKeyBundle>[]> {
    const path = `keys/${toBase64Url(accountKey)}/${deviceId}`;
    if (!this.#noV2Route) {
      try {
        const r = await this.#json<WireBundleResponse>('GET', `/v2/${path}`, { idempotent: true });
        return this.#checkBundles(r, accountKey, deviceId, decodeAnyBundle);
      } catch (e) {
        // 404 is both "no such route" (an older relay) and "no such device".
        if (!(e instanceof RelayError && e.status === 404)) throw e;
        // A relay that has the route names the device as unknown (it may be registering right now, as a
        // just-linked one): ask it again, never /v1, whose v1 bundle would start a v1 session with a v2
        // device, nor give the route up for good. A missing route's 404 names the route.
        if (!/\broute\b/i.test(e.message)) {
          const again = await this.#json<WireBundleResponse>('GET', `/v2/${path}`, { idempotent: true });
          return this.#checkBundles(again, accountKey, deviceId, decodeAnyBundle);
        }
      }
    }
    const r = await this.#json<WireBundleResponse>('GET', `/v1/${path}`, { idempotent: true });
    this.#noV2Route = true;
    return this.#checkBundles(r, accountKey, deviceId, decodeBundle);
  }

  #checkBundles<B extends AnyPreKeyBundle>(
    r: WireBundleResponse,
    accountKey: Uint8Array,
    deviceId: number | '*',
    decode: (bytes: Uint8Array) => B,
  ): FetchedBundle<B>[] {
    return r.bundles.map((b) => {
      const bundle = decode(fromBase64Url(b.bundle));
      verifyBundle(bundle, { expectedAccountKey: accountKey, provider: this.#provider });
      if (bundle.certificate.deviceId !== b.deviceId || (deviceId !== '*' && b.deviceId !== deviceId)) {
        throw new RelayError(200, 'BAD_BUNDLE', 'bundle names another device than requested');
      }
      return { deviceId: b.deviceId, bundle, certificateHash: fromBase64Url(b.certificateHash) };
    });
  }

  // ---- messages ------------------------------------------------------------

  /**
   * Sends one envelope per device. Safe to retry with the same ids (the
   * relay stores each id once). Throws RelayError MISMATCHED_DEVICES (see
   * `mismatchesOf`), STALE_DEVICES, MAILBOX_FULL, RATE_LIMITED, ...
   * Over the websocket while connected (`websocketSends`), else over HTTP.
   */
  async send(envelopes: readonly OutgoingEnvelope[], options: { ttlSeconds?: number } = {}): Promise<WireSendResponse> {
    // The same bytes under the same id for several devices is a group message: upload it once.
    const shared = sharedEnvelope(envelopes);
    if (shared && this.#fanout) {
      try {
        return await this.sendFanout(shared.id, shared.envelope, envelopes, {
          ...options,
          ...(shared.frankingTag ? { frankingTag: shared.frankingTag } : {}),
        });
      } catch (e) {
        // A relay from before the fan-out route: send one envelope per device from now on.
        if (!(e instanceof RelayError && e.code === 'NOT_FOUND')) throw e;
        this.#fanout = false;
      }
    }
    // On the authenticated websocket when it is open and the relay offers it (spec §5.4); else, or
    // when the socket cannot answer, over HTTP with the same ids (stored once either way).
    const overSocket = await this.#channel?.send(envelopes, options);
    if (overSocket) return overSocket;
    const json: WireSendBody = {
      messages: envelopes.map((e) => ({
        account: toBase64Url(e.accountKey),
        deviceId: e.deviceId,
        id: e.id,
        envelope: toBase64Url(e.envelope),
        ...(e.certificateHash ? { certificateHash: toBase64Url(e.certificateHash) } : {}),
        ...(e.frankingTag ? { frankingTag: toBase64Url(e.frankingTag) } : {}),
      })),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    };
    return this.#json<WireSendResponse>('POST', '/v1/messages', { json, idempotent: true });
  }

  /**
   * Sends one envelope to many devices (a sender-key group message): the
   * relay stores it once and each device receives it as if sent by `send`.
   * Same answers and retry rules as `send`. spec/09-relay.md §4.3.1.
   */
  async sendFanout(
    id: string,
    envelope: Uint8Array,
    recipients: readonly Pick<OutgoingEnvelope, 'accountKey' | 'deviceId' | 'certificateHash'>[],
    options: { ttlSeconds?: number; frankingTag?: Uint8Array } = {},
  ): Promise<WireSendResponse> {
    const json: WireFanoutBody = {
      id,
      envelope: toBase64Url(envelope),
      // One group message, one tag (in its signed header): the relay franks it per recipient.
      ...(options.frankingTag ? { frankingTag: toBase64Url(options.frankingTag) } : {}),
      recipients: recipients.map((r) => ({
        account: toBase64Url(r.accountKey),
        deviceId: r.deviceId,
        ...(r.certificateHash ? { certificateHash: toBase64Url(r.certificateHash) } : {}),
      })),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    };
    return this.#json<WireSendResponse>('POST', '/v1/messages/fanout', { json, idempotent: true });
  }

  // ---- reports (spec/17-franking-and-reports.md §5) ---------------------------

  /** Files an encoded AbuseReport, signed by this device: 202 queued, or the relay's report refusal. */
  async fileReport(report: Uint8Array): Promise<{ queued: boolean }> {
    // Not idempotent: a report that reached the relay is queued once, and a retry would be REPORT_DUPLICATE.
    return this.#json<{ queued: boolean }>('POST', '/v2/reports', { json: { report: toBase64Url(report) }, idempotent: false });
  }

  // ---- sealed sender (spec/12-sealed-sender.md §5) ---------------------------

  /** Registers delivery token hashes for the signing device's account. */
  async registerTokens(tokens: readonly { hash: Uint8Array; expiresAt: number; scope: 'contact' | 'group' }[]): Promise<{ live: number }> {
    const json = { tokens: tokens.map((t) => ({ hash: toBase64Url(t.hash), expiresAt: t.expiresAt, scope: t.scope })) };
    return this.#json<{ live: number }>('PUT', '/v2/tokens', { json, idempotent: true });
  }

  /** Revokes delivery token hashes of the signing device's account. */
  async revokeTokens(hashes: readonly Uint8Array[]): Promise<{ revoked: number }> {
    return this.#json<{ revoked: number }>('DELETE', '/v2/tokens', { json: { hashes: hashes.map(toBase64Url) }, idempotent: true });
  }

  /** Flags one of the account's tokens as abused. */
  async flagToken(hash: Uint8Array, reason: 'spam' | 'abuse' | 'other'): Promise<{ status: 'flagged' | 'revoked' }> {
    return this.#json('POST', '/v2/tokens/flag', { json: { hash: toBase64Url(hash), reason }, idempotent: false });
  }

  /**
   * Sends sealed envelopes without authentication: no Authorization header,
   * nothing that names this device. Same refusals as `send`, plus
   * TOKEN_INVALID (403) and TOKEN_BUDGET_EXCEEDED (429). With `payload`, a
   * sealed group send (spec/12 §10): each envelope is its device's seal of
   * the key wrap, the payload goes once, and the request is all or nothing.
   */
  async sendSealed(
    envelopes: readonly SealedOutgoingEnvelope[],
    options: { ttlSeconds?: number; payload?: Uint8Array } = {},
  ): Promise<WireSendResponse> {
    const json = {
      messages: envelopes.map((e) => ({
        account: toBase64Url(e.accountKey),
        deviceId: e.deviceId,
        id: e.id,
        token: toBase64Url(e.token),
        envelope: toBase64Url(e.envelope),
        ...(e.certificateHash ? { certificateHash: toBase64Url(e.certificateHash) } : {}),
        ...(e.frankingTag ? { frankingTag: toBase64Url(e.frankingTag) } : {}),
      })),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
      ...(options.payload === undefined ? {} : { payload: toBase64Url(options.payload) }),
    };
    return this.#json<WireSendResponse>('POST', '/v2/sealed', { json, idempotent: true, unsigned: true });
  }

  /** Stored messages of the signing device, oldest first (the HTTP path; see `connect` for push). */
  async fetchMessages(options: { limit?: number; after?: number } = {}): Promise<{ messages: ReceivedEnvelope[]; more: boolean }> {
    const q = new URLSearchParams();
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    if (options.after !== undefined) q.set('after', String(options.after));
    const query = q.size ? `?${q}` : '';
    const r = await this.#json<WireFetchResponse>('GET', `/v1/messages${query}`, { idempotent: true });
    return { messages: r.messages.map(decodeDelivered), more: r.more };
  }

  /** Deletes acknowledged messages (the signer's own; other seqs are ignored by the relay). */
  async ack(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.#request('POST', '/v1/messages/ack', { json: { seqs }, idempotent: true });
  }

  /** A websocket receiver for the signing device (push, ack, drained, reconnect with backoff). */
  connect(handlers: MailboxHandlers, options: MailboxOptions = {}): MailboxReceiver {
    if (!this.#WebSocket) {
      throw new TypeError('no WebSocket available: pass `WebSocket` (from the ws package on Node 20) in RelayClientOptions');
    }
    const url = new URL('/v1/websocket', this.#base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const sends = this.#websocketSends ? new WebSocketSendChannel({ timeoutMs: this.#timeoutMs }) : undefined;
    this.#channel = sends;
    return new MailboxReceiver(
      { url: url.href, host: url.host, signer: this.#signer, WebSocket: this.#WebSocket, ...(sends ? { sends } : {}) },
      handlers,
      options,
    );
  }

  // ---- attachments -----------------------------------------------------------

  async createAttachment(size: number): Promise<WireUploadStatus> {
    return this.#json<WireUploadStatus>('POST', '/v1/attachments', { json: { size }, idempotent: false });
  }

  async attachmentStatus(id: string): Promise<WireUploadStatus> {
    return this.#json<WireUploadStatus>('GET', `/v1/attachments/${id}/upload`, { idempotent: true });
  }

  /** Uploads `bytes` at `offset` (one request, no retry). */
  async uploadChunk(id: string, offset: number, bytes: Uint8Array): Promise<WireUploadStatus> {
    return this.#json<WireUploadStatus>('PATCH', `/v1/attachments/${id}?offset=${offset}`, { octets: bytes, idempotent: false });
  }

  /**
   * Uploads a whole (already encrypted) blob in chunks, resuming from the
   * relay's offset after any failure, up to `retries` failures in a row.
   */
  async uploadAttachment(
    id: string,
    data: Uint8Array,
    options: { chunkBytes?: number; retries?: number; onProgress?: (p: UploadProgress) => void } = {},
  ): Promise<WireUploadStatus> {
    const chunkBytes = options.chunkBytes ?? 4 * 1024 * 1024;
    const retries = options.retries ?? 5;
    let status = await this.attachmentStatus(id);
    let failures = 0;
    while (!status.complete) {
      try {
        const end = Math.min(status.offset + chunkBytes, data.length);
        status = await this.uploadChunk(id, status.offset, data.subarray(status.offset, end));
        failures = 0;
        options.onProgress?.({ offset: status.offset, size: status.size });
      } catch (error) {
        if (++failures > retries) throw error;
        await sleep(backoffDelay(failures, 200, 5000));
        status = await this.attachmentStatus(id);
      }
    }
    return status;
  }

  /** Downloads a finished attachment, or `range` of it (inclusive end; omit for "to the end"). */
  async downloadAttachment(id: string, range?: { start: number; end?: number }): Promise<DownloadResult> {
    const headers: Record<string, string> = {};
    if (range) headers['range'] = `bytes=${range.start}-${range.end ?? ''}`;
    const response = await this.#request('GET', `/v1/attachments/${id}`, { headers, idempotent: true });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
      if (!m) throw new RelayError(206, 'BAD_RESPONSE', 'partial content without a valid Content-Range');
      return { status: 206, bytes, start: Number(m[1]), size: Number(m[3]) };
    }
    return { status: 200, bytes, start: 0, size: bytes.length };
  }

  async deleteAttachment(id: string): Promise<void> {
    await this.#request('DELETE', `/v1/attachments/${id}`, { idempotent: true });
  }

  // ---- transport ---------------------------------------------------------------

  async #json<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const response = await this.#request(method, path, options);
    try {
      return (await response.json()) as T;
    } catch {
      throw new RelayError(response.status, 'BAD_RESPONSE', 'the relay answered with something other than JSON');
    }
  }

  async #request(method: string, path: string, options: RequestOptions): Promise<Response> {
    let adjustedClock = false;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.#send(method, path, options);
      } catch (error) {
        if (options.idempotent && attempt < this.#retries) {
          await sleep(backoffDelay(attempt + 1, 100, 2000));
          continue;
        }
        throw new RelayError(0, 'NETWORK', error instanceof Error ? error.message : 'request failed');
      }
      if (response.ok) return response;
      const error = await errorOf(response);
      const serverTime = error.details['serverTime'];
      if (error.code === 'AUTH_STALE_TIMESTAMP' && !adjustedClock && typeof serverTime === 'number') {
        // Our clock is off: learn the relay's and sign again (once).
        this.#clockOffset = serverTime - this.#now();
        adjustedClock = true;
        attempt--;
        continue;
      }
      if (options.idempotent && attempt < this.#retries && [502, 503, 504].includes(response.status)) {
        await sleep(backoffDelay(attempt + 1, 100, 2000));
        continue;
      }
      throw error;
    }
  }

  #send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(path, this.#base);
    const body = options.json !== undefined ? utf8(JSON.stringify(options.json)) : options.octets;
    const bodySha256 = options.octets ? NO_BODY_HASH : this.#provider.backend.sha256(body ?? new Uint8Array(0));
    if (options.unsigned) {
      // No Authorization, no Content-Digest tied to a signer: only the body. `credentials: 'omit'` keeps cookies off too.
      return this.#fetch(url, {
        method,
        headers: { 'content-type': 'application/json', ...options.headers },
        ...(body ? { body: body as BodyInit } : {}),
        credentials: 'omit',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    }
    const authorization = authorizationHeader(
      {
        method,
        host: url.host,
        pathAndQuery: url.pathname + url.search,
        bodySha256,
        timestamp: this.#now() + this.#clockOffset,
        nonce: this.#provider.random(16),
      },
      this.#signer,
    );
    const headers: Record<string, string> = { authorization, ...options.headers };
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      // The signed digest, declared up front: the relay authenticates before it reads the body (spec/09-relay.md §3.3).
      headers['content-digest'] = contentDigest(bodySha256);
    }
    if (options.octets) headers['content-type'] = 'application/octet-stream';
    return this.#fetch(url, {
      method,
      headers,
      ...(body ? { body: body as BodyInit } : {}),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
  }
}

/**
 * The one envelope and id every element shares, when a send has several
 * elements and they all carry the same bytes under the same id; else null.
 */
function sharedEnvelope(envelopes: readonly OutgoingEnvelope[]): { id: string; envelope: Uint8Array; frankingTag?: Uint8Array } | null {
  const [first, ...rest] = envelopes;
  if (!first || rest.length === 0) return null;
  for (const e of rest) {
    if (e.id !== first.id || (e.envelope !== first.envelope && !equalBytes(e.envelope, first.envelope))) return null;
    // The fan-out carries one tag for all: envelopes with different tags (or some without) go one by one.
    if (!sameTag(e.frankingTag, first.frankingTag)) return null;
  }
  return { id: first.id, envelope: first.envelope, ...(first.frankingTag ? { frankingTag: first.frankingTag } : {}) };
}

function sameTag(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return a === undefined || b === undefined ? a === b : equalBytes(a, b);
}

/** Not a secret comparison (public ciphertexts): a plain loop is fine. */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function encodeUpload(u: PreKeyUploadInput) {
  return {
    ...(u.signedPreKey ? { signedPreKey: toBase64Url(encodeSignedPreKey(u.signedPreKey)) } : {}),
    ...(u.signedPreKey && u.signedPreKeyV2 ? { signedPreKeyV2: toBase64Url(encodeSignedPreKeyV2(u.signedPreKeyV2)) } : {}),
    ...(u.lastResortKemPreKey ? { lastResortKemPreKey: toBase64Url(encodeKemPreKey(u.lastResortKemPreKey)) } : {}),
    ...(u.oneTimePreKeys ? { oneTimePreKeys: u.oneTimePreKeys.map((k) => toBase64Url(encodeOneTimePreKey(k))) } : {}),
    ...(u.kemPreKeys ? { kemPreKeys: u.kemPreKeys.map((k) => toBase64Url(encodeKemPreKey(k))) } : {}),
  };
}

async function errorOf(response: Response): Promise<RelayError> {
  let body: Partial<WireErrorResponse> = {};
  try {
    body = (await response.json()) as WireErrorResponse;
  } catch {
    // Not our JSON (a proxy's page): keep the status.
  }
  return new RelayError(response.status, body.code ?? `HTTP_${response.status}`, body.message ?? response.statusText, body.details ?? {});
}

/** The per-account device mismatches of a MISMATCHED_DEVICES error, decoded. */
export function mismatchesOf(error: RelayError): DeviceMismatch[] {
  const list = error.details['mismatches'];
  if (!Array.isArray(list)) return [];
  return list.map((m: { account: string; missingDevices: number[]; extraDevices: number[] }) => ({
    accountKey: fromBase64Url(m.account),
    missingDevices: m.missingDevices,
    extraDevices: m.extraDevices,
  }));
}
