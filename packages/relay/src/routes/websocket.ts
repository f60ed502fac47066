/**
 * The delivery websocket: one per device. spec/09-relay.md §5.
 *
 *   relay  -> {"type":"challenge","challenge":<32 bytes>,"serverTime":ms,"push":["json","cbor"]}
 *   device -> {"type":"auth","account":..,"deviceId":..,"signature":..,"push"?:"json"|"cbor"}
 *   relay  -> {"type":"ready","push":"json"|"cbor","sends":{"maxFrameBytes":..,"maxEnvelopes":..,"maxInFlight":..}}
 *   relay  -> {"type":"envelope",...} (backlog, oldest first) ... {"type":"drained"} ... new envelopes
 *             (with "push":"cbor": binary ["envelope", ...] frames instead, delivery/push-frame.ts)
 *   device -> {"type":"ack","seqs":[...]} or binary ["ack", [seq, ...]]
 *   device -> binary CBOR ["send", counter, ttl, elements] (§5.4; delivery/websocket-sends.ts)
 *   relay  -> {"type":"sent","counter":n,"accepted":k} or {"type":"send-failed","counter":n,"error":{...}}
 *
 * The signature covers the challenge and the Host the device connected to,
 * so it is useless on any other connection or relay. A second connection of
 * the same device closes the first (4002).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { websocketSignedBytes } from '../auth/canonical.ts';
import { verifyingKey } from '../auth/verifying-keys.ts';
import { CloseCode, type MailboxConnection } from '../delivery/hub.ts';
import { AckFloodError, MailboxPump } from '../delivery/mailbox-pump.ts';
import { PUSH_FORMATS, decodeAckFrame, encodeEnvelopeFrame, isAckFrame } from '../delivery/push-frame.ts';
import { sendService } from '../delivery/send.ts';
import { WebSocketSends } from '../delivery/websocket-sends.ts';
import { markAuthenticated } from '../front-door/connections.ts';
import { fromBase64Url, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { TokenBuckets } from '../limits/token-buckets.ts';
import { ErrorResponse, WsAckFrame, WsAuthFrame } from '../schemas.ts';
import type { DeviceAddress } from '../storage/types.ts';

const MINUTE = 60_000;

/** A binary message as bytes (ws hands over a Buffer, or its fragments). */
function frameBytes(data: Buffer | ArrayBuffer | Buffer[]): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/**
 * Sends a frame (text, or binary for bytes), holding the TCP socket corked until the current tick's
 * work is done: the answers to every send frame of one commit, or a page of
 * pushed envelopes, leave in one write instead of one write each (issue 15's
 * profile: a write per frame was the largest native cost after SQLite).
 * `_socket` is ws's underlying net.Socket (internal but stable across ws
 * 1-8); without it frames go out one by one, as before.
 */
function sendCorked(socket: WebSocket, frame: string | Uint8Array): void {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (raw && !corkedSockets.has(raw)) {
    corkedSockets.add(raw);
    raw.cork();
    // nextTick runs once the current promise callbacks are drained: every answer of this commit is in.
    process.nextTick(() => {
      corkedSockets.delete(raw);
      raw.uncork();
    });
  }
  socket.send(frame);
}
const corkedSockets = new WeakSet<Socket>();

/**
 * The longest auth frame (JSON text) taken before "ready" (spec/09-relay.md §5.1). The largest legal one
 * is about 230 bytes (a 43-character account, a 10-digit device id, an 86-character signature, "push");
 * 1 KiB leaves room for whitespace and a later optional field. Longer frames are closed unparsed: an
 * unauthenticated peer should not make the relay parse up to maxWebSocketFrameBytes of JSON.
 */
export const MAX_AUTH_FRAME_BYTES = 1024;

/**
 * The longest JSON ack frame: {"type":"ack","seqs":[...]} with MAX_ACKS_PER_REQUEST seqs of 16 digits
 * (up to 2^53-1) and their commas is 17,023 bytes; 18 KiB leaves 1 KiB for whitespace. spec/09-relay.md §5.1.
 */
export const MAX_JSON_ACK_FRAME_BYTES = 18 * 1024;

/** The byte length of a text message as ws hands it over. */
function textLength(data: Buffer | ArrayBuffer | Buffer[]): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

/** Ping interval; a connection that missed a whole interval's pong is dropped. */
const HEARTBEAT_MS = 30_000;

const isAuthFrame = TypeCompiler.Compile(WsAuthFrame);
const isJsonAckFrame = TypeCompiler.Compile(WsAckFrame);

