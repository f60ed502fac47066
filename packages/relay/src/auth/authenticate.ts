/**
 * Request authentication: a signature by the device's Ed25519 signing key
 * (or the account key) over the method, host, path, body hash, timestamp and
 * a nonce, within a replay window. spec/09-relay.md §3.
 *
 * The relay stores only public keys, so a copy of its database lets nobody
 * sign as a device. The mailbox a request touches is always taken from the
 * identity established here, never from a parameter.
 *
 * Authentication runs before the body is read (a preParsing hook): the
 * client declares the body's SHA-256 in `Content-Digest`, the signature over
 * that digest is verified from the headers alone, and the body is then read
 * up to the route's own limit and checked against the digest before it is
 * parsed (app.ts). A request without the header is authenticated once its
 * body is read, and then the body may be at most PRE_AUTH_BODY_BYTES: an
 * unauthenticated client never makes the relay read or parse more than that.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { type DeviceCertificate, limits as coreLimits, decodeCertificate, verifyCertificate } from '@parley/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ACCOUNT_SIGNER, requestSignedBytes } from './canonical.ts';
import { declaredSha256 } from './body-digest.ts';
import { verifyingKey } from './verifying-keys.ts';
import type { Identity } from '../context.ts';
import { base64UrlLength, fromBase64Url, sameBytes, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { markAuthenticated } from '../front-door/connections.ts';
import { PRE_AUTH_BODY_BYTES, checkMediaType, hasBody, routeBody } from '../front-door/body-limits.ts';
import type { SeenRequest } from '../storage/types.ts';

/** `Authorization: Parley <account>.<deviceId>.<timestampMs>.<nonce>.<signature>` (all base64url but the integers). */
const HEADER = /^Parley ([A-Za-z0-9_-]{43})\.(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{86})$/;

/** The body hash signed for routes whose body is streamed (attachment chunks): 32 zero bytes. */
export const UNSIGNED_BODY_HASH = new Uint8Array(32);

/** `Parley-Certificate`: the certificate a registration signs with, so it authenticates before its body is read (§3.5). */
export const CERTIFICATE_HEADER = 'parley-certificate';

export interface ParsedAuthorization {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly timestamp: number;
  readonly nonce: Uint8Array;
  readonly signature: Uint8Array;
}

interface Signer {
  readonly signingKey: Uint8Array;
  readonly device: Identity['device'];
  /** Read from the storage's signer cache (`RelayStorage.cachedDevice`): read again when the signature fails. */
  readonly cached?: boolean;
}

/** Authentication that waits for a (small) body: no Content-Digest, or a registration without Parley-Certificate. */
interface PendingAuth {
  readonly auth: ParsedAuthorization;
  readonly signer: Signer | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed SHA-256 the body must have; checked before the body is parsed. */
    bodySha256: Uint8Array | undefined;
    /** Set when the body is needed to authenticate (then it is at most PRE_AUTH_BODY_BYTES). */
    pendingAuth: PendingAuth | undefined;
    /** A registration's certificate from Parley-Certificate: the body must carry the same one. */
    headerCertificate: string | undefined;
    /** On a `replayWithWrite` route: the replay record the route must write with its one transaction. */
    replayRecord: SeenRequest | undefined;
  }
  interface FastifyContextConfig {
    /**
     * The route writes the request's replay record itself, in the same
     * transaction as its own write (the send route: one commit per send), and
     * answers AUTH_REPLAYED when it was seen. It must write it on every path
     * that changes state.
     */
    replayWithWrite?: boolean;
  }
}

