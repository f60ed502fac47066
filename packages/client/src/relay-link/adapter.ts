/**
 * The SDK's RelayLink on the typed relay client (../relay-client/).
 * spec/10-client.md §1.
 *
 * Translates shapes and errors: a relay that cannot be reached, or answers
 * 5xx / 429 / 503, becomes ClientError RELAY_UNAVAILABLE (the SDK retries
 * later); MISMATCHED_DEVICES and STALE_DEVICES become send outcomes; any
 * other refusal is RELAY_REFUSED with the relay's code in `details`.
 *
 * Device lists are judged by the SDK (devices/trust.ts), which needs every
 * entry the relay returned, bad ones included, to name the ghost it
 * refuses. The relay client's `listDevices` throws on the first bad
 * certificate instead, so on such a failure this adapter reads the raw list
 * itself (one signed GET) and hands every entry over.
 */
import {
  type Account,
  type CryptoProvider,
  type DeviceIdentity,
  ParleyError,
  defaultProvider,
  encodeBundle,
  encodeCertificate,
} from '@parley/core';
import { ClientError } from '../errors.ts';
import { ReportError, isRelayReportCode } from '../reports/errors.ts';
import type { DeviceAddress } from '../state/ids.ts';
import type {
  AccountRelayLink,
  IncomingEnvelope,
  Mailbox,
  MailboxHandlers,
  OutgoingEnvelope,
  PreKeyCounts,
  PreKeyUpload,
  Registration,
  RelayBundle,
  RelayDevice,
  RelayLink,
  ReportsRelayLink,
  SealedRelayLink,
  SendOutcome,
} from './link.ts';
import {
  RelayClient,
  RelayError,
  type WebSocketConstructor,
  type WireDeviceListResponse,
  accountSigner,
  authorizationHeader,
  deviceSigner,
  fromBase64Url,
  mismatchesOf,
  toBase64Url,
} from '../relay-client/index.ts';

export interface RelayConnectOptions {
  /** Node 20 has no global WebSocket: pass the `ws` package's (the `@parley/client/node` helpers do). */
  readonly WebSocket?: WebSocketConstructor;
  readonly fetch?: typeof fetch;
  readonly provider?: CryptoProvider;
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
  /**
   * Sends go over the open mailbox websocket when the relay offers it (default true), over HTTP
   * otherwise (spec/09-relay.md §5.4); false keeps every send on HTTP.
   */
  readonly websocketSends?: boolean;
}

/** Bytes per attachment upload request: well under the relay's 16 MiB chunk limit, small enough to retry cheaply. */
const UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024;
/** Bytes per download range request. */
const DOWNLOAD_RANGE_BYTES = 4 * 1024 * 1024;
/** Consecutive failures of one upload chunk before giving up. */
const UPLOAD_RETRIES = 5;
/** The relay's final close codes (spec/09-relay.md §5.3), by the mailbox error they become, as the app hears them. */
const ENDED = new Map<string, 'replaced' | 'removed' | 'auth-failed'>([
  ['WS_REPLACED', 'replaced'],
  ['WS_DEVICE_REMOVED', 'removed'],
  ['WS_AUTH_FAILED', 'auth-failed'],
]);
const ENDED_CODES = new Set([4001, 4002, 4004]);

/** A RelayConnector (for ParleyClient) that talks to the relay at `baseUrl`. */
export function connectRelay(baseUrl: string, options: RelayConnectOptions = {}) {
  return (self: { readonly device: DeviceIdentity; readonly account: Account | null }): RelayLink & AccountRelayLink =>
    new RelayAdapter(baseUrl, self.device, self.account, options);
}

/** Maps a relay-client failure onto the SDK's error codes (never carrying bodies or keys). */
export function asClientError(e: unknown): unknown {
  if (e instanceof ClientError) return e;
  if (e instanceof RelayError) {
    if (e.status === 0 || e.status >= 500 || e.status === 429) {
      return new ClientError('RELAY_UNAVAILABLE', `relay unavailable (${e.code})`, { relayCode: e.code, status: e.status });
    }
    // A size limit the relay names travels on, so an app can say "at most N bytes" (the relay's message is not shown as is).
    const limit = e.details['limit'];
    if (typeof limit === 'number' && Number.isSafeInteger(limit))
      return new ClientError('RELAY_REFUSED', `relay refused the request (${e.code}, limit ${limit} bytes)`, {
        relayCode: e.code,
        status: e.status,
        limit,
      });
    return new ClientError('RELAY_REFUSED', `relay refused the request (${e.code})`, { relayCode: e.code, status: e.status });
  }
  if (e instanceof ParleyError)
    return new ClientError('RELAY_MISBEHAVED', `the relay answered with bad data (${e.code})`, { code: e.code });
  return e;
}

