/**
 * The relay as a fastify application: shared context (storage, blobs,
 * metrics, delivery hub), then cross-cutting plugins (OpenAPI, websocket,
 * rate limits, body parsing, errors, auth), then routes. spec/09-relay.md.
 *
 * `buildApp` returns an instance that is not listening: tests call
 * `app.inject()`, server.ts calls `listen`.
 */
import { mkdirSync } from 'node:fs';
import { defaultProvider, isParleyError } from '@parley/core';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import websocket from '@fastify/websocket';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import fp from 'fastify-plugin';
import type { BlobStore } from './attachments/blob-store.ts';
import { authPlugin, bodyMatches } from './auth/authenticate.ts';
import { ReplayGuard } from './auth/replay-cache.ts';
import { type ObserveBatch, openBlobStore, openStorage } from './storage/backends.ts';
import { type RelayConfig, type RelayConfigOverrides, withDefaults } from './config.ts';
import type { RelayContext } from './context.ts';
import { CloseCode, DeliveryHub } from './delivery/hub.ts';
import { ERROR_STATUS, type RelayErrorCode, isRelayError, relayError } from './errors.ts';
import { PRE_AUTH_BODY_BYTES, applyRouteBodyLimit } from './front-door/body-limits.ts';
import { ConnectionGuard, effectiveMaxConnections } from './front-door/connections.ts';
import { createMetrics } from './metrics.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { deviceRoutes } from './routes/devices.ts';
import { healthRoutes } from './routes/health.ts';
import { keyRoutes } from './routes/keys.ts';
import { messageRoutes } from './routes/messages.ts';
import { reportRoutes } from './routes/reports.ts';
import { sealedRoutes } from './routes/sealed.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { websocketRoutes } from './routes/websocket.ts';
import { corsPlugin } from './http/cors.ts';
import { ErrorResponse } from './schemas.ts';
import type { MailboxesCommitted, RelayStorage } from './storage/types.ts';
import { startSweeper } from './sweeper.ts';
import { FrankKeys } from './franking/keys.ts';

export interface BuildAppOptions {
  /** Full config or overrides of the defaults. */
  readonly config?: RelayConfigOverrides;
  /** A storage backend; default: the configured one (PostgreSQL or SQLite at `<dataDir>/relay.sqlite`). Closed with the app. */
  readonly storage?: RelayStorage;
  /** Where attachment bytes go; default: the configured blob store. Closed with the app. */
  readonly blobs?: BlobStore;
  /** Clock in milliseconds (tests move it to expire things). */
  readonly now?: () => number;
  /** Fastify logger option; default: pino at config.logLevel with redaction. */
  readonly logger?: FastifyServerOptions['logger'];
}

/** Header values and bodies never reach the logs; these paths are redacted if anything logs them. */
const REDACT = ['req.headers.authorization', 'req.headers.cookie', 'req.body', 'res.body', 'body', 'envelope'];

export function loggerOptions(config: RelayConfig): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    redact: { paths: REDACT, censor: '[redacted]' },
    serializers: {
      // Route pattern instead of the URL: no account keys or attachment ids in logs.
      req: (req: { method?: string; routeOptions?: { url?: string }; id?: string }) => ({
        method: req.method,
        route: req.routeOptions?.url ?? 'unmatched',
      }),
    },
  };
}

/**
 * Request logs at debug level with the route pattern, status and time only:
 * an operator gets an access log when asking for one, and never the URL's
 * account keys or ids.
 */
class RelayLogController extends LogController {
  override incomingRequest(): void {}
  override requestCompleted(_error: unknown, request: FastifyRequest, reply: FastifyReply): void {
    request.log.debug(
      { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: reply.statusCode, ms: reply.elapsedTime },
      'request completed',
    );
  }
}