export function parseAuthorization(header: string | undefined): ParsedAuthorization {
  if (header === undefined) throw relayError('AUTH_REQUIRED', 'this route needs an Authorization header (spec/09-relay.md §3)');
  const m = HEADER.exec(header);
  if (!m) throw relayError('AUTH_MALFORMED', 'Authorization: expected "Parley <account>.<device>.<timestamp>.<nonce>.<signature>"');
  const deviceId = Number(m[2]);
  if (deviceId > 0x7fffffff) throw relayError('AUTH_MALFORMED', 'Authorization: device id out of range');
  try {
    return {
      accountKey: fromBase64Url(m[1] as string, 'account', 32),
      deviceId,
      timestamp: Number(m[3]),
      nonce: fromBase64Url(m[4] as string, 'nonce', 16),
      signature: fromBase64Url(m[5] as string, 'signature', 64),
    };
  } catch {
    throw relayError('AUTH_MALFORMED', 'Authorization: a field is not canonical base64url');
  }
}

/**
 * The one Authorization header. Node keeps the first of several and drops
 * the rest silently; a request that carries two is ambiguous (a proxy and
 * the relay could each read another one), so it is refused.
 */
function authorizationOf(request: FastifyRequest): string | undefined {
  const raw = request.raw.rawHeaders;
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'authorization') count++;
  if (count > 1) throw relayError('AUTH_MALFORMED', 'more than one Authorization header');
  return request.headers.authorization;
}

async function signerOf(app: FastifyInstance, request: FastifyRequest, auth: ParsedAuthorization): Promise<Signer | undefined> {
  const { storage } = app.relay;
  const mode = request.routeOptions.config.auth ?? 'device';
  if (mode === 'registration') {
    const header = request.headers[CERTIFICATE_HEADER];
    if (header === undefined) return undefined;
    if (typeof header !== 'string' || header.length > base64UrlLength(coreLimits.MAX_BUNDLE_BYTES)) {
      throw relayError('MALFORMED', 'Parley-Certificate: one base64url certificate expected');
    }
    request.headerCertificate = header;
    return registrationSigner(app, header, auth);
  }
  if (auth.deviceId === ACCOUNT_SIGNER) {
    if (mode !== 'device-or-account') throw relayError('FORBIDDEN', 'this route needs a device signature, not the account key');
    if ((await storage.listDevices(auth.accountKey)).length === 0) throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown account');
    return { signingKey: auth.accountKey, device: null };
  }
  const address = { accountKey: auth.accountKey, deviceId: auth.deviceId };
  // PostgreSQL: the device as last read here, confirmed by the request's replay-record statement (no round trip).
  const cached = storage.cachedDevice?.(address);
  if (cached) return { signingKey: cached.signingKey, device: cached, cached: true };
  const found = await storage.getDevice(address);
  if (!found) throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown device');
  return { signingKey: found.signingKey, device: found };
}

/** The certificate being registered: well-formed, signed by its account, and naming the signer. */
function registrationSigner(app: FastifyInstance, certificateText: unknown, auth: ParsedAuthorization): Signer {
  if (typeof certificateText !== 'string') throw relayError('VALIDATION_FAILED', 'body/certificate must be a string');
  const certificate: DeviceCertificate = decodeCertificate(fromBase64Url(certificateText, 'certificate'));
  verifyCertificate(app.relay.provider.backend, certificate, auth.accountKey);
  if (certificate.deviceId !== auth.deviceId) {
    throw relayError('BAD_CERTIFICATE', 'the certificate names another device than the Authorization header');
  }
  return { signingKey: certificate.signingKey, device: null };
}

