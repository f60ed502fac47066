/**
 * Operations routes: liveness, readiness, Prometheus metrics, the OpenAPI
 * document. Not signed and exempt from the per-IP rate limit (probes and
 * scrapers call them often); /metrics needs a token or a loopback client. spec/09-relay.md §4.6.
 */
import { constantTimeEqual, utf8 } from '@parley/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RelayContext } from '../context.ts';
import { Type } from '@sinclair/typebox';
import { relayError } from '../errors.ts';
import { ErrorResponse } from '../schemas.ts';

const open = { auth: 'none', rateLimit: false } as const;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Metrics reveal traffic volumes and timing, so they are not public: with
 * `metricsToken` set, a scraper sends `Authorization: Bearer <token>`
 * (compared in constant time); without one, only loopback clients (a local
 * Prometheus or an SSH tunnel) are answered. Anyone else gets the 404 of an
 * unknown route. spec/09-relay.md §4.6.
 */
function metricsAllowed({ config, provider }: RelayContext, request: FastifyRequest): boolean {
  if (config.metricsToken !== '') {
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    // Hashed first so the comparison does not reveal the token's length either.
    const hash = (text: string) => provider.backend.sha256(utf8(text));
    return constantTimeEqual(hash(given), hash(config.metricsToken));
  }
  return LOOPBACK.test(request.socket.remoteAddress ?? '') && LOOPBACK.test(request.ip);
}

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/healthz',
    {
      config: open,
      schema: {
        summary: 'Liveness: the process is up',
        tags: ['operations'],
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      config: open,
      schema: {
        summary: 'Readiness: storage answers and the relay is not shutting down',
        tags: ['operations'],
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: ErrorResponse },
      },
    },
    async () => {
      if (app.relay.closing) throw relayError('UNAVAILABLE', 'shutting down');
      try {
        await app.relay.storage.ping();
      } catch {
        throw relayError('UNAVAILABLE', 'storage is not answering');
      }
      return { status: 'ready' as const };
    },
  );

  if (app.relay.config.metrics) {
    app.get(
      '/metrics',
      {
        config: open,
        schema: {
          summary: 'Prometheus metrics (text exposition format)',
          tags: ['operations'],
          security: [],
          produces: ['text/plain'],
          response: { 200: Type.String() },
        },
      },
      async (request, reply) => {
        if (!metricsAllowed(app.relay, request)) throw relayError('NOT_FOUND', `no route ${request.method} ${request.url}`);
        const registry = app.relay.metrics.registry;
        reply.type(registry.contentType);
        return registry.metrics();
      },
    );
  }

  app.get('/openapi.json', { config: open, schema: { hide: true } }, async () => app.swagger());
}
