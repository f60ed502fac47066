/**
 * Accepting a send: the checks and the one durable write shared by both
 * ways a device sends (POST /v1/messages and a send frame on its
 * authenticated websocket). spec/09-relay.md §4.3 and §5.4.
 *
 * Both paths hand over envelopes already decoded to bytes; everything from
 * here on (duplicate targets, sizes, the per-recipient byte rate, the
 * storage transaction, and the answer: metrics, waking the recipients'
 * websockets, routes/send-answers.ts) is one code path, so the two cannot
 * drift apart. Every refusal is a typed relay error with the same code and
 * details on either path.
 */
import type { Identity, RelayContext } from '../context.ts';
import { toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { type FrankTarget, frankEnvelopes } from '../franking/delivery.ts';
import { senderShare } from '../limits/sender-share.ts';
import { type RateBudget, rateBudget } from '../limits/rate-budgets.ts';
import { answerSend, storeWithRecipientRates } from '../routes/send-answers.ts';
import type { OutgoingEnvelope, SeenRequest } from '../storage/types.ts';

const MINUTE = 60_000;

/** The refusal of a send with more than `limit` envelopes (maxEnvelopesPerSend), on every send path. */
export function tooManyEnvelopes(limit: number) {
  return relayError('TOO_MANY_ENVELOPES', `at most ${limit} envelopes per send`, { limit });
}

/** One element of a send, decoded: the same fields on the HTTP and websocket paths. */
export interface SendElement {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly clientId: string;
  readonly envelope: Uint8Array;
  readonly certificateHash?: Uint8Array;
  /** The sender's franking tag (32 bytes): the relay franks the envelope at acceptance (spec 14). */
  readonly frankingTag?: Uint8Array;
}

export interface SendRequest {
  readonly sender: Identity & { device: NonNullable<Identity['device']> };
  readonly elements: readonly SendElement[];
  readonly ttlSeconds?: number;
  /**
   * The signed request's replay record, written in the same transaction as
   * the envelopes (HTTP sends): one durable write per send instead of two.
   */
  readonly replay?: SeenRequest;
}

export class SendService {
  readonly #relay: RelayContext;
  /**
   * Envelope bytes per (sender account, recipient account) and minute, shared
   * by every way of sending (the group fan-out route too): one sender
   * spending the budget must not rate-limit everyone else who writes to that
   * recipient.
   */
  readonly recipientBytes: RateBudget;

  constructor(relay: RelayContext) {
    this.#relay = relay;
    // Shared by every process on the storage (limits/rate-budgets.ts).
    this.recipientBytes = rateBudget(relay.storage, 'recipient-bytes', {
      capacity: relay.config.rateLimits.messageBytesPerMinutePerRecipient,
      windowMs: MINUTE,
    });
  }

  /** Stores the send durably, or throws the relay error that refuses it. Resolves with the number of elements. */
  async send(request: SendRequest): Promise<number> {
    const relay = this.#relay;
    const { limits } = relay.config;
    const me = request.sender;
    const { elements } = request;
    if (elements.length > limits.maxEnvelopesPerSend) throw tooManyEnvelopes(limits.maxEnvelopesPerSend);
    const seen = new Set<string>();
    const bytesPerAccount = new Map<string, number>();
    let totalBytes = 0;
    const frankTargets: FrankTarget[] = [];
    const franked: number[] = [];
    const envelopes = elements.map((m, i): OutgoingEnvelope => {
      const account = toBase64Url(m.accountKey);
      const target = `${account}:${m.deviceId}`;
      if (seen.has(target)) throw relayError('MALFORMED', `messages[${i}]: a second envelope for the same device`);
      seen.add(target);
      if (m.envelope.length === 0) throw relayError('MALFORMED', `messages[${i}].envelope: empty`);
      if (m.envelope.length > limits.maxEnvelopeBytes) {
        throw relayError('OVERSIZED', `messages[${i}].envelope: ${m.envelope.length} bytes exceeds ${limits.maxEnvelopeBytes}`);
      }
      bytesPerAccount.set(account, (bytesPerAccount.get(account) ?? 0) + m.envelope.length);
      totalBytes += m.envelope.length;
      if (m.frankingTag !== undefined) {
        frankTargets.push({ recipient: { accountKey: m.accountKey, deviceId: m.deviceId }, frankingTag: m.frankingTag });
        franked.push(i);
      }
      return {
        recipient: { accountKey: m.accountKey, deviceId: m.deviceId },
        clientId: m.clientId,
        envelope: m.envelope,
        ...(m.certificateHash === undefined ? {} : { certificateHash: m.certificateHash }),
      };
    });

    const now = relay.now();
    // Franked at acceptance (acceptedAt = the stored server timestamp); a retried
    // client id stores nothing, so the first delivery record stays the one delivered.
    // (Only when something is franked: a promise less per send otherwise.)
    if (frankTargets.length > 0) {
      const deliveries = await frankEnvelopes(relay.frankKeys, relay.provider, me, frankTargets, now);
      for (const [n, i] of franked.entries())
        envelopes[i] = { ...(envelopes[i] as OutgoingEnvelope), delivery: deliveries[n] as Uint8Array };
    }
    const ttlSeconds = Math.min(request.ttlSeconds ?? relay.config.messageTtlSeconds, relay.config.messageTtlSeconds);
    const result = await storeWithRecipientRates(relay, this.recipientBytes, me.account, bytesPerAccount, now, (rates) =>
      relay.storage.storeMessages({
        sender: me,
        envelopes,
        now,
        expiresAt: now + ttlSeconds * 1000,
        maxQueuedMessages: limits.maxQueuedMessagesPerDevice,
        maxQueuedBytes: limits.maxQueuedBytesPerDevice,
        ...senderShare(limits),
        ...(request.replay ? { replay: request.replay } : {}),
        ...(rates ? { rates } : {}),
      }),
    );
    return answerSend(relay, result, { envelopes: envelopes.length, bytes: totalBytes }).accepted;
  }
}

const services = new WeakMap<RelayContext, SendService>();

/** The relay's one SendService (its byte-rate buckets are shared by both send paths). */
export function sendService(relay: RelayContext): SendService {
  let service = services.get(relay);
  if (!service) {
    service = new SendService(relay);
    services.set(relay, service);
  }
  return service;
}
