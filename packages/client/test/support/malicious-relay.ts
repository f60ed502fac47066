/**
 * A malicious relay for client tests: a proxy on loopback in front of the
 * real relay, for HTTP and for the websocket, that can lie the way a
 * compromised relay (or anyone holding its database and keys to its TLS)
 * can. spec/07-security.md §9, spec/10-client.md §12.
 *
 * Everything honest goes through unchanged: the proxy forwards `Host` and
 * the request target as received, so the real relay verifies the clients'
 * signatures (which cover the host the client connected to: the proxy's).
 * On top of that a test installs rules:
 *
 *  - `onRequest(rule)`: sees every HTTP request (method, path, query, body,
 *    headers) and may answer it itself (a forged answer), or forward it and
 *    change the real answer. Rules run in the order installed; the first
 *    that returns an answer wins.
 *  - `onEnvelope(rule)`: sees every envelope frame the real relay pushes to
 *    a device and returns the frames to deliver instead (none = drop, two =
 *    duplicate, held and `deliver`ed later = reorder).
 *  - `deliver(to, frame)` / `injectEnvelope(to, ...)`: pushes a frame the
 *    real relay never sent (a forged or replayed envelope) to a connected
 *    device; its acknowledgement is kept from the real relay.
 *  - `requests` keeps every request as sent (headers included), and
 *    `replay(request)` sends one again to the real relay, byte for byte,
 *    as an eavesdropper would.
 *
 * Helpers below build the common lies: re-listing an old certificate
 * (`relistDevice`), serving bundles for it (`serveBundle`), answering
 * sends with fabricated stale devices (`fabricateStale`), withholding the
 * signed device list (`withholdDeviceList`). Each returns a function that
 * removes the rule.
 *
 * Test-only: no TLS, no limits, loopback only.
 */