/** MISMATCHED_DEVICES and STALE_DEVICES as send outcomes; anything else is thrown on. */
function sendRefusal(e: unknown): SendOutcome {
  if (e instanceof RelayError && e.code === 'MISMATCHED_DEVICES') return { status: 'mismatched-devices', mismatches: mismatchesOf(e) };
  if (e instanceof RelayError && e.code === 'STALE_DEVICES') {
    const list = Array.isArray(e.details['stale']) ? (e.details['stale'] as { account: string; staleDevices: number[] }[]) : [];
    return { status: 'stale-devices', stale: list.map((s) => ({ accountKey: fromBase64Url(s.account), staleDevices: s.staleDevices })) };
  }
  throw e;
}

/**
 * The sealed-sender routes (spec/12) on one relay client: token hashes signed
 * as the device, sealed sends unsigned. A plain object, not a getter: the link
 * may sit behind a Proxy (store/durable-relay.ts), and a getter run with the
 * proxy as `this` could not reach the adapter's private fields.
 */
function sealedLink(client: RelayClient): SealedRelayLink {
  return {
    registerTokens: (tokens) => guard(async () => void (await client.registerTokens(tokens))),
    revokeTokens: (hashes) => guard(async () => void (await client.revokeTokens(hashes))),
    sendSealed: (envelopes, options) =>
      guard(async () => {
        try {
          await client.sendSealed(
            envelopes.map((e) => ({
              accountKey: e.recipient.accountKey,
              deviceId: e.recipient.deviceId,
              id: e.clientId,
              token: e.token,
              envelope: e.envelope,
              ...(e.certificateHash ? { certificateHash: e.certificateHash } : {}),
              ...(e.frankingTag ? { frankingTag: e.frankingTag } : {}),
            })),
            {
              ...(options?.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {}),
              ...(options?.payload ? { payload: options.payload } : {}),
            },
          );
          return { status: 'stored' };
        } catch (e) {
          if (e instanceof RelayError && e.code === 'TOKEN_INVALID') return { status: 'token-invalid' };
          return sendRefusal(e);
        }
      }),
  };
}

/**
 * The report route on one relay client. The relay's report refusals keep
 * their code (an app says "already reported", "no longer provable", ...);
 * transport failures and other refusals are the usual ClientErrors.
 */
function reportsLink(client: RelayClient): ReportsRelayLink {
  return {
    fileReport: async (report) => {
      try {
        await client.fileReport(report);
      } catch (e) {
        if (e instanceof RelayError && isRelayReportCode(e.code)) {
          const details: Record<string, string | number> = {};
          for (const k of ['item', 'reason', 'limit'] as const) {
            const v = e.details[k];
            if (typeof v === 'string' || typeof v === 'number') details[k] = v;
          }
          throw new ReportError(e.code, `the relay refused the report (${e.code})`, details);
        }
        throw asClientError(e);
      }
    },
  };
}

async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw asClientError(e);
  }
}

class RelayAdapter implements RelayLink, AccountRelayLink {
  readonly self: DeviceAddress;
  readonly #base: string;
  readonly #client: RelayClient;
  readonly #accountClient: RelayClient | null;
  readonly #provider: CryptoProvider;
  readonly #fetch: typeof fetch;
  /** The sealed-sender routes (spec/12-sealed-sender.md). */
  readonly sealed: SealedRelayLink;
  /** The report route (spec/17 §5). */
  readonly reports: ReportsRelayLink;