/** Verifies the signature over the request with the given body hash, then remembers it against replay. */
async function verify(
  app: FastifyInstance,
  request: FastifyRequest,
  auth: ParsedAuthorization,
  initialSigner: Signer,
  bodySha256: Uint8Array,
): Promise<Identity> {
  const { provider, replay, now, storage } = app.relay;
  let signer = initialSigner;
  const signed = requestSignedBytes({
    method: request.method,
    host: request.headers.host ?? '',
    pathAndQuery: request.url,
    bodySha256,
    timestamp: auth.timestamp,
    nonce: auth.nonce,
    accountKey: auth.accountKey,
    deviceId: auth.deviceId,
  });
  if (!provider.backend.ed25519Verify(verifyingKey(signer.signingKey), signed, auth.signature)) {
    // A cached signer may be a device since re-registered (on any process) with another key: read it once more.
    const fresh = signer.cached ? await storage.getDevice({ accountKey: auth.accountKey, deviceId: auth.deviceId }) : undefined;
    if (signer.cached && !fresh) throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown device');
    // The same key again would fail again: at most one more verification, and only for a new key.
    if (
      !fresh ||
      sameBytes(fresh.signingKey, signer.signingKey) ||
      !provider.backend.ed25519Verify(verifyingKey(fresh.signingKey), signed, auth.signature)
    ) {
      throw relayError('AUTH_BAD_SIGNATURE', 'request signature does not verify');
    }
    signer = { signingKey: fresh.signingKey, device: fresh };
  }
  // Only verified signatures are remembered, each in its signer's own partition.
  const signerAddress = { accountKey: auth.accountKey, deviceId: auth.deviceId };
  // A signer from the cache is confirmed by the replay record's own statement.
  const held = signer.cached ? signer.device?.certificateHash : undefined;
  if (request.routeOptions.config.replayWithWrite) {
    // The route writes the record in its own transaction and refuses the request if it was seen (§3.3).
    request.replayRecord = replay.record(signerAddress, auth.nonce, now(), held);
  } else {
    await replay.admit(signerAddress, auth.nonce, now(), held);
  }
  // This connection carried an authenticated request: a connection flood no longer displaces it.
  markAuthenticated(request.raw.socket);
  return { accountKey: auth.accountKey, account: toBase64Url(auth.accountKey), deviceId: auth.deviceId, device: signer.device };
}

/**
 * Everything that can be checked from the headers: media type, header form,
 * clock, signer and, when the body's digest is declared, the signature.
 * Returns the stream the body is read from (capped when the body is needed
 * to authenticate).
 */
async function beginAuth(app: FastifyInstance, request: FastifyRequest, payload: NodeJS.ReadableStream): Promise<NodeJS.ReadableStream> {
  const { config, provider, now } = app.relay;
  const url = request.routeOptions.url as string;
  const withBody = hasBody(request.headers);
  if (withBody) checkMediaType(request.headers['content-type'], routeBody(config, request.method, url).type);
  const auth = parseAuthorization(authorizationOf(request));

  const clock = now();
  if (Math.abs(clock - auth.timestamp) > config.authWindowSeconds * 1000) {
    throw relayError('AUTH_STALE_TIMESTAMP', `timestamp outside the ${config.authWindowSeconds} s window`, { serverTime: clock });
  }

  const declared = request.routeOptions.config.unsignedBody
    ? UNSIGNED_BODY_HASH
    : withBody
      ? declaredSha256(request.headers['content-digest'])
      : provider.backend.sha256(new Uint8Array(0));
  const signer = await signerOf(app, request, auth);
  if (signer && declared) {
    request.identity = await verify(app, request, auth, signer, declared);
    if (withBody && !request.routeOptions.config.unsignedBody) request.bodySha256 = declared;
    return payload;
  }
  // The body is needed to authenticate: read no more of it than a few KiB.
  if (Number(request.headers['content-length']) > PRE_AUTH_BODY_BYTES) throw preAuthTooLarge();
  request.pendingAuth = { auth, signer };
  return capped(payload, PRE_AUTH_BODY_BYTES);
}

/** Authentication that needed the body (read by now, at most PRE_AUTH_BODY_BYTES). */
async function finishAuth(app: FastifyInstance, request: FastifyRequest, pending: PendingAuth): Promise<void> {
  const body = request.body as { certificate?: unknown } | undefined;
  const signer = pending.signer ?? registrationSigner(app, body?.certificate, pending.auth);
  const digest = app.relay.provider.backend.sha256(request.rawBody ?? new Uint8Array(0));
  request.identity = await verify(app, request, pending.auth, signer, digest);
}

