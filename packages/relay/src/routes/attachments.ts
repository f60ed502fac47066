/**
 * Attachments: encrypted blobs uploaded in resumable chunks, downloaded
 * with HTTP range requests, deleted on expiry. spec/09-relay.md §4.5.
 *
 * Clients encrypt before upload and carry the key and digest inside an
 * envelope; the relay holds bytes it cannot read. Chunk bodies are streamed
 * to disk and are not covered by the request signature (the signature
 * covers the attachment id and offset; integrity of the content is the
 * recipient's digest check, end to end).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from '@sinclair/typebox';
import { deviceOf, parseAuthorization } from '../auth/authenticate.ts';
import { parseRange } from '../attachments/range.ts';
import { sameBytes, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { rateBudget } from '../limits/rate-budgets.ts';
import { AttachmentParams, CreateAttachmentBody, UploadStatus, errorResponses } from '../schemas.ts';
import type { AttachmentRecord, DeviceAddress } from '../storage/types.ts';

const OCTETS = 'application/octet-stream';

function status(a: AttachmentRecord): UploadStatus {
  return { id: a.id, size: a.size, offset: a.received, complete: a.complete, expiresAt: a.expiresAt };
}

const owns = (a: AttachmentRecord, who: DeviceAddress) =>
  a.owner.deviceId === who.deviceId && sameBytes(a.owner.accountKey, who.accountKey);

export async function attachmentRoutes(instance: FastifyInstance): Promise<void> {
  // Request params, query and body are typed from each route's schema (validated before the handler runs).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const { limits } = relay.config;
  const uploading = new Set<string>();
  // Uploads started per device, shared by every process on the storage (limits/rate-budgets.ts).
  const uploadsStarted = rateBudget(relay.storage, 'attachments', {
    capacity: relay.config.rateLimits.attachmentsPerHourPerDevice,
    windowMs: 3_600_000,
  });

  // Chunk bodies are handed to the route as a stream (not buffered, no body limit here: the route bounds them).
  app.addContentTypeParser(OCTETS, (_request, payload, done) => done(null, payload));

  /** The owner's own upload, or 404 for unknown and foreign ids alike. */
  async function ownUpload(id: string, me: DeviceAddress): Promise<AttachmentRecord> {
    const a = await relay.storage.getAttachment(id);
    if (!a || !owns(a, me) || a.expiresAt <= relay.now()) throw relayError('NOT_FOUND', 'no such upload');
    return a;
  }

  app.post(
    '/v1/attachments',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Start an attachment upload',
        description:
          "Declares the exact size of the encrypted blob. Upload it with PATCH, in one or more chunks, before the upload expires. The same signed request again (a replay) answers the upload it created, without creating another. The declared size counts against the device's and the account's stored-bytes quotas (507 QUOTA_EXCEEDED) until the attachment expires or is deleted.",
        tags: ['attachments'],
        body: CreateAttachmentBody,
        response: { 201: UploadStatus, ...errorResponses(409, 507) },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const { size } = request.body;
      if (size > limits.maxAttachmentBytes) {
        throw relayError('PAYLOAD_TOO_LARGE', `attachments are at most ${limits.maxAttachmentBytes} bytes`, {
          limit: limits.maxAttachmentBytes,
        });
      }
      const now = relay.now();
      const verdict = await uploadsStarted.take(`${me.account}:${me.deviceId}`, 1, now);
      if (!verdict.ok) {
        relay.metrics.rateLimited.inc({ limit: 'attachments' });
        const retryAfterSeconds = Math.ceil(verdict.retryAfterMs / 1000);
        reply.header('retry-after', String(retryAfterSeconds));
        throw relayError('RATE_LIMITED', 'too many uploads started', { retryAfterSeconds });
      }
      const record: AttachmentRecord = {
        id: toBase64Url(relay.provider.random(16)),
        owner: { accountKey: me.accountKey, deviceId: me.deviceId },
        size,
        received: 0,
        complete: false,
        createdAt: now,
        expiresAt: now + relay.config.uploadTtlSeconds * 1000,
      };
      // The signed nonce names the creating request: its replay is the same upload (issue 12 finding 6).
      const requestKey = parseAuthorization(request.headers.authorization).nonce;
      await relay.blobs.create(record.id);
      const result = await relay.storage.createAttachment(record, requestKey, {
        maxPending: limits.maxPendingUploadsPerDevice,
        maxBytesPerDevice: limits.maxAttachmentBytesPerDevice,
        maxBytesPerAccount: limits.maxAttachmentBytesPerAccount,
      });
      if (result.status !== 'created') await relay.blobs.remove(record.id);
      for (const id of result.purged ?? []) await relay.blobs.remove(id);
      if (result.purged?.length) relay.metrics.swept.inc({ kind: 'attachments' }, result.purged.length);
      switch (result.status) {
        case 'created':
        case 'existing':
          return reply.code(201).send(status(result.record));
        case 'too-many-uploads':
          throw relayError('TOO_MANY_UPLOADS', `at most ${limits.maxPendingUploadsPerDevice} unfinished uploads per device`, {
            limit: limits.maxPendingUploadsPerDevice,
          });
        case 'quota-exceeded':
          relay.metrics.rateLimited.inc({ limit: `attachment_bytes_per_${result.scope}` });
          throw relayError('QUOTA_EXCEEDED', `stored attachments are at most ${result.limit} bytes per ${result.scope}`, {
            scope: result.scope,
            limit: result.limit,
          });
      }
    },
  );

  app.get(
    '/v1/attachments/:id/upload',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Where an upload stands (resume from `offset`)',
        tags: ['attachments'],
        params: AttachmentParams,
        response: { 200: UploadStatus, ...errorResponses(404) },
      },
    },
    async (request) => status(await ownUpload(request.params.id, deviceOf(request))),
  );

  app.patch(
    '/v1/attachments/:id',
    {
      config: { auth: 'device', unsignedBody: true },
      schema: {
        summary: 'Upload a chunk at `offset` (resumable)',
        description: `Body: ${OCTETS}, at most the remaining size and at most the relay's chunk limit. Bytes that arrive before a dropped connection are kept: ask GET .../upload for the offset and continue from there.`,
        tags: ['attachments'],
        params: AttachmentParams,
        querystring: Type.Object(
          { offset: Type.String({ pattern: '^[0-9]{1,15}$', description: 'Must equal the bytes already stored' }) },
          { additionalProperties: false },
        ),
        response: { 200: UploadStatus, ...errorResponses(404, 409) },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const { id } = request.params;
      const offset = Number(request.query.offset);
      const a = await ownUpload(id, me);
      if (a.complete || offset !== a.received) {
        throw relayError('OFFSET_MISMATCH', 'the upload continues at another offset', { offset: a.received, complete: a.complete });
      }
      const room = Math.min(a.size - a.received, limits.maxUploadChunkBytes);
      const declared = Number(request.headers['content-length'] ?? Number.NaN);
      if (declared > room) throw relayError('PAYLOAD_TOO_LARGE', `this chunk may be at most ${room} bytes`, { limit: room });
      if (uploading.has(id)) throw relayError('UPLOAD_IN_PROGRESS', 'another request is uploading this attachment');
      uploading.add(id);
      try {
        const source = request.body as AsyncIterable<Uint8Array>;
        const outcome = await relay.blobs.append(id, offset, source, room);
        relay.metrics.attachmentBytesReceived.inc(outcome.written);
        const updated = await relay.storage.recordUploadProgress(
          id,
          offset + outcome.written,
          relay.now() + relay.config.attachmentTtlSeconds * 1000,
        );
        if (!updated) throw relayError('NOT_FOUND', 'no such upload');
        if (outcome.overflow)
          throw relayError('PAYLOAD_TOO_LARGE', `this chunk may be at most ${room} bytes`, { limit: room, offset: updated.received });
        if (outcome.error !== undefined) {
          // The client went away; what arrived is stored and recorded. Nobody reads this answer.
          throw relayError('MALFORMED', 'upload interrupted', { offset: updated.received });
        }
        return status(updated);
      } finally {
        uploading.delete(id);
      }
    },
  );

  app.get(
    '/v1/attachments/:id',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Download a finished attachment (supports Range: bytes=...)',
        description:
          'Any registered device may download by id (the id travels inside an encrypted envelope). Unknown, unfinished and expired ids get the same 404.',
        tags: ['attachments'],
        params: AttachmentParams,
        produces: [OCTETS],
        response: {
          200: Type.String({ format: 'binary', description: 'The whole blob' }),
          206: Type.String({ format: 'binary', description: 'The requested range' }),
          ...errorResponses(404, 416),
        },
      },
    },
    async (request, reply) => {
      deviceOf(request);
      const { id } = request.params;
      const a = await relay.storage.getAttachment(id);
      if (!a || !a.complete || a.expiresAt <= relay.now()) throw relayError('NOT_FOUND', 'no such attachment');
      return sendBlob(reply, a, request.headers.range);
    },
  );

  function sendBlob(reply: FastifyReply, a: AttachmentRecord, range: string | undefined) {
    reply.header('accept-ranges', 'bytes').header('cache-control', 'private, max-age=0, no-transform').type(OCTETS);
    const verdict = parseRange(range, a.size);
    if (verdict.kind === 'unsatisfiable') {
      reply.header('content-range', `bytes */${a.size}`);
      throw relayError('RANGE_NOT_SATISFIABLE', 'the range starts past the end', { size: a.size });
    }
    if (verdict.kind === 'full') {
      reply.header('content-length', String(a.size));
      return reply.code(200).send(relay.blobs.read(a.id, 0, a.size - 1));
    }
    reply.header('content-range', `bytes ${verdict.start}-${verdict.end}/${a.size}`);
    reply.header('content-length', String(verdict.end - verdict.start + 1));
    return reply.code(206).send(relay.blobs.read(a.id, verdict.start, verdict.end));
  }

  app.delete(
    '/v1/attachments/:id',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Delete an attachment (its uploader only)',
        tags: ['attachments'],
        params: AttachmentParams,
        response: { 204: Type.Null(), ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const { id } = request.params;
      const a = await relay.storage.getAttachment(id);
      if (!a || !owns(a, me) || !(await relay.storage.deleteAttachment(id))) throw relayError('NOT_FOUND', 'no such attachment');
      await relay.blobs.remove(id);
      return reply.code(204).send(null);
    },
  );
}
