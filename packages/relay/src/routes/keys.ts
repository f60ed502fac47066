/**
 * Prekeys: upload (append, idempotent), count, and bundle fetch (one
 * device or all), which takes each one-time prekey exactly once.
 * spec/09-relay.md §4.2.
 *
 * Two bundle routes share one handler (spec/09-relay.md §4.2.1): `/v1` serves
 * version-1 bundles exactly as before, `/v2` serves a device's PreKeyBundleV2
 * when it uploaded the v2 form of its signed prekey, and its v1 bundle
 * otherwise (a v1-only device). Same keys, same one-time key consumption.
 */
import {
  BUNDLE_V2_VERSION,
  PROTOCOL_VERSION,
  type PreKeyBundleV2,
  decodeCertificate,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodeSignedPreKey,
  decodeSignedPreKeyV2,
  encodeBundle,
} from '@parley/core';
import type { Static, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

  // Both routes validate their params with BundleParams before this runs.
  const fetchBundles = async (request: FastifyRequest, reply: FastifyReply, version: 1 | 2) => {
    const me = deviceOf(request);
    const now = relay.now();
    const verdict = await bundleFetches.take(me.account, 1, now);
    if (!verdict.ok) {
      relay.metrics.rateLimited.inc({ limit: 'bundle_fetches' });
      const retryAfterSeconds = Math.ceil(verdict.retryAfterMs / 1000);
      reply.header('retry-after', String(retryAfterSeconds));
      throw relayError('RATE_LIMITED', 'too many bundle fetches', { retryAfterSeconds });
    }
    const params = request.params as Static<typeof BundleParams>;
    const accountKey = fromBase64Url(params.account, 'account', 32);
    const claimed = await relay.storage.claimPreKeys({
      accountKey,
      deviceId: params.deviceId === '*' ? 'all' : Number(params.deviceId),
      // Only '*' leaves the requester out: a device may claim its own bundle by id (restore check).
      ...(params.deviceId === '*' ? { exclude: me } : {}),
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
    return { account: params.account, bundles: claimed.map((c) => bundleEntry(app, c, version)) };
  };

  const bundleDescription =
    "Each bundle holds the device certificate, its signed prekey, at most one one-time prekey (taken: never handed out again) and a one-time KEM prekey, or the last-resort KEM prekey when none is left. With '*', the requesting device itself is left out. Rate-limited per requesting account. One-time keys are handed out within daily budgets per target device, per requesting account and per pair; past one, bundles come without one-time keys (and with the last-resort KEM key).";

  app.get(
    '/v1/keys/:account/:deviceId',
    {
      config: { auth: 'device' },
      schema: {
        summary: "Fetch prekey bundles for one device or all of an account's devices",
        description: bundleDescription,
        tags: ['keys'],
        params: BundleParams,
        response: { 200: BundleResponse, ...errorResponses(404) },
      },
    },
    (request, reply) => fetchBundles(request, reply, 1),
  );

  app.get(
    '/v2/keys/:account/:deviceId',
    {
      config: { auth: 'device' },
      schema: {
        summary: 'Fetch prekey bundles, version 2 where the device published one',
        description: `As /v1/keys/{account}/{deviceId}, sharing its budgets and rate limit. A device that uploaded the v2 form of its signed prekey (versions and the second signature) gets a PreKeyBundleV2 (version 2); any other device its version-1 bundle. ${bundleDescription}`,
        tags: ['keys'],
        params: BundleParams,
        response: { 200: BundleResponse, ...errorResponses(404) },
      },
    },
    (request, reply) => fetchBundles(request, reply, 2),
  );
}

function bundleEntry(app: FastifyInstance, c: ClaimedKeys, version: 1 | 2) {
  const { metrics, provider } = app.relay;
  metrics.preKeysHandedOut.inc({ kind: c.oneTimePreKey ? 'one_time' : 'no_one_time' });
  metrics.preKeysHandedOut.inc({ kind: c.kemLastResort ? 'kem_last_resort' : 'kem_one_time' });
  const parts = {
    certificate: decodeCertificate(c.certificate),
    oneTimePreKey: c.oneTimePreKey ? decodeOneTimePreKey(c.oneTimePreKey) : null,
    kemPreKey: decodeKemPreKey(c.kemPreKey),
  };
  // Storage replaces both forms of the signed prekey together; the id check
  // keeps a stale v2 form (a row written by another path) from naming another key.
  const v2 = version === 2 && c.signedPreKeyV2 ? decodeSignedPreKeyV2(c.signedPreKeyV2) : null;
  const v1 = decodeSignedPreKey(c.signedPreKey);
  const served: PreKeyBundleV2 | null = v2 && v2.id === v1.id ? { version: BUNDLE_V2_VERSION, signedPreKey: v2, ...parts } : null;
  metrics.bundlesServed.inc({ route: `v${version}`, version: served ? '2' : '1' });
  const bundle = encodeBundle(served ?? { version: PROTOCOL_VERSION, signedPreKey: v1, ...parts });
  return {
    deviceId: c.deviceId,
    bundle: toBase64Url(bundle),
    certificateHash: toBase64Url(provider.backend.sha256(c.certificate)),
  };
}
