/**
 * The device's delivery websocket: authenticates to the relay's challenge,
 * hands envelopes to the application one at a time and in order,
 * acknowledges each once the handler finished, reports "drained" after the
 * backlog, and reconnects with exponential backoff and jitter.
 * spec/09-relay.md §5.
 *
 * Delivery is at-least-once: an envelope whose acknowledgement was lost
 * comes again on the next connection. The receiver remembers recent seqs
 * and acknowledges such repeats without calling the handler again.
 *
 * A handler that throws (the SDK throws only when its own store failed,
 * spec/10-client.md §4.2.2) leaves its envelope unacknowledged. The relay
 * sends again only on a new connection, and holds back what follows once
 * its in-flight window is full, so the receiver stops handling that
 * connection's envelopes, closes it, and reconnects after a delay that grows
 * with each consecutive handler failure: the envelope comes again, and the
 * SDK parks it after a bounded number of tries.
 *
 * Push format (spec §5.2.2): when the relay's challenge offers "cbor" (and
 * `binaryPush` is not false), the auth frame asks for it, and envelopes come
 * as binary frames (push-frame.ts) that are acknowledged with binary ack
 * frames. A relay that offers nothing is asked for nothing and speaks JSON,
 * so this receiver works with relays from before the option.
 */
import { backoffDelay } from './backoff.ts';
import { decodeDelivered } from './decode.ts';
import { fromBase64Url, toBase64Url } from './encoding.ts';
import { RelayError } from './errors.ts';
import { MAX_ACKS_PER_FRAME, binaryFrame, decodeEnvelopeFrame, encodeAckFrame } from './push-frame.ts';
import { type RelaySigner, WEBSOCKET_LABEL, websocketStatementBody } from './signing.ts';
import type { ReceivedEnvelope, WebSocketConstructor, WebSocketLike, WireDeliveredMessage } from './types.ts';
import type { WebSocketSendChannel } from './websocket-sends.ts';

export type MailboxState = 'connecting' | 'open' | 'reconnecting' | 'stopped';

export interface MailboxHandlers {
  /**
   * Called once per envelope, in relay order. The envelope is acknowledged
   * (deleted from the relay) after the returned promise resolves; if it
   * throws, the envelope is not acknowledged: the connection is closed and
   * reopened after a growing delay, and the envelope comes back.
   */
  onEnvelope(envelope: ReceivedEnvelope): void | Promise<void>;
  /** Every envelope stored when the connection opened has been handled. Once per connection. */
  onDrained?(): void;
  onStateChange?(state: MailboxState, detail: { code?: number; reason?: string; delayMs?: number }): void;
  onError?(error: unknown): void;
}

export interface MailboxOptions {
  /** First reconnect delay ceiling (default 250 ms); doubles per failure. */
  readonly baseDelayMs?: number;
  /** Largest reconnect delay ceiling (default 30 s). */
  readonly maxDelayMs?: number;
  /** How many handled seqs to remember for deduplication (default 2000). */
  readonly rememberSeqs?: number;
  readonly random?: () => number;
  /**
   * Ask for binary CBOR push frames when the relay offers them (default
   * true): raw envelope bytes instead of base64 in JSON, a fraction of the
   * CPU per envelope on the device (spec/09-relay.md §5.2.2). False keeps
   * JSON frames.
   */
  readonly binaryPush?: boolean;
}

/** Our close code when a handler failed: reconnect so the relay delivers the envelope again. */
const HANDLER_FAILED = 4000;

/** Close codes after which reconnecting cannot help (spec §5.3). */
const TERMINAL = new Map<number, string>([
  [4001, 'WS_AUTH_FAILED'],
  [4002, 'WS_REPLACED'],
  [4004, 'WS_DEVICE_REMOVED'],
]);

const OPEN = 1;

interface Endpoint {
  readonly url: string;
  readonly host: string;
  readonly signer: RelaySigner;
  readonly WebSocket: WebSocketConstructor;
  /** Sends over this socket once it is ready (websocket-sends.ts); its answers arrive here. */
  readonly sends?: WebSocketSendChannel;
}

