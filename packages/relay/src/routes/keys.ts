/**
 * Prekeys: upload (append, idempotent), count, and bundle fetch (one
 * device or all), which takes each one-time prekey exactly once.
 * spec/09-relay.md §4.2.
 */
import { PROTOCOL_VERSION, decodeCertificate, decodeKemPreKey, decodeOneTimePreKey, decodeSignedPreKey, encodeBundle } from '@parley/core';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { deviceOf } from '../auth/authenticate.ts';
import { fromBase64Url, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { rateBudget } from '../limits/rate-budgets.ts';
import { checkPreKeyUpload } from './prekey-upload.ts';
import { BundleParams, BundleResponse, PreKeyCounts, PreKeyUploadBody, PreKeyUploadResponse, errorResponses } from '../schemas.ts';
import type { ClaimedKeys } from '../storage/types.ts';

const DAY = 86_400_000;

export async function keyRoutes(instance: FastifyInstance): Promise<void> {
  // Request params, query and body are typed from each route's schema (validated before the handler runs).
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const { rateLimits } = relay.config;
  // Request-count budget per requesting account, shared by every process on the storage ...
  const bundleFetches = rateBudget(relay.storage, 'bundle-fetches', {
    capacity: rateLimits.bundleFetchesPerMinutePerAccount,
    windowMs: 60_000,
  });
  // ... and stored budgets per target device, requester and pair: past
  // them, bundles come without one-time keys (limits/prekey-budget.ts).
  const perDay = (capacity: number) => ({ capacity, windowMs: DAY });

  app.put(
    '/v1/keys',
    {
      config: { auth: 'device' },
      schema: {
        summary: "Upload the signing device's prekeys",
        description:
          'Signed and last-resort keys replace the current ones unless older; one-time keys are appended. Keys already stored, and one-time key ids at or below the highest id ever handed out, are ignored: a retried upload changes nothing.',
        tags: ['keys'],
        body: PreKeyUploadBody,
        response: { 200: PreKeyUploadResponse, ...errorResponses(409) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const upload = checkPreKeyUpload(request.body, me.device.signingKey, relay.provider);
      const result = await relay.storage.uploadPreKeys(me, upload, relay.config.limits);
      if (result.status === 'not-found') throw relayError('AUTH_UNKNOWN_DEVICE', 'device was removed');
      if (result.status === 'too-many-prekeys') {
        throw relayError('TOO_MANY_PREKEYS', `at most ${result.limit} ${result.kind} prekeys per device`, {
          kind: result.kind,
          limit: result.limit,
        });
      }
      return { ...result.counts, ignored: result.ignored };
    },
  );

  app.get(
    '/v1/keys',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'How many prekeys the signing device has left (replenish when low)',
        tags: ['keys'],
        response: { 200: PreKeyCounts, ...errorResponses() },
      },
    },
    async (request) => {
      const counts = await relay.storage.preKeyCounts(deviceOf(request));
      if (!counts) throw relayError('AUTH_UNKNOWN_DEVICE', 'device was removed');
      return counts;
    },
  );

  app.get(
    '/v1/keys/:account/:deviceId',
    {
      config: { auth: 'device' },
      schema: {
        summary: "Fetch prekey bundles for one device or all of an account's devices",
        description:
          "Each bundle holds the device certificate, its signed prekey, at most one one-time prekey (taken: never handed out again) and a one-time KEM prekey, or the last-resort KEM prekey when none is left. With '*', the requesting device itself is left out. Rate-limited per requesting account. One-time keys are handed out within daily budgets per target device, per requesting account and per pair; past one, bundles come without one-time keys (and with the last-resort KEM key).",
        tags: ['keys'],
        params: BundleParams,
        response: { 200: BundleResponse, ...errorResponses(404) },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const now = relay.now();
      const verdict = await bundleFetches.take(me.account, 1, now);
      if (!verdict.ok) {
        relay.metrics.rateLimited.inc({ limit: 'bundle_fetches' });
        const retryAfterSeconds = Math.ceil(verdict.retryAfterMs / 1000);
        reply.header('retry-after', String(retryAfterSeconds));
        throw relayError('RATE_LIMITED', 'too many bundle fetches', { retryAfterSeconds });
      }
      const params = request.params;
      const accountKey = fromBase64Url(params.account, 'account', 32);
      const claimed = await relay.storage.claimPreKeys({
        accountKey,
        deviceId: params.deviceId === '*' ? 'all' : Number(params.deviceId),
        exclude: me,
        budget: {
          requester: me.accountKey,
          perRequester: perDay(rateLimits.oneTimePreKeysPerDayPerRequester),
          perTarget: perDay(rateLimits.oneTimePreKeysPerDayPerDevice),
          perPair: perDay(rateLimits.oneTimePreKeysPerDayPerPair),
          now,
        },
      });
      for (const c of claimed) {
        if (c.budgetSpent) relay.metrics.rateLimited.inc({ limit: `one_time_prekeys_per_${c.budgetSpent}` });
      }
      if (claimed.length === 0) throw relayError('NOT_FOUND', 'no such device');
      return { account: params.account, bundles: claimed.map((c) => bundleEntry(app, c)) };
    },
  );
}

function bundleEntry(app: FastifyInstance, c: ClaimedKeys) {
  const { metrics, provider } = app.relay;
  metrics.preKeysHandedOut.inc({ kind: c.oneTimePreKey ? 'one_time' : 'no_one_time' });
  metrics.preKeysHandedOut.inc({ kind: c.kemLastResort ? 'kem_last_resort' : 'kem_one_time' });
  const bundle = encodeBundle({
    version: PROTOCOL_VERSION,
    certificate: decodeCertificate(c.certificate),
    signedPreKey: decodeSignedPreKey(c.signedPreKey),
    oneTimePreKey: c.oneTimePreKey ? decodeOneTimePreKey(c.oneTimePreKey) : null,
    kemPreKey: decodeKemPreKey(c.kemPreKey),
  });
  return {
    deviceId: c.deviceId,
    bundle: toBase64Url(bundle),
    certificateHash: toBase64Url(provider.backend.sha256(c.certificate)),
  };
}
