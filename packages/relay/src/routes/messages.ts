/**
 * Messages: send (one envelope per recipient device, idempotent by client
 * id, device-list checked), fetch and acknowledge over HTTP.
 * spec/09-relay.md §4.3-§4.4.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { deviceOf } from '../auth/authenticate.ts';
import { deliveredMessage } from '../delivery/mailbox-pump.ts';
import { type SendElement, sendService } from '../delivery/send.ts';
import { fromBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { registerQuotaMetrics } from '../limits/quota-metrics.ts';
import { AckBody, FetchResponse, MAX_FETCH_LIMIT, SendBody, SendResponse, errorResponses } from '../schemas.ts';
import { fanoutRoute } from './fanout.ts';

/** Query integers travel as strings; the schema only lets digits through. */
const QueryInt = (description: string) => Type.String({ pattern: '^[0-9]{1,15}$', description });

export async function messageRoutes(instance: FastifyInstance): Promise<void> {
  // Request params, query and body are typed from each route's schema (validated before the handler runs).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const { limits } = relay.config;
  // The mailbox quotas live here, so their near-limit gauge is registered here too.
  registerQuotaMetrics(relay);
  // HTTP and websocket sends: one service, one set of per-recipient byte-rate buckets.
  const sends = sendService(relay);

  app.post(
    '/v1/messages',
    {
      config: { auth: 'device', replayWithWrite: true },
      schema: {
        summary: 'Send one envelope to each device of one or more recipient accounts',
        description:
          "All or nothing. 507 MAILBOX_FULL when a recipient mailbox, or this sender account's share of it (details.scope), is full; expired envelopes never count. Each recipient account's registered devices (other than the sender's own) must be covered exactly, or the answer is 409 MISMATCHED_DEVICES with the missing and extra device ids. An envelope whose (sender device, recipient device, id) was accepted before is not stored again; a request made only of such envelopes answers 200 at once. 200 means every envelope is committed to disk.",
        tags: ['messages'],
        body: SendBody,
        response: { 200: SendResponse, ...errorResponses(409, 410, 507) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const body = request.body;
      if (body.messages.length > limits.maxEnvelopesPerSend) {
        throw relayError('TOO_MANY_ENVELOPES', `at most ${limits.maxEnvelopesPerSend} envelopes per send`, {
          limit: limits.maxEnvelopesPerSend,
        });
      }
      const elements = body.messages.map(
        (m, i): SendElement => ({
          accountKey: fromBase64Url(m.account, `messages[${i}].account`, 32),
          deviceId: m.deviceId,
          clientId: m.id,
          envelope: fromBase64Url(m.envelope, `messages[${i}].envelope`, { max: limits.maxEnvelopeBytes }),
          ...(m.certificateHash === undefined ? {} : { certificateHash: fromBase64Url(m.certificateHash, 'certificateHash', 32) }),
          ...(m.frankingTag === undefined ? {} : { frankingTag: fromBase64Url(m.frankingTag, `messages[${i}].frankingTag`, 32) }),
        }),
      );
      // The replay record is written in the send's own transaction (config.replayWithWrite): one commit per send.
      const accepted = await sends.send({
        sender: me,
        elements,
        ...(body.ttlSeconds === undefined ? {} : { ttlSeconds: body.ttlSeconds }),
        ...(request.replayRecord ? { replay: request.replayRecord } : {}),
      });
      return { accepted };
    },
  );

  // The group fan-out shares the send's byte-rate buckets (and the websocket send path does too).
  fanoutRoute(app, sends.recipientBytes);

  app.get(
    '/v1/messages',
    {
      config: { auth: 'device' },
      schema: {
        summary: "Fetch the signing device's stored messages, oldest first",
        description: 'The HTTP alternative to the websocket. Messages stay until acknowledged (POST /v1/messages/ack) or expired.',
        tags: ['messages'],
        querystring: Type.Object(
          {
            limit: Type.Optional(QueryInt(`Most messages to return, 1..${MAX_FETCH_LIMIT} (default 100)`)),
            after: Type.Optional(QueryInt('Only messages with a larger seq (default 0)')),
          },
          { additionalProperties: false },
        ),
        response: { 200: FetchResponse, ...errorResponses() },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const query = request.query;
      const limit = Number(query.limit ?? 100);
      if (limit < 1 || limit > MAX_FETCH_LIMIT) throw relayError('VALIDATION_FAILED', `querystring/limit must be 1..${MAX_FETCH_LIMIT}`);
      const rows = await relay.storage.fetchMessages(me, Number(query.after ?? 0), limit + 1, relay.now());
      return { messages: rows.slice(0, limit).map(deliveredMessage), more: rows.length > limit };
    },
  );

  app.post(
    '/v1/messages/ack',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Acknowledge (delete) messages of the signing device',
        description: "Seqs that are unknown, already acknowledged or someone else's are ignored: the answer is always 204.",
        tags: ['messages'],
        body: AckBody,
        response: { 204: Type.Null(), ...errorResponses() },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const { seqs } = request.body;
      const deleted = await relay.storage.ackMessages(me, seqs);
      relay.metrics.envelopesAcked.inc(deleted);
      relay.hub.acknowledged(me, seqs);
      return reply.code(204).send(null);
    },
  );
}