export async function buildApp(options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const config = withDefaults(options.config);
  const app = Fastify({
    logger: options.logger ?? loggerOptions(config),
    // Routes set their own (onRoute below); this bounds everything else, 404s included.
    bodyLimit: PRE_AUTH_BODY_BYTES,
    trustProxy: config.trustProxy,
    logController: new RelayLogController(),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Slow clients hold a file descriptor each: every phase of a connection has a deadline (spec/09-relay.md §8.2).
    connectionTimeout: config.idleTimeoutSeconds * 1000,
    keepAliveTimeout: config.keepAliveTimeoutSeconds * 1000,
    requestTimeout: config.requestTimeoutSeconds * 1000,
    http: { headersTimeout: config.headersTimeoutSeconds * 1000, connectionsCheckingInterval: CONNECTION_CHECK_MS },
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();
  guardConnections(app, config);
  await app.register(relayApp, { config, storage: options.storage, blobs: options.blobs, now: options.now });
  return app;
}

/**
 * How often Node checks the header and request deadlines of open
 * connections: its default (30 s) would let a slow client overstay a 10 s
 * header deadline by three times; one check a second over a few thousand
 * connections costs next to nothing.
 */
const CONNECTION_CHECK_MS = 1000;

/** Caps connections per address and in total (front-door/connections.ts); the counts feed the metrics once they exist. */
function guardConnections(app: FastifyInstance, config: RelayConfig): void {
  const maxConnections = effectiveMaxConnections(config.limits.maxConnections);
  if (maxConnections < config.limits.maxConnections) {
    app.log.warn(
      { configured: config.limits.maxConnections, applied: maxConnections },
      'maxConnections lowered to fit the open-file limit',
    );
  }
  const guard = new ConnectionGuard(
    {
      maxConnections,
      // Behind a reverse proxy every connection comes from the proxy: capping its address would cap
      // everyone. The proxy limits connections per client there (spec/09-relay.md §8.2).
      maxConnectionsPerAddress: config.trustProxy ? Number.POSITIVE_INFINITY : config.limits.maxConnectionsPerAddress,
    },
    (event, reason) => {
      const metrics = (app as { relay?: RelayContext }).relay?.metrics;
      if (event !== 'accepted') metrics?.connectionsShed.inc({ event, cap: reason ?? 'none' });
    },
  );
  guard.attach(app.server);
  app.decorate('connections', guard);
}

declare module 'fastify' {
  interface FastifyInstance {
    connections: ConnectionGuard;
  }
}

interface RelayAppOptions {
  readonly config: RelayConfig;
  readonly storage?: RelayStorage | undefined;
  readonly blobs?: BlobStore | undefined;
  readonly now?: (() => number) | undefined;
}

const contextPlugin = fp(
  async (app: FastifyInstance, opts: RelayAppOptions) => {
    const { config } = opts;
    mkdirSync(config.dataDir, { recursive: true });
    // Metrics need the storage, and the storage reports its commits to metrics: late-bound.
    const commits: { observe?: ObserveBatch; wake?: MailboxesCommitted } = {};
    const storage: RelayStorage =
      opts.storage ??
      (await openStorage(
        config,
        (n, s, p) => commits.observe?.(n, s, p),
        (devices, rows) => commits.wake?.(devices, rows),
      ));
    const metrics = createMetrics(storage, () => app.connections?.open ?? 0);
    commits.observe = (n, s, p) => {
      metrics.commitBatchSize.observe(n);
      metrics.commitDuration.observe(s);
      metrics.commitPhase.observeAt('wait', p.wait);
      metrics.commitPhase.observeAt('transaction', p.transaction);
      metrics.commitPhase.observeAt('sync', p.sync);
    };
    const context: RelayContext = {
      config,
      storage,
      blobs: opts.blobs ?? (await openBlobStore(config)),
      metrics,
      hub: new DeliveryHub(),
      replay: new ReplayGuard(storage, metrics, {
        windowMs: config.authWindowSeconds * 1000,
        maxPerSigner: config.rateLimits.signedRequestsPerSigner,
      }),
      provider: defaultProvider(),
      frankKeys: new FrankKeys(storage, defaultProvider()),
      now: opts.now ?? Date.now,
      closing: false,
    };
    app.decorate('relay', context);
    // The storage wakes recipients right after the commit (SQLite: before the fsync, spec/09-relay.md
    // §7.1), handing the rows it stored: a connected, caught-up recipient gets them without a read (§5.2.1).
    commits.wake = (devices, rows) => context.hub.notify(devices, rows);
    app.addHook('preClose', async () => {
      context.closing = true;
      context.hub.closeAll(CloseCode.goingAway, 'relay shutting down');
    });
    // A storage shared with other relay processes reports their sends too.
    const unwatch = await storage.watchMailboxes?.((addresses) =>
      addresses === 'all' ? context.hub.wakeAll() : context.hub.notify(addresses),
    );
    app.addHook('onClose', async () => {
      await unwatch?.();
      await context.storage.close();
      await context.blobs.close();
    });
  },
  { name: 'parley-context' },
);

/** Maps any thrown error to a status and a stable code; 5xx details stay in the log. */
function errorPlugin(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    let code: RelayErrorCode;
    let status: number;
    let message = error.message;
    let details: Record<string, unknown> | undefined;
    if (isRelayError(error)) {
      code = error.code;
      status = error.statusCode;
      details = error.details as Record<string, unknown> | undefined;
    } else if (error.validation) {
      code = 'VALIDATION_FAILED';
      status = 400;
      message = `${error.validationContext ?? 'request'}${error.validation[0]?.instancePath ?? ''} ${error.validation[0]?.message ?? 'is invalid'}`;
    } else if (isParleyError(error)) {
      code = error.code in ERROR_STATUS ? (error.code as RelayErrorCode) : 'MALFORMED';
      status = ERROR_STATUS[code];
    } else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      code = 'PAYLOAD_TOO_LARGE';
      status = 413;
    } else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      code = 'UNSUPPORTED_MEDIA_TYPE';
      status = 415;
    } else if (error.statusCode === 429) {
      code = 'RATE_LIMITED';
      status = 429;
    } else if (
      error instanceof SyntaxError ||
      (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500)
    ) {
      // Fastify's own 4xx (bad JSON, bad content-length, ...): the client's input.
      code = 'MALFORMED';
      status = error.statusCode && error.statusCode !== 429 ? error.statusCode : 400;
    } else {
      code = 'INTERNAL';
      status = 500;
    }
    if (status >= 500) {
      if (status === 500) request.log.error({ err: error }, 'internal error');
      message = status === 500 ? 'internal error' : message;
    } else {
      request.log.debug({ code }, 'request refused');
    }
    if (code === 'RATE_LIMITED') app.relay.metrics.rateLimited.inc({ limit: 'requests_per_ip' });
    const body: Record<string, unknown> = { statusCode: status, code, error: httpReason(status), message };
    if (details) body['details'] = details;
    return reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', error: 'Not Found', message: `no route ${request.method} ${request.url}` });
  });
}

