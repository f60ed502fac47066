/**
 * Request authentication: a signature by the device's Ed25519 signing key
 * (or the account key) over the method, host, path, body hash, timestamp and
 * a nonce, within a replay window. spec/09-relay.md §3.
 *
 * The relay stores only public keys, so a copy of its database lets nobody
 * sign as a device. The mailbox a request touches is always taken from the
 * identity established here, never from a parameter.
 *
 * Runs as a preHandler: after the body is parsed and validated (the body
 * hash needs the bytes; a registration needs the certificate in the body).
 */
import { type DeviceCertificate, decodeCertificate, verifyCertificate } from '@parley/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { ACCOUNT_SIGNER, requestSignedBytes } from './auth/canonical.ts';
import type { Identity } from './context.ts';
import { fromBase64Url, toBase64Url } from './encoding.ts';
import { relayError } from './errors.ts';
import type { RegisterDeviceBody } from './schemas.ts';

/** `Authorization: Parley <account>.<deviceId>.<timestampMs>.<nonce>.<signature>` (all base64url but the integers). */
const HEADER = /^Parley ([A-Za-z0-9_-]{43})\.(0|[1-9][0-9]{0,9})\.([1-9][0-9]{0,15})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{86})$/;

/** The body hash signed for routes whose body is streamed (attachment chunks): 32 zero bytes. */
export const UNSIGNED_BODY_HASH = new Uint8Array(32);

export interface ParsedAuthorization {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  readonly timestamp: number;
  readonly nonce: Uint8Array;
  readonly signature: Uint8Array;
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

async function authenticate(app: FastifyInstance, request: FastifyRequest): Promise<Identity> {
  const { config, storage, provider, replay, now } = app.relay;
  const mode = request.routeOptions.config.auth ?? 'device';
  const auth = parseAuthorization(request.headers.authorization);

  const clock = now();
  const windowMs = config.authWindowSeconds * 1000;
  if (Math.abs(clock - auth.timestamp) > windowMs) {
    throw relayError('AUTH_STALE_TIMESTAMP', `timestamp outside the ${config.authWindowSeconds} s window`, { serverTime: clock });
  }

  let signingKey: Uint8Array;
  let device: Identity['device'];
  if (mode === 'registration') {
    const certificate = registrationCertificate(app, request.body as RegisterDeviceBody, auth);
    signingKey = certificate.signingKey;
    device = null;
  } else if (auth.deviceId === ACCOUNT_SIGNER) {
    if (mode !== 'device-or-account') throw relayError('FORBIDDEN', 'this route needs a device signature, not the account key');
    if ((await storage.listDevices(auth.accountKey)).length === 0) throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown account');
    signingKey = auth.accountKey;
    device = null;
  } else {
    const found = await storage.getDevice({ accountKey: auth.accountKey, deviceId: auth.deviceId });
    if (!found) throw relayError('AUTH_UNKNOWN_DEVICE', 'unknown device');
    signingKey = found.signingKey;
    device = found;
  }

  const bodySha256 = request.routeOptions.config.unsignedBody
    ? UNSIGNED_BODY_HASH
    : provider.backend.sha256(request.rawBody ?? new Uint8Array(0));
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
  if (!provider.backend.ed25519Verify(signingKey, signed, auth.signature)) {
    throw relayError('AUTH_BAD_SIGNATURE', 'request signature does not verify');
  }
  // Only verified signatures enter the cache: forgeries cannot fill it.
  const verdict = replay.check(toBase64Url(auth.signature), clock);
  if (verdict === 'replayed') throw relayError('AUTH_REPLAYED', 'this signed request was already received');
  if (verdict === 'full') throw relayError('UNAVAILABLE', 'too many requests in the replay window; retry later');
  return { accountKey: auth.accountKey, account: toBase64Url(auth.accountKey), deviceId: auth.deviceId, device };
}

/** The certificate being registered: well-formed, signed by its account, and naming the signer. */
function registrationCertificate(app: FastifyInstance, body: RegisterDeviceBody, auth: ParsedAuthorization): DeviceCertificate {
  const certificate = decodeCertificate(fromBase64Url(body.certificate, 'certificate'));
  verifyCertificate(app.relay.provider.backend, certificate, auth.accountKey);
  if (certificate.deviceId !== auth.deviceId) {
    throw relayError('BAD_CERTIFICATE', 'the certificate names another device than the Authorization header');
  }
  return certificate;
}

export const authPlugin = fp(
  async (app: FastifyInstance) => {
    app.decorateRequest('identity', null);
    app.addHook('preHandler', async (request) => {
      // Fail closed: a route without an explicit mode needs a device. Only
      // the not-found handler (no route) passes through, to answer 404.
      if (request.routeOptions.url === undefined || request.routeOptions.config.auth === 'none') return;
      try {
        request.identity = await authenticate(app, request);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (typeof code === 'string' && code.startsWith('AUTH_')) app.relay.metrics.authFailures.inc({ code });
        throw error;
      }
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