export async function websocketRoutes(app: FastifyInstance): Promise<void> {
  // Send frames per device per minute, across this process's connections (§5.4).
  const frameRate = new TokenBuckets(app.relay.config.rateLimits.websocketSendsPerMinutePerDevice, MINUTE);
  app.route({
    method: 'GET',
    url: '/v1/websocket',
    config: { auth: 'none' },
    schema: {
      summary: 'Delivery websocket: challenge-response auth, then pushed envelopes with acknowledgements',
      description:
        'Upgrade to a websocket (101). Authentication happens inside the socket (browsers cannot sign headers on an upgrade). Once authenticated, the device may also send: binary CBOR send frames, answered after the commit (spec/09-relay.md §5.4). Frames and close codes: spec/09-relay.md §5. A plain GET answers 426.',
      tags: ['messages'],
      security: [],
      response: { 426: ErrorResponse, 429: ErrorResponse },
    },
    handler: async () => {
      throw relayError('UPGRADE_REQUIRED', 'this route speaks websocket only');
    },
    wsHandler: (socket, request) => handleConnection(app, socket, request, frameRate),
  });
}

function handleConnection(app: FastifyInstance, socket: WebSocket, request: FastifyRequest, frameRate: TokenBuckets): void {
  const { relay } = app;
  if (relay.closing) {
    socket.close(CloseCode.tryAgainLater, 'relay shutting down');
    return;
  }
  const challenge = relay.provider.random(32);
  let pump: MailboxPump | undefined;
  let sends: WebSocketSends | undefined;
  let connection: MailboxConnection | undefined;
  let authenticating = false;
  let alive = true;

  const fail = (code: number, reason: string) => {
    if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(code, reason);
  };
  // An unauthenticated socket holds a file descriptor: it gets a few seconds (config websocketAuthTimeoutSeconds).
  const authTimer = setTimeout(
    () => fail(CloseCode.authTimeout, 'authentication timed out'),
    relay.config.websocketAuthTimeoutSeconds * 1000,
  );
  authTimer.unref();
  const heartbeat = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, HEARTBEAT_MS);
  heartbeat.unref();
  socket.on('pong', () => {
    alive = true;
  });

  /** A frame that breaks the protocol: counted by what it was (the client's doing, spec §5.1), then 4003. */
  const protocolError = (code: string, reason: string) => {
    // Once per connection: frames ws had already read still arrive after the close (a flood's rest).
    if (socket.readyState !== socket.OPEN) return;
    relay.metrics.websocketClientErrors.inc({ code });
    fail(CloseCode.protocolError, reason);
  };

  /** Acknowledged seqs, from a JSON or a binary ack frame alike. */
  const ack = (seqs: readonly number[]) => {
    const current = pump as MailboxPump;
    let deleted: Promise<number>;
    try {
      deleted = current.ack(seqs);
    } catch (error) {
      // Acks kept coming past a held socket (holdReading below): the client's doing, not a relay fault.
      if (error instanceof AckFloodError) return protocolError(error.code, 'too many acknowledgements waiting');
      request.log.error({ err: error }, 'ack failed');
      return fail(1011, 'internal error');
    }
    deleted.then(
      (n) => relay.metrics.envelopesAcked.inc(n),
      (error) => {
        request.log.error({ err: error }, 'ack failed');
        fail(1011, 'internal error');
      },
    );
  };

  socket.on('message', (data, isBinary) => {
    // Closing (the relay closed it, or the device sent its close): ws still hands over frames it had
    // already read; none of them is taken, so a flood refused with a close costs nothing more.
    if (socket.readyState !== socket.OPEN) return;
    if (isBinary && sends) {
      // Only on an authenticated connection; before "ready" a binary frame is a protocol error below.
      const bytes = frameBytes(data);
      if (isAckFrame(bytes)) {
        // A binary ack (§5.2.2), taken on any authenticated connection; the same bounds and close as a JSON one.
        const seqs = decodeAckFrame(bytes);
        if (!seqs) return protocolError('BAD_ACK_FRAME', 'malformed ack frame');
        return ack(seqs);
      }
      // A send frame (§5.4); anything else is closed there (4003, counted as a MALFORMED send).
      sends.receive(bytes);
      return;
    }
    // Before "ready" nothing is parsed while the auth frame is checked; then a text frame is refused for its
    // length before JSON.parse (spec/09-relay.md §5.1): the auth frame and a JSON ack have a largest legal length.
    if (!pump && authenticating) return protocolError('EARLY_FRAME', 'wait for "ready" before sending');
    if (!isBinary && textLength(data) > (pump ? MAX_JSON_ACK_FRAME_BYTES : MAX_AUTH_FRAME_BYTES)) {
      return protocolError('FRAME_TOO_LARGE', pump ? 'ack frame too large' : 'auth frame too large');
    }
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(data.toString());
    } catch {
      frame = undefined;
    }
    if (!pump) {
      if (!isAuthFrame.Check(frame)) return protocolError('BAD_AUTH_FRAME', 'expected an auth frame');
      authenticating = true;
      void authenticate(frame).catch((error) => {
        request.log.error({ err: error }, 'websocket authentication failed unexpectedly');
        fail(CloseCode.authFailed, 'authentication failed');
      });
      return;
    }
    if (!isJsonAckFrame.Check(frame)) return protocolError('BAD_ACK_FRAME', 'expected an ack frame');
    ack(frame.seqs);
  });

  socket.on('close', () => {
    clearTimeout(authTimer);
    clearInterval(heartbeat);
    if (pump) {
      pump.stop();
      relay.metrics.websockets.dec();
    }
    if (connection) relay.hub.detach(connection);
  });

  async function authenticate(frame: WsAuthFrame): Promise<void> {
    let address: DeviceAddress;
    let signature: Uint8Array;
    try {
      address = { accountKey: fromBase64Url(frame.account, 'account', 32), deviceId: frame.deviceId };
      signature = fromBase64Url(frame.signature, 'signature', 64);
    } catch {
      return fail(CloseCode.authFailed, 'malformed auth frame');
    }
    const device = await relay.storage.getDevice(address);
    const signed = websocketSignedBytes({
      host: request.headers.host ?? '',
      challenge,
      accountKey: address.accountKey,
      deviceId: address.deviceId,
    });
    if (!device || !relay.provider.backend.ed25519Verify(verifyingKey(device.signingKey), signed, signature)) {
      relay.metrics.authFailures.inc({ code: device ? 'WS_BAD_SIGNATURE' : 'WS_UNKNOWN_DEVICE' });
      return fail(CloseCode.authFailed, device ? 'signature does not verify' : 'unknown device');
    }
    if (socket.readyState !== socket.OPEN) return;
    clearTimeout(authTimer);
    markAuthenticated(request.raw.socket);
    // The push format the device asked for (§5.2.2); a device that names none gets JSON, as before the option existed.
    const push = frame.push ?? 'json';
    pump = new MailboxPump({
      address,
      storage: relay.storage,
      send: (text) => sendCorked(socket, text),
      ...(push === 'cbor' ? { binary: { encode: encodeEnvelopeFrame, send: (frame: Uint8Array) => sendCorked(socket, frame) } } : {}),
      maxInFlight: relay.config.limits.maxInFlightPerConnection,
      maxInFlightBytes: relay.config.limits.maxInFlightBytesPerConnection,
      now: relay.now,
      onPushed: (n) => relay.metrics.envelopesPushed.inc(n),
      onPushedLive: (n) => relay.metrics.envelopesPushedLive.inc(n),
      onRead: () => relay.metrics.mailboxReads.inc(),
      onLivePush: (ms) => relay.metrics.pushDelay.observe(ms / 1000),
      onError: (error) => {
        request.log.error({ err: error }, 'delivery failed');
        fail(1011, 'internal error');
      },
      // An ack flood waits in TCP, not in the commit queue (§5.2). ws may still hand over frames of what
      // it had already read; MAX_QUEUED_ACK_SEQS bounds those.
      holdReading: (hold) => {
        if (hold) {
          relay.metrics.websocketAckPauses.inc();
          socket.pause();
        } else socket.resume();
      },
    });
    sends = new WebSocketSends({
      sender: { accountKey: address.accountKey, account: frame.account, deviceId: address.deviceId, device },
      service: sendService(relay),
      reply: (text) => {
        if (socket.readyState === socket.OPEN) sendCorked(socket, text);
      },
      close: fail,
      maxFrameBytes: relay.config.limits.maxWebSocketFrameBytes,
      maxElements: relay.config.limits.maxEnvelopesPerSend,
      maxInFlight: relay.config.limits.maxInFlightSendsPerConnection,
      rate: frameRate,
      metrics: relay.metrics,
      now: relay.now,
      onError: (error) => request.log.error({ err: error }, 'websocket send failed'),
    });
    const current = pump;
    connection = {
      address,
      wake: (rows) => current.wake(rows),
      acknowledged: (seqs) => current.forget(seqs),
      close: (code, reason) => fail(code, reason),
    };
    relay.metrics.websockets.inc();
    relay.hub.attach(connection);
    // The send path's limits (§5.4): a client sends over this socket only when "ready" names them,
    // so a relay without websocket sends is never sent a binary frame (which it would answer with 4003).
    const { limits } = relay.config;
    socket.send(
      JSON.stringify({
        type: 'ready',
        push,
        sends: {
          maxFrameBytes: limits.maxWebSocketFrameBytes,
          maxEnvelopes: limits.maxEnvelopesPerSend,
          maxInFlight: limits.maxInFlightSendsPerConnection,
        },
      }),
    );
    current.wake();
  }

  // "push" offers the push formats (§5.2.2): a client names one in its auth frame only when offered, so an
  // older relay (no offer, and an auth schema without the field) is never sent an option it would refuse.
  socket.send(JSON.stringify({ type: 'challenge', challenge: toBase64Url(challenge), serverTime: relay.now(), push: PUSH_FORMATS }));
}
