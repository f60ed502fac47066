/**
 * A small typed client for the relay's tests over real HTTP and websockets:
 * the routes the tests drive (devices, bundles, messages, attachments) and
 * a websocket receiver. Answers are typed with the relay's own schemas.
 *
 * It is a test driver, not the SDK: no bundle verification policy, no
 * reconnect. The client SDK's RelayClient is tested against a real relay
 * from packages/client (the interop direction the architecture allows).
 */
import {
  type KemPreKeyPublic,
  type OneTimePreKeyPublic,
  type PreKeyBundle,
  type PreKeyStore,
  type SignedPreKeyPublic,
  type DeviceCertificate,
  decodeBundle,
  defaultProvider,
  encodeCertificate,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodeSignedPreKey,
  utf8,
} from '@parley/core';
import WebSocket from 'ws';
import type {
  BundleResponse,
  DeliveredMessage,
  FetchResponse,
  RegisterDeviceResponse,
  SendBody,
  SendResponse,
  UploadStatus,
} from '../../src/schemas.ts';
import { type RelaySigner, authorizationHeader, contentDigest, fromBase64Url, toBase64Url, websocketAuthFrame } from './signing.ts';

/** A refused request: the relay's status, stable `code` and `details`; status 0 and NETWORK when no answer came. */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(`${code}: ${message}`);
  }
}

export function isRelayError(e: unknown, code?: string): e is RelayError {
  return e instanceof RelayError && (code === undefined || e.code === code);
}

export interface PreKeyUploadInput {
  readonly signedPreKey?: SignedPreKeyPublic;
  readonly lastResortKemPreKey?: KemPreKeyPublic;
  readonly oneTimePreKeys?: readonly OneTimePreKeyPublic[];
  readonly kemPreKeys?: readonly KemPreKeyPublic[];
}

/** Everything a PreKeyStore currently publishes: what a device uploads at registration. */
export function preKeysOf(store: PreKeyStore): Required<PreKeyUploadInput> {
  return {
    signedPreKey: store.currentSignedPreKey(),
    lastResortKemPreKey: store.lastResortKemPreKey(),
    oneTimePreKeys: store.oneTimePreKeys(),
    kemPreKeys: store.kemPreKeys(),
  };
}

/** The JSON fields of a prekey upload (spec/09-relay.md §4.2). */
function encodePreKeyUpload(u: PreKeyUploadInput) {
  return {
    ...(u.signedPreKey ? { signedPreKey: toBase64Url(encodeSignedPreKey(u.signedPreKey)) } : {}),
    ...(u.lastResortKemPreKey ? { lastResortKemPreKey: toBase64Url(encodeKemPreKey(u.lastResortKemPreKey)) } : {}),
    ...(u.oneTimePreKeys ? { oneTimePreKeys: u.oneTimePreKeys.map((k) => toBase64Url(encodeOneTimePreKey(k))) } : {}),
    ...(u.kemPreKeys ? { kemPreKeys: u.kemPreKeys.map((k) => toBase64Url(encodeKemPreKey(k))) } : {}),
  };
}

export interface OutgoingEnvelope {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly id: string;
  readonly envelope: Uint8Array;
  readonly certificateHash?: Uint8Array;
}

export interface ReceivedEnvelope {
  readonly seq: number;
  readonly sender: { readonly accountKey: Uint8Array; readonly deviceId: number };
  readonly id: string;
  readonly serverTimestamp: number;
  readonly expiresAt: number;
  readonly envelope: Uint8Array;
  /** The relay frank's delivery record, as delivered (franked sends only). */
  readonly delivery?: DeliveredMessage['delivery'];
}

export interface FetchedBundle {
  readonly deviceId: number;
  readonly bundle: PreKeyBundle;
  readonly certificateHash: Uint8Array;
}

export interface DownloadResult {
  /** 200 for the whole blob, 206 for a range. */
  readonly status: 200 | 206;
  readonly bytes: Uint8Array;
  /** Total size of the attachment. */
  readonly size: number;
  readonly start: number;
}

export interface TestClientOptions {
  readonly baseUrl: string;
  readonly signer: RelaySigner;
  /** Attempts after the first for requests safe to repeat, after a network error or a 502/503/504 (default 2). */
  readonly retries?: number;
}