  constructor(baseUrl: string, device: DeviceIdentity, account: Account | null, options: RelayConnectOptions) {
    this.self = { accountKey: device.accountKey, deviceId: device.deviceId };
    this.#base = baseUrl;
    this.#provider = options.provider ?? defaultProvider();
    this.#fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#client = new RelayClient({
      baseUrl,
      signer: deviceSigner(device),
      provider: this.#provider,
      fetch: this.#fetch,
      ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.websocketSends === false ? { websocketSends: false } : {}),
    });
    this.#accountClient = account ? this.#client.withSigner(accountSigner(account)) : null;
    this.sealed = sealedLink(this.#client);
    this.reports = reportsLink(this.#client);
  }

  registerDevice(r: Registration): Promise<PreKeyCounts> {
    return guard(async () => {
      const answer = await this.#client.registerDevice(r.certificate, {
        signedPreKey: r.signedPreKey,
        ...(r.signedPreKeyV2 ? { signedPreKeyV2: r.signedPreKeyV2 } : {}),
        lastResortKemPreKey: r.lastResortKemPreKey,
        ...(r.oneTimePreKeys ? { oneTimePreKeys: r.oneTimePreKeys } : {}),
        ...(r.kemPreKeys ? { kemPreKeys: r.kemPreKeys } : {}),
      });
      return answer.preKeys;
    });
  }

  uploadPreKeys(u: PreKeyUpload): Promise<PreKeyCounts> {
    return guard(() => this.#client.uploadPreKeys(u));
  }

  preKeyCounts(): Promise<PreKeyCounts> {
    return guard(() => this.#client.preKeyCounts());
  }

  listDevices(accountKey: Uint8Array): Promise<RelayDevice[]> {
    return guard(async () => {
      try {
        const listed = await this.#client.listDevices(accountKey);
        return listed.map((d) => ({ deviceId: d.deviceId, certificate: encodeCertificate(d.certificate) }));
      } catch (e) {
        // A certificate the relay client refused: read the raw list so the SDK can name the ghost.
        if (e instanceof ParleyError || (e instanceof RelayError && e.code === 'BAD_RESPONSE')) return this.#rawDeviceList(accountKey);
        throw e;
      }
    });
  }

  fetchDeviceList(accountKey: Uint8Array): Promise<Uint8Array | null> {
    return guard(() => this.#client.fetchDeviceList(accountKey));
  }

  async #rawDeviceList(accountKey: Uint8Array): Promise<RelayDevice[]> {
    const url = new URL(`/v1/accounts/${toBase64Url(accountKey)}/devices`, this.#base);
    const authorization = authorizationHeader(
      {
        method: 'GET',
        host: url.host,
        pathAndQuery: url.pathname + url.search,
        bodySha256: this.#provider.backend.sha256(new Uint8Array(0)),
        timestamp: Date.now(),
        nonce: this.#provider.random(16),
      },
      this.#client.signer,
    );
    let response: Response;
    try {
      response = await this.#fetch(url, { headers: { authorization }, signal: AbortSignal.timeout(30_000) });
    } catch {
      throw new RelayError(0, 'NETWORK', 'request failed');
    }
    if (!response.ok) throw new RelayError(response.status, `HTTP_${response.status}`, 'device list request failed');
    const body = (await response.json()) as WireDeviceListResponse;
    const out: RelayDevice[] = [];
    for (const d of Array.isArray(body.devices) ? body.devices : []) {
      if (!Number.isInteger(d?.deviceId) || typeof d.certificate !== 'string') continue;
      let certificate: Uint8Array;
      try {
        certificate = fromBase64Url(d.certificate);
      } catch {
        certificate = new Uint8Array(0);
      }
      out.push({ deviceId: d.deviceId, certificate });
    }
    return out;
  }

  fetchBundles(accountKey: Uint8Array, deviceId: number | 'all'): Promise<RelayBundle[]> {
    return guard(async () => {
      try {
        const bundles = await this.#client.fetchBundlesV2(accountKey, deviceId === 'all' ? '*' : deviceId);
        return bundles.map((b) => ({ deviceId: b.deviceId, bundle: encodeBundle(b.bundle) }));
      } catch (e) {
        // A bundle that does not verify is reported as missing: the SDK fetches the device list again.
        if (e instanceof ParleyError || (e instanceof RelayError && (e.code === 'BAD_BUNDLE' || e.code === 'NOT_FOUND'))) return [];
        throw e;
      }
    });
  }

  send(envelopes: readonly OutgoingEnvelope[], options?: { ttlSeconds?: number }): Promise<SendOutcome> {
    return guard(async () => {
      try {
        await this.#client.send(
          envelopes.map((e) => ({
            accountKey: e.recipient.accountKey,
            deviceId: e.recipient.deviceId,
            id: e.clientId,
            envelope: e.envelope,
            ...(e.certificateHash ? { certificateHash: e.certificateHash } : {}),
            ...(e.frankingTag ? { frankingTag: e.frankingTag } : {}),
          })),
          options?.ttlSeconds ? { ttlSeconds: options.ttlSeconds } : {},
        );
        return { status: 'stored' };
      } catch (e) {
        return sendRefusal(e);
      }
    });
  }

  openMailbox(handlers: MailboxHandlers): Mailbox {
    const receiver = this.#client.connect({
      onEnvelope: (e) =>
        handlers.onEnvelope({
          seq: e.seq,
          sender: e.sender,
          clientId: e.id,
          serverTimestamp: e.serverTimestamp,
          expiresAt: e.expiresAt,
          envelope: e.envelope,
          delivery: e.delivery,
          ...(e.deliveryError ? { deliveryError: e.deliveryError } : {}),
        } satisfies IncomingEnvelope),
      // Terminal refusals (device removed, replaced, auth failed) arrive here: the link stops, and says why.
      onError: (e) => {
        if (!(e instanceof RelayError)) return;
        const why = ENDED.get(e.code);
        if (why) handlers.onEnded?.(why);
        else if (e.code.startsWith('WS_')) handlers.onClose?.(e.code);
      },
      onDrained: () => handlers.onDrained?.(),
      onStateChange: (state, detail) => {
        if (state === 'open') handlers.onOpen?.();
        else if (state === 'reconnecting' || (state === 'stopped' && !ENDED_CODES.has(detail.code ?? 0)))
          handlers.onClose?.(detail.reason ?? state);
      },
    });
    receiver.start();
    return {
      close: async () => receiver.stop(),
    };
  }

  removeDevice(deviceId: number, certificateHash: Uint8Array): Promise<void> {
    const client = this.#accountClient;
    if (!client) return Promise.reject(new ClientError('NOT_PRIMARY', 'only the primary device holds the account key'));
    return guard(() => client.removeDevice(this.self.accountKey, deviceId, certificateHash));
  }

  publishDeviceList(signedList: Uint8Array): Promise<void> {
    const client = this.#accountClient;
    if (!client) return Promise.reject(new ClientError('NOT_PRIMARY', 'only the primary device holds the account key'));
    return guard(async () => {
      try {
        await client.publishDeviceList(this.self.accountKey, signedList);
      } catch (e) {
        // The relay holds a newer list than ours: nothing to publish (we learn it when we fetch our own list).
        if (e instanceof RelayError && e.code === 'DEVICE_LIST_OUTDATED') return;
        throw e;
      }
    });
  }

  uploadAttachment(ciphertext: AsyncIterable<Uint8Array>, size: number): Promise<string> {
    return guard(async () => {
      const { id } = await this.#client.createAttachment(size);
      let offset = 0;
      for await (const chunk of rechunk(ciphertext, UPLOAD_CHUNK_BYTES)) {
        // Each chunk is held until the relay has it durably, so a failed request is resent from memory.
        for (let failures = 0; ; ) {
          try {
            const status = await this.#client.uploadChunk(id, offset, chunk);
            offset = status.offset;
            break;
          } catch (e) {
            if (++failures > UPLOAD_RETRIES) throw e;
            await new Promise((r) => setTimeout(r, 100 * 2 ** failures));
            const status = await this.#client.attachmentStatus(id);
            if (status.offset === offset + chunk.length) {
              offset = status.offset;
              break;
            }
          }
        }
      }
      if (offset !== size) throw new ClientError('RELAY_REFUSED', 'the upload ended before its announced size', { offset, size });
      return id;
    });
  }

  async *downloadAttachment(id: string): AsyncIterable<Uint8Array> {
    let start = 0;
    let size = Number.POSITIVE_INFINITY;
    while (start < size) {
      const part = await guard(() => this.#client.downloadAttachment(id, { start, end: start + DOWNLOAD_RANGE_BYTES - 1 }));
      size = part.size;
      if (part.start !== start || part.bytes.length === 0) throw new ClientError('RELAY_MISBEHAVED', 'the relay answered another range');
      start += part.bytes.length;
      yield part.bytes;
    }
  }
}

/** Regroups a stream of pieces into chunks of exactly `size` bytes (the last may be shorter). */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncIterable<Uint8Array> {
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const piece of source) {
    let offset = 0;
    while (offset < piece.length) {
      const n = Math.min(size - filled, piece.length - offset);
      buffer.set(piece.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