function preAuthTooLarge() {
  return relayError(
    'PAYLOAD_TOO_LARGE',
    `a body above ${PRE_AUTH_BODY_BYTES} bytes needs a Content-Digest header (and a registration a Parley-Certificate header) so the request is authenticated before it is read`,
    { limit: PRE_AUTH_BODY_BYTES },
  );
}

/** A body stream that fails with 413 past `limit` bytes (chunked bodies have no Content-Length to check first). */
function capped(payload: NodeJS.ReadableStream, limit: number): NodeJS.ReadableStream {
  let received = 0;
  const out = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      received += chunk.length;
      (out as unknown as { receivedEncodedLength: number }).receivedEncodedLength = received;
      if (received > limit) callback(preAuthTooLarge());
      else callback(null, chunk);
    },
  });
  payload.on('error', (error) => out.destroy(error));
  return payload.pipe(out);
}

function needsAuth(request: FastifyRequest): boolean {
  // Fail closed: a route without an explicit mode needs a device. Only the
  // not-found handler (no route) passes through, to answer 404.
  return request.routeOptions.url !== undefined && request.routeOptions.config.auth !== 'none';
}

export const authPlugin = fp(
  async (app: FastifyInstance) => {
    app.decorateRequest('identity', null);
    app.decorateRequest('bodySha256', undefined);
    app.decorateRequest('pendingAuth', undefined);
    app.decorateRequest('headerCertificate', undefined);
    app.decorateRequest('replayRecord', undefined);

    /** Counts authentication failures; a refused request with an unread body closes its connection. */
    const accounted = async <T>(request: FastifyRequest, reply: FastifyReply, step: () => Promise<T> | T): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (typeof code === 'string' && code.startsWith('AUTH_')) app.relay.metrics.authFailures.inc({ code });
        if (hasBody(request.headers)) reply.header('connection', 'close');
        throw error;
      }
    };

    app.addHook('preParsing', async (request, reply, payload) => {
      if (!needsAuth(request)) return payload;
      return accounted(request, reply, () => beginAuth(app, request, payload));
    });
    app.addHook('preValidation', async (request, reply) => {
      const pending = request.pendingAuth;
      if (pending) {
        request.pendingAuth = undefined;
        await accounted(request, reply, () => finishAuth(app, request, pending));
      }
      // A registration authenticated by its header registers that certificate and no other.
      const certificate = (request.body as { certificate?: unknown } | undefined)?.certificate;
      if (request.headerCertificate !== undefined && certificate !== request.headerCertificate) {
        throw relayError('BAD_CERTIFICATE', 'the body registers another certificate than the Parley-Certificate header');
      }
    });
    app.addHook('preHandler', async (request) => {
      if (needsAuth(request) && !request.identity) throw relayError('AUTH_REQUIRED', 'request not authenticated');
    });
  },
  { name: 'parley-auth', dependencies: ['parley-context'] },
);

/** The identity of an authenticated request (the hook guarantees it on non-'none' routes). */
export function identityOf(request: FastifyRequest): Identity {
  if (!request.identity) throw relayError('INTERNAL', 'route has no authenticated identity');
  return request.identity;
}

/** The registered device behind a device-signed request. */
export function deviceOf(request: FastifyRequest): Identity & { device: NonNullable<Identity['device']> } {
  const identity = identityOf(request);
  if (!identity.device) throw relayError('FORBIDDEN', 'this route needs a device signature');
  return identity as Identity & { device: NonNullable<Identity['device']> };
}

/** Whether a body matches the digest its signature covers (public values; plain comparison is fine). */
export function bodyMatches(request: FastifyRequest, sha256: Uint8Array): boolean {
  return request.bodySha256 === undefined || sameBytes(sha256, request.bodySha256);
}
