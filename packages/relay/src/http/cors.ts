/**
 * Cross-origin access for web apps: PARLEY_CORS_ORIGINS, an allowlist of
 * origins (none by default). spec/09-relay.md §4.7.
 *
 * HTTP: preflights are answered and every response carries the CORS headers
 * for an allowed Origin (@fastify/cors); a disallowed Origin gets no CORS
 * headers, so the browser withholds the response. Requests are signed
 * (Authorization), never authenticated by cookies, so credentials mode stays
 * off.
 *
 * Websocket: browsers do not apply CORS to websockets but always send
 * Origin, so the upgrade is refused (403 FORBIDDEN, counted as auth failure FORBIDDEN_ORIGIN) for an Origin that
 * is neither allowed nor the relay's own (a page served from the same host).
 * A request without Origin (a native client) is not a browser and passes.
 */
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { relayError } from '../errors.ts';

/** Headers a page may read: pagination and rate-limit answers, ranges of a download. */
const EXPOSED_HEADERS = ['retry-after', 'content-range', 'accept-ranges', 'content-length'];
/**
 * Headers a page may send: the signature and what it covers (Content-Digest of the body, the
 * certificate of a registration), JSON or octet bodies, ranged downloads. spec/09-relay.md §3.
 */
const ALLOWED_HEADERS = ['authorization', 'content-digest', 'parley-certificate', 'content-type', 'range'];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** Browsers cache a preflight this long (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SECONDS = 7200;

/** The decision for one Origin header value (exported for tests). */
export function originAllowed(origin: string, allowlist: readonly string[]): boolean {
  return allowlist.includes('*') || allowlist.includes(origin);
}

/** True when `origin` names the host the request came to (a page served by the relay's own host). */
function sameOrigin(request: FastifyRequest, origin: string): boolean {
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

export const corsPlugin = fp(
  async (app: FastifyInstance) => {
    const allowlist = app.relay.config.corsOrigins;
    if (allowlist.length > 0) {
      await app.register(cors, {
        origin: (origin, callback) => callback(null, origin !== undefined && originAllowed(origin, allowlist)),
        methods: METHODS,
        allowedHeaders: ALLOWED_HEADERS,
        exposedHeaders: EXPOSED_HEADERS,
        credentials: false,
        maxAge: PREFLIGHT_MAX_AGE_SECONDS,
        strictPreflight: true,
        hideOptionsRoute: true,
      });
    }
    // A callback hook, not an async one: no extra promise hop on every request (group commit
    // batches the writes of requests that reach their handlers in the same turn).
    app.addHook('onRequest', (request, _reply, done) => {
      const origin = request.headers.origin;
      if (
        request.headers.upgrade?.toLowerCase() !== 'websocket' ||
        origin === undefined ||
        originAllowed(origin, allowlist) ||
        sameOrigin(request, origin)
      ) {
        done();
        return;
      }
      app.relay.metrics.authFailures.inc({ code: 'FORBIDDEN_ORIGIN' });
      done(relayError('FORBIDDEN', 'this origin may not open a websocket (PARLEY_CORS_ORIGINS)'));
    });
  },
  { name: 'parley-cors', dependencies: ['parley-context'] },
);
