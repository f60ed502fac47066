/**
 * Sending on the device's authenticated delivery websocket instead of a
 * signed POST /v1/messages. spec/09-relay.md §5.4.
 *
 * The socket was authenticated once (challenge-response, mailbox.ts), so a
 * send frame carries no signature, digest or nonce: one binary CBOR frame
 * per send, `["send", counter, ttl / null, [[account, deviceId, id,
 * envelope, certificateHash / null, frankingTag?], ...]]`, numbered 1, 2,
 * 3, ... on each connection, answered `sent` (committed) or `send-failed`
 * (the HTTP error body) under its counter. The results are the HTTP path's:
 * `{accepted}`, or the same RelayError code, status and details.
 *
 * When this path cannot answer, `send` resolves `undefined` and the caller
 * sends over HTTP with the same ids (the relay stores each (sender device,
 * recipient device, id) once, §4.3 step 1, so nothing is stored twice):
 * - no open socket, or the relay's "ready" did not name send limits (a
 *   relay without websocket sends: it is never sent a binary frame);
 * - the send does not fit a frame (`maxFrameBytes`, `maxEnvelopes`, a TTL
 *   outside 1..2^32-1), or `maxInFlight` frames already wait for their answers;
 * - the connection closed (or the client stopped) before the answer, or no
 *   answer came within the timeout: the frame may or may not be stored,
 *   and the HTTP retry under the same ids settles which;
 * - the relay refused the frame for this connection's sake, not the send's
 *   (a counter it did not expect, its in-flight bound): the HTTP path does
 *   not have those refusals, so the caller never sees them;
 * - for `retryAfterSeconds` after the relay refused a frame for its frame
 *   rate (that refusal is thrown, as HTTP's RATE_LIMITED would be): a
 *   device that goes on sending into rate refusals is closed (§5.4).
 */
import { type CborValue, encodeCbor } from '@parley/core';
import { RelayError } from './errors.ts';
import type { OutgoingEnvelope, WebSocketLike, WireSendResponse } from './types.ts';

/** What the relay's "ready" says about its send path (spec §5.4). */
export interface WebSocketSendLimits {
  readonly maxFrameBytes: number;
  readonly maxEnvelopes: number;
  readonly maxInFlight: number;
}

/** An envelope as the HTTP send takes it, with the franking tag carried unchanged when the caller has one (spec 14). */
export type WebSocketOutgoing = OutgoingEnvelope & { readonly frankingTag?: Uint8Array };

/** Counters are CBOR unsigned integers of Parley's subset: past this the connection sends no more (HTTP carries on). */
const MAX_COUNTER = 0xffffffff;

const OPEN = 1;

interface Pending {
  readonly socket: WebSocketLike;
  readonly settle: (answer: WireSendResponse | RelayError | undefined) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

function limitsOf(value: unknown): WebSocketSendLimits | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const positive = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n > 0;
  if (!positive(v['maxFrameBytes']) || !positive(v['maxEnvelopes']) || !positive(v['maxInFlight'])) return undefined;
  return { maxFrameBytes: v['maxFrameBytes'], maxEnvelopes: v['maxEnvelopes'], maxInFlight: v['maxInFlight'] };
}

/** The relay refused the frame because of this connection (counter, in-flight bound), not because of the send. */
function isConnectionRefusal(error: { code?: unknown; details?: Record<string, unknown> }): boolean {
  const details = error.details ?? {};
  if (error.code === 'AUTH_REPLAYED' || (error.code === 'MALFORMED' && 'expected' in details)) return true;
  return error.code === 'RATE_LIMITED' && typeof details['limit'] === 'number';
}

export class WebSocketSendChannel {
  readonly #timeoutMs: number;
  #socket: WebSocketLike | undefined;
  #limits: WebSocketSendLimits | undefined;
  #counter = 0;
  readonly #pending = new Map<number, Pending>();
  /**
   * Until when (ms since the epoch) the socket carries no send: the relay refused a frame for its per-device
   * frame rate and named a retryAfterSeconds. Sends go over HTTP meanwhile (its own limits), so this client
   * never keeps sending into a rate refusal, which the relay answers by closing (spec/09-relay.md §5.4).
   */
  #quietUntil = 0;

  /** `timeoutMs`: how long a frame waits for its answer before the send goes over HTTP instead. */
  constructor(options: { timeoutMs: number }) {
    this.#timeoutMs = options.timeoutMs;
  }

  /** Whether a send would go over the socket now (open, with limits, room in flight). */
  get usable(): boolean {
    const limits = this.#limits;
    return (
      this.#socket !== undefined &&
      this.#socket.readyState === OPEN &&
      limits !== undefined &&
      this.#pending.size < limits.maxInFlight &&
      Date.now() >= this.#quietUntil &&
      this.#counter < MAX_COUNTER
    );
  }

