/**
 * Sends on a device's authenticated websocket. spec/09-relay.md §5.4.
 *
 * The connection was authenticated once (challenge-response, §5.1), so a
 * send frame carries no signature and writes no replay record: what keeps a
 * frame from being accepted twice is the connection's counter (1, 2, 3, ...
 * exactly; anything else closes the connection) and, as over HTTP, the
 * (sender device, recipient device, id) idempotency record. Each frame is
 * answered under its counter once its envelopes are committed to disk
 * ("sent"), or with the same typed error an HTTP send would get
 * ("send-failed"); frames are handled concurrently, each answered as soon as
 * it is done (not necessarily in counter order).
 *
 * Bounds: a frame is at most maxWebSocketFrameBytes (ws closes 1009 past
 * it), at most maxInFlightSendsPerConnection frames wait for their commit
 * (a frame beyond is answered RATE_LIMITED and stores nothing), and a device
 * makes at most websocketSendsPerMinutePerDevice frames (RATE_LIMITED with
 * retryAfterSeconds). These are decided on the frame's head alone; its
 * elements are decoded only for a frame taken, within the items that many
 * legal elements hold (send-frame.ts), and a device that goes on sending into
 * rate refusals is closed (RATE_REFUSALS_PER_IN_FLIGHT).
 */
import type { Identity } from '../context.ts';
import { isRelayError, relayError } from '../errors.ts';
import type { TokenBuckets } from '../limits/token-buckets.ts';
import type { RelayMetrics } from '../metrics.ts';
import { type SendFrame, readElements, readSendHead, sendElements } from './send-frame.ts';
import { type SendService, tooManyEnvelopes } from './send.ts';

export interface WebSocketSendsOptions {
  readonly sender: Identity & { device: NonNullable<Identity['device']> };
  readonly service: SendService;
  /** Sends one JSON text frame to the device. */
  readonly reply: (frame: string) => void;
  /** Closes the connection: the frame stream can no longer be trusted. */
  readonly close: (code: number, reason: string) => void;
  readonly maxFrameBytes: number;
  readonly maxElements: number;
  readonly maxInFlight: number;
  /** Frames per device per minute, keyed by device (shared by all connections of the process). */
  readonly rate: TokenBuckets;
  readonly metrics: RelayMetrics;
  readonly now: () => number;
  /** An unexpected (non-relay) error: logged by the caller; the frame is answered INTERNAL. */
  readonly onError: (error: unknown) => void;
}

/** Close code for a broken frame stream (the relay's protocol-error code, hub.ts CloseCode.protocolError). */
const PROTOCOL_ERROR = 4003;

/**
 * Frames refused for rate (the per-device rate or the in-flight bound) in a row, as a multiple of
 * maxInFlightSendsPerConnection, after which the connection is closed (4003; metric
 * websocket_client_errors{code="SEND_RATE_FLOOD"}). spec/09-relay.md §5.4.
 *
 * Why: a refused frame still costs the relay its head, an answer and a write; a device that does not back
 * off would keep that going at whatever rate TCP allows. Why 2: an honest client has at most maxInFlight
 * frames unanswered, so when the first refusal reaches it at most maxInFlight more are on their way (each
 * refused); twice that leaves room for sends started before it read the refusal. A frame taken resets it.
 */
export const RATE_REFUSALS_PER_IN_FLIGHT = 2;

export class WebSocketSends {
  readonly #o: WebSocketSendsOptions;
  readonly #rateKey: string;
  #expected = 1;
  #inFlight = 0;
  /** Frames refused for rate since the last frame taken (RATE_REFUSALS_PER_IN_FLIGHT). */
  #refusedInARow = 0;

  constructor(options: WebSocketSendsOptions) {
    this.#o = options;
    this.#rateKey = `${options.sender.account}:${options.sender.deviceId}`;
  }

