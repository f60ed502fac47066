/**
 * The delivery websocket: one per device. spec/09-relay.md §5.
 *
 *   relay  -> {"type":"challenge","challenge":<32 bytes>,"serverTime":ms}
 *   device -> {"type":"auth","account":..,"deviceId":..,"signature":..}
 *   relay  -> {"type":"ready"}
 *   relay  -> {"type":"envelope",...} (backlog, oldest first) ... {"type":"drained"} ... new envelopes
 *   device -> {"type":"ack","seqs":[...]}
 *
 * The signature covers the challenge and the Host the device connected to,
 * so it is useless on any other connection or relay. A second connection of
 * the same device closes the first (4002).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { websocketSignedBytes } from '../auth/canonical.ts';
import { CloseCode, type MailboxConnection } from '../delivery/hub.ts';
import { MailboxPump } from '../delivery/mailbox-pump.ts';
import { markAuthenticated } from '../front-door/connections.ts';
import { fromBase64Url, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { ErrorResponse, WsAckFrame, WsAuthFrame } from '../schemas.ts';
import type { DeviceAddress } from '../storage/types.ts';

/** Ping interval; a connection that missed a whole interval's pong is dropped. */
const HEARTBEAT_MS = 30_000;

const isAuthFrame = TypeCompiler.Compile(WsAuthFrame);
const isAckFrame = TypeCompiler.Compile(WsAckFrame);

export async function websocketRoutes(app: FastifyInstance): Promise<void> {
  app.route({
    method: 'GET',
    url: '/v1/websocket',
    config: { auth: 'none' },
    schema: {
      summary: 'Delivery websocket: challenge-response auth, then pushed envelopes with acknowledgements',
      description:
        'Upgrade to a websocket (101). Authentication happens inside the socket (browsers cannot sign headers on an upgrade). Frames and close codes: spec/09-relay.md §5. A plain GET answers 426.',
      tags: ['messages'],
      security: [],
      response: { 426: ErrorResponse, 429: ErrorResponse },
    },
    handler: async () => {
      throw relayError('UPGRADE_REQUIRED', 'this route speaks websocket only');
    },
    wsHandler: (socket, request) => handleConnection(app, socket, request),
  });
}

function handleConnection(app: FastifyInstance, socket: WebSocket, request: FastifyRequest): void {
  const { relay } = app;
  if (relay.closing) {
    socket.close(CloseCode.tryAgainLater, 'relay shutting down');
    return;
  }
  const challenge = relay.provider.random(32);
  let pump: MailboxPump | undefined;
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

  socket.on('message', (data, isBinary) => {
    let frame: unknown;
    try {
      frame = isBinary ? undefined : JSON.parse(data.toString());
    } catch {
      frame = undefined;
    }
    if (!pump) {
      if (authenticating) return fail(CloseCode.protocolError, 'wait for "ready" before sending');
      if (!isAuthFrame.Check(frame)) return fail(CloseCode.protocolError, 'expected an auth frame');
      authenticating = true;
      void authenticate(frame).catch((error) => {
        request.log.error({ err: error }, 'websocket authentication failed unexpectedly');
        fail(CloseCode.authFailed, 'authentication failed');
      });
      return;
    }
    if (!isAckFrame.Check(frame)) return fail(CloseCode.protocolError, 'expected an ack frame');
    const current = pump;
    current.ack(frame.seqs).then(
      (n) => relay.metrics.envelopesAcked.inc(n),
      (error) => {
        request.log.error({ err: error }, 'ack failed');
        fail(1011, 'internal error');
      },
    );
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

  async function authenticate(frame: { account: string; deviceId: number; signature: string }): Promise<void> {
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
    if (!device || !relay.provider.backend.ed25519Verify(device.signingKey, signed, signature)) {
      relay.metrics.authFailures.inc({ code: device ? 'WS_BAD_SIGNATURE' : 'WS_UNKNOWN_DEVICE' });
      return fail(CloseCode.authFailed, device ? 'signature does not verify' : 'unknown device');
    }
    if (socket.readyState !== socket.OPEN) return;
    clearTimeout(authTimer);
    markAuthenticated(request.raw.socket);
    pump = new MailboxPump({
      address,
      storage: relay.storage,
      send: (text) => socket.send(text),
      maxInFlight: relay.config.limits.maxInFlightPerConnection,
      maxInFlightBytes: relay.config.limits.maxInFlightBytesPerConnection,
      now: relay.now,
      onPushed: (n) => relay.metrics.envelopesPushed.inc(n),
      onError: (error) => {
        request.log.error({ err: error }, 'delivery failed');
        fail(1011, 'internal error');
      },
    });
    const current = pump;
    connection = {
      address,
      wake: () => current.wake(),
      acknowledged: (seqs) => current.forget(seqs),
      close: (code, reason) => fail(code, reason),
    };
    relay.metrics.websockets.inc();
    relay.hub.attach(connection);
    socket.send(JSON.stringify({ type: 'ready' }));
    current.wake();
  }

  socket.send(JSON.stringify({ type: 'challenge', challenge: toBase64Url(challenge), serverTime: relay.now() }));
}
