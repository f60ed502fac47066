/**
 * Delivery tokens: a recipient device registers token hashes for its
 * account, revokes them (block) and flags one (report). The relay stores
 * hashes only and never learns who holds a token. spec/12-sealed-sender.md §5.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { deviceOf } from '../auth/authenticate.ts';
import { fromBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import {
  FLAGS_TO_REVOKE,
  MAX_TOKENS_PER_ACCOUNT,
  MAX_TOKENS_PER_REQUEST,
  TOKEN_LIFETIME_MS,
  TOKEN_SWEEP_INTERVAL_MS,
} from '../limits/sealed.ts';
import { Sha256, errorResponses } from '../schemas.ts';
import type { TokenStore } from '../storage/tokens-types.ts';

const TokenHash = Sha256;

/**
 * Body bytes of a token registration or revocation: MAX_TOKENS_PER_REQUEST
 * entries of at most ~110 JSON bytes (43-character hash, a 13-digit expiry,
 * the scope, punctuation), with room to spare. Without it the default small
 * body limit (1 KiB) would take fewer than ten tokens.
 */
export const TOKENS_BODY_BYTES = 48 * 1024;

export const RegisterTokensBody = Type.Object(
  {
    tokens: Type.Array(
      Type.Object(
        {
          hash: TokenHash,
          expiresAt: Type.Integer({ minimum: 0, description: `Milliseconds since the epoch; clamped to now + ${TOKEN_LIFETIME_MS} ms` }),
          scope: Type.Union([Type.Literal('contact'), Type.Literal('group')]),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_TOKENS_PER_REQUEST },
    ),
  },
  { additionalProperties: false },
);

export const RevokeTokensBody = Type.Object(
  { hashes: Type.Array(TokenHash, { minItems: 1, maxItems: MAX_TOKENS_PER_REQUEST }) },
  { additionalProperties: false },
);

export const FlagTokenBody = Type.Object(
  {
    hash: TokenHash,
    reason: Type.Union([Type.Literal('spam'), Type.Literal('abuse'), Type.Literal('other')]),
  },
  { additionalProperties: false },
);

/** The token store, or 404 on a storage without one (the v2 routes are then absent to clients). */
export function tokenStore(store: TokenStore | undefined): TokenStore {
  if (!store) throw relayError('NOT_FOUND', 'this relay stores no delivery tokens');
  return store;
}

export async function tokenRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const tokenEvents = new Counter({
    name: 'parley_relay_token_events_total',
    help: 'Delivery token registrations, revocations and flags, by event (no token, account or id in labels)',
    labelNames: ['event'] as const,
    registers: [relay.metrics.registry],
  });

  // Expired tokens and old budget windows go on a timer of their own (the v1 sweeper knows nothing of them).
  const timer = setInterval(() => {
    relay.storage.tokens?.sweepTokens(relay.now()).catch((err: unknown) => app.log.warn({ err }, 'token sweep failed'));
  }, TOKEN_SWEEP_INTERVAL_MS);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));

  app.put(
    '/v2/tokens',
    {
      config: { auth: 'device' },
      bodyLimit: TOKENS_BODY_BYTES,
      schema: {
        summary: "Register delivery token hashes for the signing device's account",
        description: `Hashes only (SHA-256 over the token and the account, spec/12-sealed-sender.md §3). A known hash has its expiry updated. All or nothing: 409 TOO_MANY_TOKENS when the account would hold more than ${MAX_TOKENS_PER_ACCOUNT} live tokens.`,
        tags: ['sealed'],
        body: RegisterTokensBody,
        response: { 200: Type.Object({ live: Type.Integer() }), ...errorResponses(409) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const store = tokenStore(relay.storage.tokens);
      const now = relay.now();
      const tokens = request.body.tokens.map((t, i) => ({
        hash: fromBase64Url(t.hash, `tokens[${i}].hash`, 32),
        expiresAt: Math.min(t.expiresAt, now + TOKEN_LIFETIME_MS),
        scope: t.scope,
      }));
      if (tokens.some((t) => t.expiresAt <= now)) throw relayError('VALIDATION_FAILED', 'a token that has already expired');
      const result = await store.registerTokens(me.accountKey, tokens, now, MAX_TOKENS_PER_ACCOUNT);
      if (result.status === 'too-many') {
        tokenEvents.inc({ event: 'refused_too_many' });
        throw relayError('TOO_MANY_TOKENS', `at most ${result.limit} live tokens per account`, { limit: result.limit });
      }
      tokenEvents.inc({ event: 'registered' }, tokens.length);
      return { live: result.live };
    },
  );

  app.delete(
    '/v2/tokens',
    {
      config: { auth: 'device' },
      bodyLimit: TOKENS_BODY_BYTES,
      schema: {
        summary: "Revoke delivery tokens of the signing device's account (block)",
        description: "Effective at once for later sends. Hashes that are unknown or another account's are ignored.",
        tags: ['sealed'],
        body: RevokeTokensBody,
        response: { 200: Type.Object({ revoked: Type.Integer() }), ...errorResponses() },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const store = tokenStore(relay.storage.tokens);
      const hashes = request.body.hashes.map((h, i) => fromBase64Url(h, `hashes[${i}]`, 32));
      const revoked = await store.revokeTokens(me.accountKey, hashes);
      tokenEvents.inc({ event: 'revoked' }, revoked);
      return { revoked };
    },
  );

  app.post(
    '/v2/tokens/flag',
    {
      config: { auth: 'device' },
      schema: {
        summary: "Flag one of the account's delivery tokens as abused",
        description: `Each flag halves the token's budget; the ${FLAGS_TO_REVOKE}rd revokes it. The relay cannot tell who holds the token.`,
        tags: ['sealed'],
        body: FlagTokenBody,
        response: { 200: Type.Object({ status: Type.Union([Type.Literal('flagged'), Type.Literal('revoked')]) }), ...errorResponses(404) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const store = tokenStore(relay.storage.tokens);
      const outcome = await store.flagToken(me.accountKey, fromBase64Url(request.body.hash, 'hash', 32), FLAGS_TO_REVOKE);
      if (outcome === 'unknown') throw relayError('NOT_FOUND', 'no such live token of this account');
      tokenEvents.inc({ event: outcome });
      return { status: outcome };
    },
  );
}