  /** Frames received and not yet answered. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Handles one binary frame. */
  receive(bytes: Uint8Array): void {
    const o = this.#o;
    let frame: SendFrame;
    try {
      // The head only: a frame refused below costs these few bytes, not its elements.
      frame = readSendHead(bytes, o.maxFrameBytes);
    } catch {
      o.metrics.sendsRejected.inc({ code: 'MALFORMED' });
      o.close(PROTOCOL_ERROR, 'malformed send frame');
      return;
    }
    const { counter } = frame;
    if (counter !== this.#expected) {
      // A repeated (or older) counter is a replayed frame; a skipped one a broken client. Either way the stream is done.
      const replayed = counter < this.#expected;
      o.metrics.sendsRejected.inc({ code: replayed ? 'AUTH_REPLAYED' : 'MALFORMED' });
      this.#fail(
        counter,
        replayed
          ? relayError('AUTH_REPLAYED', `send counter ${counter} was already used on this connection`, { expected: this.#expected })
          : relayError('MALFORMED', `send counter ${counter} skips ahead`, { expected: this.#expected }),
      );
      o.close(PROTOCOL_ERROR, 'send counter out of order');
      return;
    }
    this.#expected++;
    if (this.#inFlight >= o.maxInFlight) {
      o.metrics.rateLimited.inc({ limit: 'websocket_sends_in_flight' });
      this.#refuse(
        counter,
        relayError('RATE_LIMITED', `at most ${o.maxInFlight} send frames waiting for an answer`, {
          limit: o.maxInFlight,
          retryAfterSeconds: 1,
        }),
      );
      return;
    }
    const rate = o.rate.take(this.#rateKey, 1, o.now());
    if (!rate.ok) {
      o.metrics.rateLimited.inc({ limit: 'websocket_sends' });
      this.#refuse(
        counter,
        relayError('RATE_LIMITED', 'too many send frames; retry later', { retryAfterSeconds: Math.ceil(rate.retryAfterMs / 1000) }),
      );
      return;
    }
    this.#refusedInARow = 0;
    // Past maxElements the frame is answered from its head; otherwise its elements are decoded within the
    // items that many legal elements hold. A list the decoder refuses is no frame a client makes: 4003.
    let list: readonly unknown[] | undefined;
    if (frame.count <= o.maxElements) {
      try {
        list = readElements(frame, o.maxFrameBytes);
      } catch (error) {
        o.metrics.sendsRejected.inc({ code: isRelayError(error) ? error.code : 'MALFORMED' });
        o.close(PROTOCOL_ERROR, 'malformed send frame');
        return;
      }
    }
    this.#inFlight++;
    let sending: Promise<number>;
    try {
      if (list === undefined) throw tooManyEnvelopes(o.maxElements);
      const elements = sendElements(list, o.maxElements);
      sending = o.service.send({ sender: o.sender, elements, ...(frame.ttlSeconds === undefined ? {} : { ttlSeconds: frame.ttlSeconds }) });
    } catch (error) {
      sending = Promise.reject(error);
    }
    sending.then(
      (accepted) => {
        this.#inFlight--;
        // Two integers: written directly, the same text JSON.stringify gives (one answer per frame).
        o.reply(`{"type":"sent","counter":${counter},"accepted":${accepted}}`);
      },
      (error: unknown) => {
        this.#inFlight--;
        if (isRelayError(error)) {
          if (error.code === 'MALFORMED' || error.code === 'OVERSIZED' || error.code === 'TOO_MANY_ENVELOPES') {
            o.metrics.sendsRejected.inc({ code: error.code });
          }
          return this.#fail(counter, error);
        }
        o.onError(error);
        this.#fail(counter, relayError('INTERNAL', 'internal error'));
      },
    );
  }

  /**
   * A frame refused for the rate or the in-flight bound: answered RATE_LIMITED; the
   * RATE_REFUSALS_PER_IN_FLIGHT x maxInFlight-th refusal in a row (no frame taken between) closes the connection.
   */
  #refuse(counter: number, error: ReturnType<typeof relayError>): void {
    const o = this.#o;
    o.metrics.sendsRejected.inc({ code: 'RATE_LIMITED' });
    this.#fail(counter, error);
    if (++this.#refusedInARow < RATE_REFUSALS_PER_IN_FLIGHT * o.maxInFlight) return;
    o.metrics.websocketClientErrors.inc({ code: 'SEND_RATE_FLOOD' });
    o.close(PROTOCOL_ERROR, 'send frames kept coming past the rate limit');
  }

  #fail(counter: number, error: ReturnType<typeof relayError>): void {
    const details = (error as { details?: unknown }).details;
    this.#o.reply(
      JSON.stringify({
        type: 'send-failed',
        counter,
        error: { statusCode: error.statusCode, code: error.code, message: error.message, ...(details === undefined ? {} : { details }) },
      }),
    );
  }
}