/** Socket errors a client causes (an oversized or malformed frame, a reset), which are not the relay's to log loudly. */
const CLIENT_SOCKET_ERROR = /^(WS_ERR_[A-Z_]+|ECONNRESET|EPIPE|ETIMEDOUT)$/;

/**
 * A websocket error: one the client caused is counted and logged at debug
 * with its code only (an unauthenticated client must not be able to fill
 * the log with stack traces); anything else is the relay's own failure.
 */
function websocketError(app: FastifyInstance, error: Error, socket: { terminate(): void }, request: FastifyRequest): void {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && CLIENT_SOCKET_ERROR.test(code)) {
    app.relay.metrics.websocketClientErrors.inc({ code });
    request.log.debug({ code }, 'websocket closed on a client error');
  } else {
    request.log.error({ err: error }, 'websocket failed');
  }
  socket.terminate();
}

function httpReason(status: number): string {
  const reasons: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    410: 'Gone',
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    416: 'Range Not Satisfiable',
    426: 'Upgrade Required',
    429: 'Too Many Requests',
    500: 'Internal Server Error',
    503: 'Service Unavailable',
    507: 'Insufficient Storage',
  };
  return reasons[status] ?? 'Error';
}

/**
 * JSON bodies: parsed by fastify's poisoning-safe parser, raw bytes kept for
 * the body hash. A body whose signed digest was declared (auth.ts) is checked
 * against it before it is parsed: no unauthenticated byte reaches the parser.
 * Only JSON and, on the upload route, octets are taken (text/plain is 415).
 */
function jsonBodyPlugin(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer;
    if (!bodyMatches(request, app.relay.provider.backend.sha256(raw))) {
      app.relay.metrics.authFailures.inc({ code: 'AUTH_BAD_DIGEST' });
      done(relayError('AUTH_BAD_SIGNATURE', 'the body does not match the signed Content-Digest'), undefined);
      return;
    }
    request.rawBody = raw;
    parse(request, raw.toString('utf8'), done);
  });
}

export const relayApp = fp(
  async (app: FastifyInstance, opts: RelayAppOptions) => {
    await app.register(contextPlugin, opts);
    const { config } = opts;
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Parley relay',
          version: '1',
          description:
            'Blind store-and-forward relay for Parley: device directory, prekey bundles, ciphertext mailboxes, websocket delivery, attachments. Authentication and guarantees: spec/09-relay.md.',
        },
        components: {
          securitySchemes: {
            parleySignature: {
              type: 'apiKey',
              in: 'header',
              name: 'Authorization',
              description:
                'Parley <account>.<deviceId>.<timestampMs>.<nonce>.<signature> (spec/09-relay.md §3). A request with a body also sends Content-Digest: sha-256=:<base64>: (the signed body hash, so the relay authenticates before reading the body; without it the body may be at most 4 KiB), and a registration sends its certificate in Parley-Certificate.',
            },
          },
          schemas: { ErrorResponse },
        },
        security: [{ parleySignature: [] }],
      },
    });
    await app.register(websocket, {
      options: { maxPayload: config.limits.maxWebSocketFrameBytes },
      errorHandler: (error, socket, request) => websocketError(app, error, socket, request),
    });
    // After websocket: its own onRequest hook must run first, so that a refused upgrade's socket is closed.
    await app.register(corsPlugin);
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimits.requestsPerMinutePerIp,
      timeWindow: 60_000,
      errorResponseBuilder: (_request, context) =>
        relayError('RATE_LIMITED', `rate limit exceeded, retry in ${context.after}`, { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
    });
    app.decorateRequest('rawBody', undefined);
    // Each route reads at most what it needs (front-door/body-limits.ts).
    app.addHook('onRoute', (route) => applyRouteBodyLimit(config, route));
    jsonBodyPlugin(app);
    errorPlugin(app);
    await app.register(authPlugin);
    app.addHook('onResponse', async (request, reply) => {
      app.relay.metrics.httpDuration.observe(
        { route: request.routeOptions.url ?? 'unmatched', method: request.method, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    await app.register(healthRoutes);
    await app.register(deviceRoutes);
    await app.register(keyRoutes);
    await app.register(messageRoutes);
    await app.register(websocketRoutes);
    await app.register(attachmentRoutes);
    await app.register(reportRoutes);
    await app.register(tokenRoutes);
    await app.register(sealedRoutes);
    startSweeper(app);
  },
  { name: 'parley-relay' },
);