interface RequestOptions {
  readonly json?: unknown;
  readonly octets?: Uint8Array;
  readonly headers?: Record<string, string>;
  readonly idempotent: boolean;
}

/** Octet bodies (attachment chunks) are sent unsigned: the signed hash is all zeros (spec/09-relay.md §3.3). */
const UNSIGNED_BODY = new Uint8Array(32);
const RETRY_DELAY_MS = 100;

function decodeDelivered(m: DeliveredMessage): ReceivedEnvelope {
  return {
    seq: m.seq,
    sender: { accountKey: fromBase64Url(m.sender.account), deviceId: m.sender.deviceId },
    id: m.id,
    serverTimestamp: m.serverTimestamp,
    expiresAt: m.expiresAt,
    envelope: fromBase64Url(m.envelope),
    ...(m.delivery === undefined ? {} : { delivery: m.delivery }),
  };
}

export class TestRelayClient {
  readonly #base: URL;
  readonly #signer: RelaySigner;
  readonly #retries: number;
  /** Relay clock minus ours, learned once from an AUTH_STALE_TIMESTAMP answer (relays on a test clock). */
  #clockOffset = 0;

  constructor(options: TestClientOptions) {
    this.#base = new URL(options.baseUrl);
    this.#signer = options.signer;
    this.#retries = options.retries ?? 2;
  }

  get signer(): RelaySigner {
    return this.#signer;
  }

  registerDevice(
    certificate: DeviceCertificate,
    keys: Required<Pick<PreKeyUploadInput, 'signedPreKey' | 'lastResortKemPreKey'>> & PreKeyUploadInput,
  ): Promise<RegisterDeviceResponse> {
    const json = { certificate: toBase64Url(encodeCertificate(certificate)), ...encodePreKeyUpload(keys) };
    return this.#json('PUT', '/v1/devices', { json, headers: { 'parley-certificate': json.certificate }, idempotent: true });
  }

  /** Bundles for one device or all (`'*'`) of an account, decoded (not verified: that is the SDK's policy). */
  async fetchBundles(accountKey: Uint8Array, deviceId: number | '*'): Promise<FetchedBundle[]> {
    const r = await this.#json<BundleResponse>('GET', `/v1/keys/${toBase64Url(accountKey)}/${deviceId}`, { idempotent: true });
    return r.bundles.map((b) => ({
      deviceId: b.deviceId,
      bundle: decodeBundle(fromBase64Url(b.bundle)),
      certificateHash: fromBase64Url(b.certificateHash),
    }));
  }

  send(envelopes: readonly OutgoingEnvelope[], options: { ttlSeconds?: number } = {}): Promise<SendResponse> {
    const json: SendBody = {
      messages: envelopes.map((e) => ({
        account: toBase64Url(e.accountKey),
        deviceId: e.deviceId,
        id: e.id,
        envelope: toBase64Url(e.envelope),
        ...(e.certificateHash ? { certificateHash: toBase64Url(e.certificateHash) } : {}),
      })),
      ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
    };
    return this.#json('POST', '/v1/messages', { json, idempotent: true });
  }

  async fetchMessages(options: { limit?: number; after?: number } = {}): Promise<{ messages: ReceivedEnvelope[]; more: boolean }> {
    const q = new URLSearchParams();
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    if (options.after !== undefined) q.set('after', String(options.after));
    const r = await this.#json<FetchResponse>('GET', `/v1/messages${q.size ? `?${q}` : ''}`, { idempotent: true });
    return { messages: r.messages.map(decodeDelivered), more: r.more };
  }

  /** The ids of every envelope in the mailbox, paged through in order (nothing acknowledged). */
  async fetchAllMessageIds(): Promise<string[]> {
    const ids: string[] = [];
    for (let after = 0; ; ) {
      const page = await this.fetchMessages({ limit: 500, after });
      ids.push(...page.messages.map((m) => m.id));
      if (!page.more) return ids;
      after = page.messages.at(-1)?.seq ?? after;
    }
  }