import type { WireDeliveryRecord } from '../../src/relay-client/types.ts';
import { type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { toBase64Url } from '../../src/state/ids.ts';

export interface InterceptedRequest {
  readonly method: string;
  /** Path and query exactly as sent (what the client signed). */
  readonly url: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface RelayAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Builds a JSON answer (for forged responses). */
export function jsonAnswer(status: number, value: unknown): RelayAnswer {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: Buffer.from(JSON.stringify(value)) };
}

/** Reads a JSON answer's body (for changing a real one). */
export function answerJson<T = Record<string, unknown>>(a: RelayAnswer): T {
  return JSON.parse(a.body.toString('utf8')) as T;
}

/**
 * A rule: return an answer to send it instead of the relay's (call
 * `forward()` to get the real one first), or undefined to leave the
 * request to the next rule.
 */
export type RequestRule = (
  req: InterceptedRequest,
  forward: () => Promise<RelayAnswer>,
) => Promise<RelayAnswer | undefined> | RelayAnswer | undefined;

/** An envelope frame as the relay pushes it (spec/09-relay.md §5.2). */
export interface EnvelopeFrame {
  readonly type: 'envelope';
  readonly seq: number;
  readonly sender: { readonly account: string; readonly deviceId: number };
  readonly id: string;
  readonly serverTimestamp: number;
  readonly expiresAt: number;
  readonly envelope: string;
  /** The relay's delivery record of a franked (v2) envelope. */
  readonly delivery?: WireDeliveryRecord;
}

/** Which device a websocket belongs to: `<account id>.<device id>` (known after its auth frame). */
export type DeviceTag = string;

export const deviceTag = (accountKey: Uint8Array | string, deviceId: number): DeviceTag =>
  `${typeof accountKey === 'string' ? accountKey : toBase64Url(accountKey)}.${deviceId}`;

/** Returns the frames to deliver instead of `frame` (undefined: leave it to the next rule). */
export type EnvelopeRule = (frame: EnvelopeFrame, to: DeviceTag) => EnvelopeFrame[] | undefined;

/** Seqs the proxy makes up start here, far above any the real relay hands out in a test. */
const FORGED_SEQ_BASE = 2 ** 40;

export class MaliciousRelay {
  readonly url: string;
  /** Every HTTP request seen, in order. */
  readonly requests: InterceptedRequest[] = [];
  /** Every envelope frame the real relay pushed, in order, with its recipient. */
  readonly pushed: { readonly to: DeviceTag; readonly frame: EnvelopeFrame }[] = [];
  readonly #upstream: URL;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #requestRules: RequestRule[] = [];
  readonly #envelopeRules: EnvelopeRule[] = [];
  readonly #sockets = new Map<DeviceTag, WebSocket>();
  readonly #forgedSeqs = new Set<number>();
  #nextSeq = FORGED_SEQ_BASE;

  private constructor(upstream: URL, server: Server, wss: WebSocketServer, url: string) {
    this.#upstream = upstream;
    this.#server = server;
    this.#wss = wss;
    this.url = url;
  }

  /** Starts a proxy on 127.0.0.1 (random port) in front of the relay at `upstream`. */
  static async start(upstream: string): Promise<MaliciousRelay> {
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const relay = new MaliciousRelay(new URL(upstream), server, wss, `http://127.0.0.1:${port}`);
    server.on('request', (req, res) => void relay.#onRequest(req, res));
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (client) => relay.#onSocket(req, client)));
    return relay;
  }

  onRequest(rule: RequestRule): () => void {
    this.#requestRules.push(rule);
    return () => remove(this.#requestRules, rule);
  }

  onEnvelope(rule: EnvelopeRule): () => void {
    this.#envelopeRules.push(rule);
    return () => remove(this.#envelopeRules, rule);
  }

  /** Whether a device has a websocket open through the proxy (and has authenticated). */
  connected(to: DeviceTag): boolean {
    return this.#sockets.get(to)?.readyState === WebSocket.OPEN;
  }

  /** Pushes a frame to a connected device. Returns false when it is not connected. */
  deliver(to: DeviceTag, frame: EnvelopeFrame): boolean {
    const socket = this.#sockets.get(to);
    if (socket?.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Pushes an envelope the real relay never stored, under a made-up seq
   * (its acknowledgement is not passed on). `like` copies sender and
   * envelope from a frame seen before (a replay); the id defaults to a new one.
   */
  injectEnvelope(
    to: DeviceTag,
    frame: Omit<EnvelopeFrame, 'type' | 'seq' | 'serverTimestamp' | 'expiresAt'> & Partial<EnvelopeFrame>,
  ): boolean {
    const seq = this.#nextSeq++;
    this.#forgedSeqs.add(seq);
    const now = Date.now();
    return this.deliver(to, { serverTimestamp: now, expiresAt: now + 3600_000, ...frame, type: 'envelope', seq });
  }

  /** Sends a captured request to the real relay again, exactly as it was (headers, target, body). */
  replay(req: InterceptedRequest): Promise<RelayAnswer> {
    return this.#forward(req);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets.values()) s.terminate();
    for (const c of this.#wss.clients) c.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- HTTP -------------------------------------------------------------

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = new URL(req.url ?? '/', 'http://proxy');
    const intercepted: InterceptedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path: target.pathname,
      query: target.searchParams,
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    this.requests.push(intercepted);
    let answer: RelayAnswer | undefined;
    try {
      let forwarded: Promise<RelayAnswer> | undefined;
      const forward = () => {
        forwarded ??= this.#forward(intercepted);
        return forwarded;
      };
      for (const rule of [...this.#requestRules]) {
        answer = await rule(intercepted, forward);
        if (answer) break;
      }
      answer ??= await forward();
    } catch {
      answer = jsonAnswer(502, { statusCode: 502, code: 'UNAVAILABLE', error: 'Bad Gateway', message: 'proxy could not reach the relay' });
    }
    const headers = { ...answer.headers, 'content-length': String(answer.body.length) };
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }

  #forward(req: InterceptedRequest): Promise<RelayAnswer> {
    return new Promise((resolve, reject) => {
      const { 'content-length': _length, ...headers } = req.headers;
      if (req.body.length) headers['content-length'] = String(req.body.length);
      const out = request(
        { host: this.#upstream.hostname, port: this.#upstream.port, method: req.method, path: req.url, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const h: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) {
              if (v === undefined || k === 'content-length' || k === 'transfer-encoding' || k === 'connection') continue;
              h[k] = Array.isArray(v) ? v.join(', ') : v;
            }
            resolve({ status: res.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
          });
        },
      );
      out.on('error', reject);
      out.end(req.body);
    });
  }

  // ---- websocket --------------------------------------------------------

  #onSocket(req: IncomingMessage, client: WebSocket): void {
    const upstreamUrl = new URL(req.url ?? '/', this.#upstream);
    upstreamUrl.protocol = upstreamUrl.protocol === 'https:' ? 'wss:' : 'ws:';
    // The relay's challenge signature covers the Host of the upgrade: forward the client's.
    const upstream = new WebSocket(upstreamUrl, { headers: { host: req.headers.host ?? '' } });
    const queued: (string | Buffer)[] = [];
    let tag: DeviceTag | null = null;
    upstream.on('open', () => {
      for (const m of queued.splice(0)) upstream.send(m);
    });
    client.on('message', (data, isBinary) => {
      // A binary frame (a send on the websocket, spec/09-relay.md §5.4) passes through as it came.
      if (isBinary) {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
        if (upstream.readyState === WebSocket.OPEN) upstream.send(bytes);
        else queued.push(bytes);
        return;
      }
      let text = String(data);
      try {
        const frame = JSON.parse(text) as { type?: string; account?: string; deviceId?: number; seqs?: number[] };
        if (frame.type === 'auth' && typeof frame.account === 'string' && typeof frame.deviceId === 'number') {
          tag = deviceTag(frame.account, frame.deviceId);
          this.#sockets.set(tag, client);
        }
        if (frame.type === 'ack' && Array.isArray(frame.seqs)) {
          // Acknowledgements of made-up seqs stay here: the real relay never sent those envelopes.
          const real = frame.seqs.filter((s) => !this.#forgedSeqs.has(s));
          if (real.length === 0) return;
          text = JSON.stringify({ ...frame, seqs: real });
        }
      } catch {
        // Not JSON: pass it on and let the relay refuse it.
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else queued.push(text);
    });
    upstream.on('message', (data) => {
      const text = String(data);
      let frame: { type?: string } | null = null;
      try {
        frame = JSON.parse(text) as { type?: string };
      } catch {
        frame = null;
      }
      if (frame?.type === 'challenge') {
        // The rules below read and rewrite JSON envelope frames: offer no binary push (spec/09-relay.md §5.2.2),
        // so the device asks for none and this proxy speaks as a relay from before the option.
        const { push: _offer, ...plain } = frame as { push?: unknown };
        if (client.readyState === WebSocket.OPEN) client.send(JSON.stringify(plain));
        return;
      }
      if (frame?.type !== 'envelope' || !tag) {
        if (client.readyState === WebSocket.OPEN) client.send(text);
        return;
      }
      const envelope = frame as EnvelopeFrame;
      this.pushed.push({ to: tag, frame: envelope });
      let out: EnvelopeFrame[] | undefined;
      for (const rule of [...this.#envelopeRules]) {
        out = rule(envelope, tag);
        if (out) break;
      }
      for (const f of out ?? [envelope]) if (client.readyState === WebSocket.OPEN) client.send(JSON.stringify(f));
    });
    const closeBoth = (code: number, reason: Buffer) => {
      const c = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 ? code : 1011;
      if (client.readyState === WebSocket.OPEN) client.close(c, reason);
      if (upstream.readyState === WebSocket.OPEN) upstream.close(c, reason);
      if (tag && this.#sockets.get(tag) === client) this.#sockets.delete(tag);
    };
    upstream.on('close', closeBoth);
    client.on('close', closeBoth);
    upstream.on('error', () => client.terminate());
    client.on('error', () => upstream.terminate());
  }
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}

// ---- common lies ----------------------------------------------------------

const devicesPath = (account: string) => `/v1/accounts/${account}/devices`;

/**
 * Adds `certificate` (canonical encoding) under its device id to every
 * listing of `account`'s devices, as a relay that kept a removed device's
 * row (or an attacker writing to its database) would.
 */
export function relistDevice(relay: MaliciousRelay, accountKey: Uint8Array, deviceId: number, certificate: Uint8Array, hash: Uint8Array) {
  const account = toBase64Url(accountKey);
  return relay.onRequest(async (req, forward) => {
    if (req.method !== 'GET' || req.path !== devicesPath(account)) return undefined;
    const real = await forward();
    const body = real.status === 200 ? answerJson<{ devices: { deviceId: number }[] }>(real) : { account, devices: [] };
    const devices = [
      ...body.devices.filter((d) => d.deviceId !== deviceId),
      { deviceId, certificate: toBase64Url(certificate), certificateHash: toBase64Url(hash), registeredAt: Date.now() },
    ].sort((a, b) => a.deviceId - b.deviceId);
    return jsonAnswer(200, { ...body, account, devices });
  });
}

/** Answers bundle fetches for one device with `bundle` (canonical encoding), e.g. one built from a removed device's keys. */
export function serveBundle(relay: MaliciousRelay, accountKey: Uint8Array, deviceId: number, bundle: Uint8Array, hash: Uint8Array) {
  const account = toBase64Url(accountKey);
  return relay.onRequest((req) => {
    // Both bundle routes: a client asks /v2 first, and a v1 bundle is a valid answer there.
    if (req.method !== 'GET' || (req.path !== `/v1/keys/${account}/${deviceId}` && req.path !== `/v2/keys/${account}/${deviceId}`))
      return undefined;
    return jsonAnswer(200, { account, bundles: [{ deviceId, bundle: toBase64Url(bundle), certificateHash: toBase64Url(hash) }] });
  });
}

/**
 * Keeps (in `captured`) the envelopes a send addresses to one device and
 * answers the send as stored. Nothing of that send reaches the real relay:
 * the request signature covers the body, so a send without the diverted
 * envelopes cannot be forwarded, and the real relay would refuse the
 * envelope of a device it no longer lists.
 */
export function divertEnvelopes(relay: MaliciousRelay, accountKey: Uint8Array, deviceId: number, captured: Uint8Array[]) {
  const account = toBase64Url(accountKey);
  return relay.onRequest(async (req) => {
    if (req.method !== 'POST' || req.path !== '/v1/messages') return undefined;
    const body = JSON.parse(req.body.toString('utf8')) as { messages: { account: string; deviceId: number; envelope: string }[] };
    const mine = body.messages.filter((m) => m.account === account && m.deviceId === deviceId);
    if (mine.length === 0) return undefined;
    for (const m of mine) captured.push(new Uint8Array(Buffer.from(m.envelope, 'base64url')));
    return jsonAnswer(200, { accepted: body.messages.length });
  });
}

/** Answers sends that address `accountKey`'s devices with a made-up 410 STALE_DEVICES, `times` times. */
export function fabricateStale(relay: MaliciousRelay, accountKey: Uint8Array, deviceIds: number[], times = Number.POSITIVE_INFINITY) {
  const account = toBase64Url(accountKey);
  let left = times;
  return relay.onRequest((req) => {
    if (left <= 0 || req.method !== 'POST' || req.path !== '/v1/messages') return undefined;
    const body = JSON.parse(req.body.toString('utf8')) as { messages: { account: string; deviceId: number }[] };
    if (!body.messages.some((m) => m.account === account && deviceIds.includes(m.deviceId))) return undefined;
    left--;
    return jsonAnswer(410, {
      statusCode: 410,
      code: 'STALE_DEVICES',
      error: 'Gone',
      message: 'a device was re-registered',
      details: { stale: [{ account, staleDevices: deviceIds }] },
    });
  });
}

/** Answers every request for `accountKey`'s signed device list with 404, as a relay that withholds it. */
export function withholdDeviceList(relay: MaliciousRelay, accountKey: Uint8Array) {
  const path = `/v1/accounts/${toBase64Url(accountKey)}/device-list`;
  return relay.onRequest((req) => {
    if (req.method !== 'GET' || req.path !== path) return undefined;
    return jsonAnswer(404, { statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: 'no device list for this account' });
  });
}