export class MailboxReceiver {
  readonly #endpoint: Endpoint;
  readonly #handlers: MailboxHandlers;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #remember: number;
  readonly #random: () => number;
  readonly #binaryPush: boolean;
  #socket: WebSocketLike | undefined;
  /** The relay's "ready" on the current socket said "cbor": acknowledgements go as binary frames too. */
  #binaryAcks = false;
  #state: MailboxState = 'stopped';
  #stopped = true;
  #failures = 0;
  /** Handler failures in a row (reset by a handled envelope): the delay before re-delivery grows with it. */
  #handlerFailures = 0;
  /** The connection being closed after a handler failure: its remaining envelopes are left for the next one. */
  #retiring: WebSocketLike | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #handled = new Set<number>();
  #pendingAcks: number[] = [];
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #openWaiters: (() => void)[] = [];

  constructor(endpoint: Endpoint, handlers: MailboxHandlers, options: MailboxOptions = {}) {
    this.#endpoint = endpoint;
    this.#handlers = handlers;
    this.#baseDelay = options.baseDelayMs ?? 250;
    this.#maxDelay = options.maxDelayMs ?? 30_000;
    this.#remember = options.rememberSeqs ?? 2000;
    this.#random = options.random ?? Math.random;
    this.#binaryPush = options.binaryPush ?? true;
  }

  get state(): MailboxState {
    return this.#state;
  }

