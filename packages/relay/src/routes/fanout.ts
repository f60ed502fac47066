/**
 * Group fan-out: one envelope (a sender-key group message, the same bytes
 * for every member device) uploaded once with its recipient list, stored
 * once, and referenced from each recipient's mailbox. Everything else is a
 * send's: the exact device-list check per recipient account, certificate
 * hashes, mailbox limits and shares, idempotency by client id per recipient
 * device, the per-recipient byte rate, and the answers. Each recipient
 * fetches (or is pushed) an envelope of the same shape as a single send's.
 * spec/09-relay.md §4.3.1.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { deviceOf } from '../auth/authenticate.ts';
import { relayError } from '../errors.ts';
import { frankEnvelopes } from '../franking/delivery.ts';
import { fromBase64Url } from '../http/encoding.ts';
import { senderShare } from '../limits/sender-share.ts';
import type { RateBudget } from '../limits/rate-budgets.ts';
import { FanoutBody, SendResponse, errorResponses } from '../schemas.ts';
import type { FanoutRecipient } from '../storage/types.ts';
import { answerSend, storeWithRecipientRates } from './send-answers.ts';

/** `recipientBytes`: the byte-rate buckets the send route spends from, so the two routes share one budget. */
export function fanoutRoute(instance: FastifyInstance, recipientBytes: RateBudget): void {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const { limits } = relay.config;

  app.post(
    '/v1/messages/fanout',
    {
      // The replay record is written in the fan-out's own transaction: one commit per fan-out.
      config: { auth: 'device', replayWithWrite: true },
      schema: {
        summary: 'Send one envelope to many devices (a group message), stored once',
        description:
          "The envelope is stored once and each recipient device's mailbox refers to it; it is deleted when the last recipient acknowledged it, it expired, or its last recipient device was removed. Checks and answers are those of POST /v1/messages with this envelope for every recipient: 409 MISMATCHED_DEVICES unless each recipient account's devices (but the sender's own) are named exactly, 410 STALE_DEVICES, 507 MAILBOX_FULL, 429 RATE_LIMITED; a retry with the same id stores nothing and answers the same. 413 TOO_MANY_RECIPIENTS above the relay's maxRecipientsPerFanout.",
        tags: ['messages'],
        body: FanoutBody,
        response: { 200: SendResponse, ...errorResponses(409, 410, 507) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const body = request.body;
      if (body.recipients.length > limits.maxRecipientsPerFanout) {
        throw relayError('TOO_MANY_RECIPIENTS', `at most ${limits.maxRecipientsPerFanout} recipient devices per fan-out`, {
          limit: limits.maxRecipientsPerFanout,
        });
      }
      const envelope = fromBase64Url(body.envelope, 'envelope', { max: limits.maxEnvelopeBytes });
      if (envelope.length === 0) throw relayError('MALFORMED', 'envelope: empty');
      const seen = new Set<string>();
      const bytesPerAccount = new Map<string, number>();
      const recipients = body.recipients.map((r, i): FanoutRecipient => {
        const target = `${r.account}:${r.deviceId}`;
        if (seen.has(target)) throw relayError('MALFORMED', `recipients[${i}]: the same device twice`);
        seen.add(target);
        // What each recipient account receives: the envelope once per device named.
        bytesPerAccount.set(r.account, (bytesPerAccount.get(r.account) ?? 0) + envelope.length);
        return {
          recipient: { accountKey: fromBase64Url(r.account, `recipients[${i}].account`, 32), deviceId: r.deviceId },
          ...(r.certificateHash === undefined
            ? {}
            : { certificateHash: fromBase64Url(r.certificateHash, `recipients[${i}].certificateHash`, 32) }),
        };
      });

      const now = relay.now();
      if (body.frankingTag !== undefined) {
        // One tag for the group message, one frank (and envelope id) per recipient device.
        const frankingTag = fromBase64Url(body.frankingTag, 'frankingTag', 32);
        const deliveries = await frankEnvelopes(
          relay.frankKeys,
          relay.provider,
          me,
          recipients.map((r) => ({ recipient: r.recipient, frankingTag })),
          now,
        );
        for (const [i, r] of recipients.entries()) recipients[i] = { ...r, delivery: deliveries[i] as Uint8Array };
      }
      const ttlSeconds = Math.min(body.ttlSeconds ?? relay.config.messageTtlSeconds, relay.config.messageTtlSeconds);
      const result = await storeWithRecipientRates(relay, recipientBytes, me.account, bytesPerAccount, now, (rates) =>
        relay.storage.storeFanout({
          sender: me,
          clientId: body.id,
          envelope,
          recipients,
          now,
          expiresAt: now + ttlSeconds * 1000,
          maxQueuedMessages: limits.maxQueuedMessagesPerDevice,
          maxQueuedBytes: limits.maxQueuedBytesPerDevice,
          ...senderShare(limits),
          ...(request.replayRecord ? { replay: request.replayRecord } : {}),
          ...(rates ? { rates } : {}),
        }),
      );
      return answerSend(relay, result, {
        envelopes: recipients.length,
        bytes: envelope.length * recipients.length,
        onStored: () => relay.metrics.fanoutsStored.inc(),
      });
    },
  );
}