  /** Frames sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** The relay said "ready" on `socket`: a new connection, whose counter starts again at 1. */
  opened(socket: WebSocketLike, sends: unknown): void {
    this.closed(this.#socket);
    this.#socket = socket;
    this.#limits = limitsOf(sends);
    this.#counter = 0;
  }

  /** `socket` closed (or the receiver stopped): what waits on it goes over HTTP. */
  closed(socket: WebSocketLike | undefined): void {
    if (socket === undefined || socket !== this.#socket) return;
    this.#socket = undefined;
    this.#limits = undefined;
    for (const [counter, p] of [...this.#pending]) {
      this.#pending.delete(counter);
      clearTimeout(p.timer);
      p.settle(undefined);
    }
  }

  /** A text frame from `socket`: true when it was an answer to a send frame (handled here). */
  answer(socket: WebSocketLike, frame: Record<string, unknown>): boolean {
    if (frame['type'] !== 'sent' && frame['type'] !== 'send-failed') return false;
    const counter = frame['counter'];
    const pending = typeof counter === 'number' ? this.#pending.get(counter) : undefined;
    // An answer for a frame we gave up on (timed out, sent over HTTP since): nothing waits for it.
    if (!pending || pending.socket !== socket) return true;
    this.#pending.delete(counter as number);
    clearTimeout(pending.timer);
    if (frame['type'] === 'sent') {
      const accepted = frame['accepted'];
      pending.settle(typeof accepted === 'number' ? { accepted } : new RelayError(0, 'BAD_RESPONSE', 'a "sent" answer without a count'));
      return true;
    }
    const error = (typeof frame['error'] === 'object' && frame['error'] !== null ? frame['error'] : {}) as {
      statusCode?: unknown;
      code?: unknown;
      message?: unknown;
      details?: Record<string, unknown>;
    };
    if (isConnectionRefusal(error)) {
      pending.settle(undefined);
      return true;
    }
    const retryAfter = error.details?.['retryAfterSeconds'];
    if (error.code === 'RATE_LIMITED' && typeof retryAfter === 'number' && retryAfter > 0) {
      this.#quietUntil = Math.max(this.#quietUntil, Date.now() + retryAfter * 1000);
    }
    pending.settle(
      new RelayError(
        typeof error.statusCode === 'number' ? error.statusCode : 0,
        typeof error.code === 'string' ? error.code : 'BAD_RESPONSE',
        typeof error.message === 'string' ? error.message : 'send failed',
        typeof error.details === 'object' && error.details !== null ? error.details : {},
      ),
    );
    return true;
  }

  /**
   * Sends `envelopes` as one frame. Resolves with the relay's answer, throws the
   * RelayError an HTTP send would, or resolves undefined: then send over HTTP (same ids).
   */
  async send(envelopes: readonly WebSocketOutgoing[], options: { ttlSeconds?: number } = {}): Promise<WireSendResponse | undefined> {
    const socket = this.#socket;
    const limits = this.#limits;
    if (!this.usable || !socket || !limits || envelopes.length === 0 || envelopes.length > limits.maxEnvelopes) return undefined;
    // A TTL the frame cannot carry would close the connection unanswered (§5.4): HTTP answers it with its error.
    const ttl = options.ttlSeconds;
    if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= MAX_COUNTER)) return undefined;
    const counter = this.#counter + 1;
    const frame: CborValue = [
      'send',
      counter,
      options.ttlSeconds ?? null,
      envelopes.map((e): CborValue => {
        const element: CborValue[] = [e.accountKey, e.deviceId, e.id, e.envelope, e.certificateHash ?? null];
        if (e.frankingTag !== undefined) element.push(e.frankingTag);
        return element;
      }),
    ];
    const bytes = encodeCbor(frame);
    // The relay closes a connection on a frame past its limit (1009): such a send goes over HTTP.
    if (bytes.length > limits.maxFrameBytes) return undefined;
    this.#counter = counter;
    const answer = await new Promise<WireSendResponse | RelayError | undefined>((settle) => {
      const timer = setTimeout(() => {
        this.#pending.delete(counter);
        settle(undefined);
      }, this.#timeoutMs);
      this.#pending.set(counter, { socket, settle, timer });
      try {
        socket.send(bytes);
      } catch {
        this.#pending.delete(counter);
        clearTimeout(timer);
        settle(undefined);
      }
    });
    if (answer instanceof RelayError) throw answer;
    return answer;
  }
}