  async ack(seqs: readonly number[]): Promise<void> {
    await this.#request('POST', '/v1/messages/ack', { json: { seqs }, idempotent: true });
  }

  /** A websocket receiver for the signing device; call `start()`. */
  connect(handlers: MailboxHandlers): TestMailbox {
    const url = new URL('/v1/websocket', this.#base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return new TestMailbox(url, this.#signer, handlers);
  }

  createAttachment(size: number): Promise<UploadStatus> {
    return this.#json('POST', '/v1/attachments', { json: { size }, idempotent: false });
  }

  attachmentStatus(id: string): Promise<UploadStatus> {
    return this.#json('GET', `/v1/attachments/${id}/upload`, { idempotent: true });
  }

  uploadChunk(id: string, offset: number, bytes: Uint8Array): Promise<UploadStatus> {
    return this.#json('PATCH', `/v1/attachments/${id}?offset=${offset}`, { octets: bytes, idempotent: false });
  }

  /** Uploads in chunks from the relay's offset, resuming after up to `retries` failures in a row. */
  async uploadAttachment(
    id: string,
    data: Uint8Array,
    options: { chunkBytes?: number; retries?: number; onProgress?: (p: { offset: number; size: number }) => void } = {},
  ): Promise<UploadStatus> {
    const chunkBytes = options.chunkBytes ?? 4 * 1024 * 1024;
    const retries = options.retries ?? 5;
    let status = await this.attachmentStatus(id);
    let failures = 0;
    while (!status.complete) {
      try {
        status = await this.uploadChunk(id, status.offset, data.subarray(status.offset, Math.min(status.offset + chunkBytes, data.length)));
        failures = 0;
        options.onProgress?.({ offset: status.offset, size: status.size });
      } catch (error) {
        if (++failures > retries) throw error;
        await sleep(RETRY_DELAY_MS);
        status = await this.attachmentStatus(id);
      }
    }
    return status;
  }

  /** Downloads a finished attachment, or `range` of it (inclusive end; omit for "to the end"). */
  async downloadAttachment(id: string, range?: { start: number; end?: number }): Promise<DownloadResult> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end ?? ''}` } : {};
    const response = await this.#request('GET', `/v1/attachments/${id}`, { headers, idempotent: true });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 206) return { status: 200, bytes, start: 0, size: bytes.length };
    const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
    if (!m) throw new RelayError(206, 'BAD_RESPONSE', 'partial content without a valid Content-Range');
    return { status: 206, bytes, start: Number(m[1]), size: Number(m[3]) };
  }

  async deleteAttachment(id: string): Promise<void> {
    await this.#request('DELETE', `/v1/attachments/${id}`, { idempotent: true });
  }

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
          await sleep(RETRY_DELAY_MS);
          continue;
        }
        throw new RelayError(0, 'NETWORK', error instanceof Error ? error.message : 'request failed');
      }
      if (response.ok) return response;
      const error = await errorOf(response);
      const serverTime = error.details['serverTime'];
      if (error.code === 'AUTH_STALE_TIMESTAMP' && !adjustedClock && typeof serverTime === 'number') {
        this.#clockOffset = serverTime - Date.now();
        adjustedClock = true;
        attempt--;
        continue;
      }
      if (options.idempotent && attempt < this.#retries && [502, 503, 504].includes(response.status)) {
        await sleep(RETRY_DELAY_MS);
        continue;
      }
      throw error;
    }
  }

  #send(method: string, path: string, options: RequestOptions): Promise<Response> {
    const url = new URL(path, this.#base);
    const body = options.json !== undefined ? utf8(JSON.stringify(options.json)) : options.octets;
    const bodySha256 = options.octets ? UNSIGNED_BODY : defaultProvider().backend.sha256(body ?? new Uint8Array(0));
    const authorization = authorizationHeader(
      {
        method,
        host: url.host,
        pathAndQuery: url.pathname + url.search,
        bodySha256,
        timestamp: Date.now() + this.#clockOffset,
        nonce: crypto.getRandomValues(new Uint8Array(16)),
      },
      this.#signer,
    );
    const headers: Record<string, string> = { authorization, ...options.headers };
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-digest'] = contentDigest(bodySha256);
    }
    if (options.octets) headers['content-type'] = 'application/octet-stream';
    return fetch(url, { method, headers, ...(body ? { body: body as BodyInit } : {}), signal: AbortSignal.timeout(30_000) });
  }
}

async function errorOf(response: Response): Promise<RelayError> {
  let body: { code?: string; message?: string; details?: Record<string, unknown> } = {};
  try {
    body = (await response.json()) as typeof body;
  } catch {
    // Not the relay's JSON (a proxy's page): keep the status.
  }
  return new RelayError(response.status, body.code ?? `HTTP_${response.status}`, body.message ?? response.statusText, body.details ?? {});
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type MailboxState = 'connecting' | 'open' | 'stopped';

export interface MailboxHandlers {
  /** Called once per envelope, in order; acknowledged after it returns, not acknowledged if it throws. */
  onEnvelope(envelope: ReceivedEnvelope): void | Promise<void>;
  /** The backlog present at connection time has been handled. */
  onDrained?(): void;
  onError?(error: unknown): void;
}

/** Close codes the relay ends a connection with, as error codes (spec/09-relay.md §5.3). */
const CLOSE_CODES = new Map<number, string>([
  [4001, 'WS_AUTH_FAILED'],
  [4002, 'WS_REPLACED'],
  [4004, 'WS_DEVICE_REMOVED'],
]);

/**
 * One websocket connection of a device: answers the challenge, hands
 * envelopes to the handler in order and acknowledges each after it, reports
 * "drained". Ends (state `stopped`) when the relay closes it; a test that
 * wants a second connection makes a second receiver.
 */
export class TestMailbox {
  #socket: WebSocket | undefined;
  #state: MailboxState = 'stopped';
  #chain: Promise<void> = Promise.resolve();
  #openWaiters: (() => void)[] = [];

  constructor(
    readonly url: URL,
    readonly signer: RelaySigner,
    readonly handlers: MailboxHandlers,
  ) {}

  get state(): MailboxState {
    return this.#state;
  }

  start(): this {
    if (this.#socket) return this;
    this.#state = 'connecting';
    const socket = new WebSocket(this.url);
    this.#socket = socket;
    socket.on('message', (data) => this.#onFrame(socket, data.toString()));
    socket.on('error', (error) => this.handlers.onError?.(error));
    socket.on('close', (code, reason) => {
      if (this.#state === 'stopped') return;
      this.#state = 'stopped';
      const named = CLOSE_CODES.get(code);
      if (named) this.handlers.onError?.(new RelayError(0, named, reason.toString() || 'connection closed by the relay'));
    });
    return this;
  }

  /** Resolves when the relay says "ready". */
  whenOpen(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    return new Promise((resolve) => this.#openWaiters.push(resolve));
  }

  stop(): void {
    this.#state = 'stopped';
    this.#socket?.close(1000, 'client stopped');
  }

  #onFrame(socket: WebSocket, data: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(data) as Record<string, unknown>;
    } catch {
      this.handlers.onError?.(new RelayError(0, 'BAD_RESPONSE', 'websocket frame is not JSON'));
      return;
    }
    switch (frame['type']) {
      case 'challenge':
        socket.send(websocketAuthFrame(this.url.host, fromBase64Url(String(frame['challenge'])), this.signer));
        return;
      case 'ready':
        this.#state = 'open';
        for (const resolve of this.#openWaiters.splice(0)) resolve();
        return;
      case 'envelope': {
        const envelope = decodeDelivered(frame as unknown as DeliveredMessage);
        this.#chain = this.#chain.then(() => this.#deliver(socket, envelope));
        return;
      }
      case 'drained':
        this.#chain = this.#chain.then(() => this.handlers.onDrained?.());
        return;
      default:
        this.handlers.onError?.(new RelayError(0, 'BAD_RESPONSE', 'unknown websocket frame type'));
    }
  }

  async #deliver(socket: WebSocket, envelope: ReceivedEnvelope): Promise<void> {
    try {
      await this.handlers.onEnvelope(envelope);
    } catch (error) {
      this.handlers.onError?.(error);
      return;
    }
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'ack', seqs: [envelope.seq] }));
  }
}
