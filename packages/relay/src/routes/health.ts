/**
 * Operations routes: liveness, readiness, Prometheus metrics, the OpenAPI
 * document. Unauthenticated and exempt from the per-IP rate limit (probes
 * and scrapers call them often). spec/09-relay.md §4.6.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { relayError } from '../errors.ts';
import { ErrorResponse } from '../schemas.ts';

const open = { auth: 'none', rateLimit: false } as const;

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
      async (_request, reply) => {
        const registry = app.relay.metrics.registry;
        reply.type(registry.contentType);
        return registry.metrics();
      },
    );
  }

  app.get('/openapi.json', { config: open, schema: { hide: true } }, async () => app.swagger());
}