  /** Connects (and keeps reconnecting until `stop`). */
  start(): this {
    if (!this.#stopped) return this;
    this.#stopped = false;
    this.#connect();
    return this;
  }

  /** Resolves the next time the relay says "ready". */
  whenOpen(): Promise<void> {
    if (this.#state === 'open') return Promise.resolve();
    return new Promise((resolve) => this.#openWaiters.push(resolve));
  }

  /** Closes and stops reconnecting. Envelopes being handled finish, unacknowledged ones stay on the relay. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#flushAcks();
    // Sends waiting on this socket go over HTTP now rather than after the close handshake.
    this.#endpoint.sends?.closed(this.#socket);
    this.#socket?.close(1000, 'client stopped');
    this.#setState('stopped', {});
  }

  #setState(state: MailboxState, detail: { code?: number; reason?: string; delayMs?: number }): void {
    this.#state = state;
    this.#handlers.onStateChange?.(state, detail);
    if (state === 'open') for (const resolve of this.#openWaiters.splice(0)) resolve();
  }

  #connect(): void {
    this.#setState('connecting', {});
    let socket: WebSocketLike;
    try {
      socket = new this.#endpoint.WebSocket(this.#endpoint.url);
    } catch (error) {
      this.#handlers.onError?.(error);
      this.#scheduleReconnect(1006, 'could not connect');
      return;
    }
    this.#socket = socket;
    this.#binaryAcks = false;
    // Browsers hand binary frames over as Blobs unless told otherwise (ws: Buffers, left as they are).
    if (socket.binaryType === 'blob') socket.binaryType = 'arraybuffer';
    socket.onmessage = (event) => this.#onFrame(socket, event.data);
    socket.onerror = () => {
      // The close event follows with the code; nothing to do here.
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#pendingAcks = [];
      this.#endpoint.sends?.closed(socket);
      if (this.#stopped) return;
      if (this.#retiring === socket) {
        this.#retiring = undefined;
        this.#scheduleReconnect(HANDLER_FAILED, 'handler failed', this.#handlerFailures);
        return;
      }
      const terminal = TERMINAL.get(event.code);
      if (terminal) {
        this.#stopped = true;
        this.#setState('stopped', { code: event.code, reason: event.reason });
        this.#handlers.onError?.(new RelayError(0, terminal, event.reason || 'connection closed by the relay'));
        return;
      }
      this.#scheduleReconnect(event.code, event.reason);
    };
  }

  #scheduleReconnect(code: number, reason: string, attempt = ++this.#failures): void {
    const delayMs = backoffDelay(attempt, this.#baseDelay, this.#maxDelay, this.#random);
    this.#setState('reconnecting', { code, reason, delayMs });
    this.#timer = setTimeout(() => {
      if (!this.#stopped) this.#connect();
    }, delayMs);
  }

  #onFrame(socket: WebSocketLike, data: unknown): void {
    const binary = binaryFrame(data);
    if (binary) {
      this.#onBinaryFrame(socket, binary);
      return;
    }
    let frame: { type?: unknown } & Record<string, unknown>;
    try {
      frame = JSON.parse(typeof data === 'string' ? data : String(data));
    } catch {
      this.#handlers.onError?.(new RelayError(0, 'BAD_RESPONSE', 'websocket frame is not JSON'));
      return;
    }
    switch (frame.type) {
      case 'challenge': {
        const { signer, host } = this.#endpoint;
        const challenge = fromBase64Url(String(frame['challenge']));
        const signature = signer.signStatement(WEBSOCKET_LABEL, websocketStatementBody(host, challenge, signer));
        // Only an offered format is named: an older relay refuses an auth frame with fields it does not know.
        const offers = frame['push'];
        const binary = this.#binaryPush && Array.isArray(offers) && offers.includes('cbor');
        socket.send(
          JSON.stringify({
            type: 'auth',
            account: toBase64Url(signer.accountKey),
            deviceId: signer.deviceId,
            signature: toBase64Url(signature),
            ...(binary ? { push: 'cbor' } : {}),
          }),
        );
        return;
      }
      case 'ready':
        this.#failures = 0;
        this.#binaryAcks = frame['push'] === 'cbor';
        this.#endpoint.sends?.opened(socket, frame['sends']);
        this.#setState('open', {});
        return;
      case 'envelope': {
        let envelope: ReceivedEnvelope;
        try {
          envelope = decodeDelivered(frame as unknown as WireDeliveredMessage);
        } catch {
          // Without a readable seq it cannot even be acknowledged; the relay's TTL bounds how long it stays.
          this.#handlers.onError?.(new RelayError(0, 'BAD_RESPONSE', 'websocket envelope frame does not decode'));
          return;
        }
        this.#accept(socket, envelope);
        return;
      }
      case 'drained':
        this.#chain = this.#chain.then(() => {
          if (this.#socket === socket) this.#handlers.onDrained?.();
        });
        return;
      default:
        if (this.#endpoint.sends?.answer(socket, frame)) return;
        this.#handlers.onError?.(new RelayError(0, 'BAD_RESPONSE', 'unknown websocket frame type'));
    }
  }

  /**
   * A binary frame: an envelope (§5.2.2). One that does not decode is reported (BAD_PUSH_FRAME) and
   * skipped, and the frames after it are handled as usual: as with a JSON frame that does not decode,
   * it is not acknowledged, so it stays on the relay until its TTL (a relay's fault, not the device's).
   */
  #onBinaryFrame(socket: WebSocketLike, bytes: Uint8Array): void {
    let envelope: ReceivedEnvelope;
    try {
      envelope = decodeEnvelopeFrame(bytes);
    } catch (error) {
      this.#handlers.onError?.(error);
      return;
    }
    this.#accept(socket, envelope);
  }

  /** A decoded envelope joins the in-order chain of handler calls. */
  #accept(socket: WebSocketLike, envelope: ReceivedEnvelope): void {
    // A malformed delivery record is accounted for here and handed on (decode.ts): the SDK refuses its message.
    if (envelope.deliveryError)
      this.#handlers.onError?.(new RelayError(0, envelope.deliveryError, 'delivery record without the form of one'));
    this.#chain = this.#chain.then(() => this.#deliver(socket, envelope));
  }

  async #deliver(socket: WebSocketLike, envelope: ReceivedEnvelope): Promise<void> {
    if (this.#retiring === socket || this.#socket !== socket) return;
    if (!this.#handled.has(envelope.seq)) {
      try {
        await this.#handlers.onEnvelope(envelope);
      } catch (error) {
        this.#handlers.onError?.(error);
        this.#retire(socket);
        return;
      }
      this.#handlerFailures = 0;
      this.#handled.add(envelope.seq);
      if (this.#handled.size > this.#remember) this.#handled.delete(this.#handled.values().next().value as number);
    }
    if (this.#socket !== socket) return;
    this.#pendingAcks.push(envelope.seq);
    this.#ackTimer ??= setTimeout(() => this.#flushAcks(), 0);
  }

  /** Sends the acks so far, then closes `socket` so the failed envelope comes again on the next connection. */
  #retire(socket: WebSocketLike): void {
    if (this.#socket !== socket || this.#retiring === socket) return;
    this.#handlerFailures++;
    this.#retiring = socket;
    this.#flushAcks();
    socket.close(HANDLER_FAILED, 'handler failed');
  }

  #flushAcks(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    const socket = this.#socket;
    if (!socket || socket.readyState !== OPEN || this.#pendingAcks.length === 0) return;
    const seqs = this.#pendingAcks;
    this.#pendingAcks = [];
    for (let i = 0; i < seqs.length; i += MAX_ACKS_PER_FRAME) {
      const part = seqs.slice(i, i + MAX_ACKS_PER_FRAME);
      socket.send(this.#binaryAcks ? encodeAckFrame(part) : JSON.stringify({ type: 'ack', seqs: part }));
    }
  }
}
