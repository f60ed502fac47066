/**
 * Sealed sends and the strangers path. spec/12-sealed-sender.md §5-§6.
 *
 * POST /v2/sealed carries no authentication: each envelope presents the
 * delivery token its recipient granted. The relay hashes the token with the
 * recipient account, checks it is live and within budget, and stores the
 * envelope with the token hash where a v1 row names its sender (device 0: no
 * device has that id). So the mailbox quotas, the per-sender share and the
 * idempotency key (sender, recipient device, id) all work per token, and no
 * row, log line or metric holds anything about the sender.
 *
 * With `payload`, the request is a sealed group send (spec/12 §10): the
 * payload is stored once, each row holds its device's small seal (at most
 * MAX_GROUP_SEAL_BYTES) and a reference to it, and the whole request is one
 * transaction: the first refused account refuses all of it.
 *
 * POST /v2/messages is the identified first contact: the v1 send, signed by
 * the sender's device, limited by the strangers budgets.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { seal as coreSeal } from '@parley/core';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import { deviceOf } from '../auth/authenticate.ts';
import { fromBase64Url, toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import { frankEnvelopes } from '../franking/delivery.ts';
import { sendBodyBytes } from '../front-door/body-limits.ts';
import {
  GROUP_PAYLOAD_TAG_BYTES,
  MAX_GROUP_SEAL_BYTES,
  SEALED_RECIPIENT_RATE,
  STRANGER_ENVELOPES_PER_DAY,
  STRANGER_RECIPIENTS_PER_DAY,
  TOKEN_RATE,
} from '../limits/sealed.ts';
import { senderShare } from '../limits/sender-share.ts';
import { AccountKey, ClientId, DeviceId, MAX_ENVELOPES_PER_SEND, SendBody, SendResponse, errorResponses } from '../schemas.ts';
import type { OutgoingEnvelope, StoreMessagesResult } from '../storage/types.ts';
import { throwIfRefused } from './store-result.ts';
import { tokenStore } from './tokens.ts';

/** The device id stored in the sender slot of a sealed row: no device has it, so it marks the row sealed. */
export const SEALED_SENDER_DEVICE = 0;

const Base64Url32 = (description: string) => Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description });

export const SealedMessage = Type.Object(
  {
    account: AccountKey,
    deviceId: DeviceId,
    id: ClientId,
    token: Base64Url32('The delivery token the recipient granted (32 bytes); the relay keeps only its hash'),
    envelope: Type.String({ pattern: '^[A-Za-z0-9_-]*$', contentEncoding: 'base64url', description: 'A Seal (spec/12 §4.1)' }),
    certificateHash: Type.Optional(Base64Url32('SHA-256 of the certificate the seal was made for; a mismatch answers 410 STALE_DEVICES')),
    frankingTag: Type.Optional(
      Base64Url32(
        'The inner v2 message’s franking tag (bound into the seal’s aad): franked with no sender named and delivered with the envelope (spec/14 §4)',
      ),
    ),
  },
  { additionalProperties: false },
);

export const SealedSendBody = Type.Object(
  {
    messages: Type.Array(SealedMessage, { minItems: 1, maxItems: MAX_ENVELOPES_PER_SEND }),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, description: "At most the relay's message TTL (the default)" })),
    payload: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]+$',
        contentEncoding: 'base64url',
        description:
          'A sealed group send (spec/12 §10): the group payload, stored once; each message envelope is then that device’s seal of the GroupKeyWrap (at most 256 bytes), and each device receives a SealedGroupEnvelope [2, 7, seal, payload]',
      }),
    ),
  },
  { additionalProperties: false },
);

export async function sealedRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  const { limits } = relay.config;
  const sealedOutcomes = new Counter({
    name: 'parley_relay_sealed_sends_total',
    help: 'Sealed sends by outcome code (no token, account or id in labels)',
    labelNames: ['code'] as const,
    registers: [relay.metrics.registry],
  });
  const strangerOutcomes = new Counter({
    name: 'parley_relay_stranger_sends_total',
    help: 'Identified first-contact sends by outcome code',
    labelNames: ['code'] as const,
    registers: [relay.metrics.registry],
  });

  /**
   * The accounting of one stored sealed send, group or per account: a refusal counted by its code
   * and thrown, the accepted and duplicate counts, and the recipients woken when anything is new.
   * Returns whether anything new was stored.
   */
  function accountStored(result: StoreMessagesResult, bytes: number): boolean {
    if (result.status !== 'stored') sealedOutcomes.inc({ code: result.status });
    throwIfRefused(relay, result);
    relay.metrics.envelopesAccepted.inc(result.stored);
    relay.metrics.envelopesDuplicate.inc(result.duplicates);
    if (result.stored === 0) return false;
    relay.metrics.envelopeBytesAccepted.inc(bytes);
    // Unless the storage handed the rows to the hub at its commit (a wake-up without rows reads).
    if (!relay.storage.wakesOnCommit) relay.hub.notify(result.recipients);
    return true;
  }

  app.post(
    '/v2/sealed',
    {
      config: { auth: 'none' },
      bodyLimit: sendBodyBytes(relay.config),
      schema: {
        summary: 'Send sealed envelopes, each under its recipient’s delivery token (no authentication)',
        description:
          'One token per recipient account. With `payload`, a sealed group send: the payload is stored once, each device gets its seal and the payload, and the whole request is one transaction (the first refusal refuses all of it). 403 TOKEN_INVALID for an unknown, expired or revoked token (one code for the three); 429 TOKEN_BUDGET_EXCEEDED past a token’s or a recipient’s budget; then the v1 send checks per recipient account (409 MISMATCHED_DEVICES, 410 STALE_DEVICES, 507 MAILBOX_FULL, the token as the sender share). Idempotent per (token hash, recipient device, id). Nothing about the sender is stored.',
        tags: ['sealed'],
        security: [],
        body: SealedSendBody,
        response: { 200: SendResponse, ...errorResponses(403, 409, 410, 429, 507) },
      },
    },
    async (request) => {
      const store = tokenStore(relay.storage.tokens);
      const body = request.body;
      if (body.messages.length > limits.maxEnvelopesPerSend) {
        throw relayError('TOO_MANY_ENVELOPES', `at most ${limits.maxEnvelopesPerSend} envelopes per send`, {
          limit: limits.maxEnvelopesPerSend,
        });
      }
      // A group send: the payload once (one envelope's message encrypted once); per device only its small seal.
      const payload =
        body.payload === undefined
          ? null
          : fromBase64Url(body.payload, 'payload', { max: limits.maxEnvelopeBytes + GROUP_PAYLOAD_TAG_BYTES });
      // Shorter than a tag opens for no one: the framing every device would get is one its decoder refuses.
      if (payload !== null && payload.length < GROUP_PAYLOAD_TAG_BYTES) {
        throw relayError('MALFORMED', `payload: at least ${GROUP_PAYLOAD_TAG_BYTES} bytes (an AEAD tag)`);
      }
      const maxEnvelope = payload ? MAX_GROUP_SEAL_BYTES : limits.maxEnvelopeBytes;
      // Group the envelopes by recipient account: each account's devices are covered under one token.
      const byAccount = new Map<string, { accountKey: Uint8Array; tokenHash: Uint8Array; envelopes: OutgoingEnvelope[]; bytes: number }>();
      const seen = new Set<string>();
      const tagged: { group: { envelopes: OutgoingEnvelope[] }; index: number; frankingTag: Uint8Array }[] = [];
      body.messages.forEach((m, i) => {
        const target = `${m.account}:${m.deviceId}`;
        if (seen.has(target)) throw relayError('MALFORMED', `messages[${i}]: a second envelope for the same device`);
        seen.add(target);
        const envelope = fromBase64Url(m.envelope, `messages[${i}].envelope`, { max: maxEnvelope });
        if (envelope.length === 0) throw relayError('MALFORMED', `messages[${i}].envelope: empty`);
        const accountKey = fromBase64Url(m.account, `messages[${i}].account`, 32);
        // One SHA-256 per element: the cost an invalid token can impose, bounded by the per-IP request limit.
        const tokenHash = coreSeal.deliveryTokenHash(accountKey, fromBase64Url(m.token, `messages[${i}].token`, 32), relay.provider);
        let group = byAccount.get(m.account);
        if (!group) {
          group = { accountKey, tokenHash, envelopes: [], bytes: 0 };
          byAccount.set(m.account, group);
        } else if (toBase64Url(group.tokenHash) !== toBase64Url(tokenHash)) {
          throw relayError('MALFORMED', `messages[${i}]: one token per recipient account`);
        }
        // What the device receives: its envelope, and in a group send the payload as well.
        group.bytes += envelope.length + (payload?.length ?? 0);
        group.envelopes.push({
          recipient: { accountKey, deviceId: m.deviceId },
          clientId: m.id,
          envelope,
          ...(m.certificateHash === undefined ? {} : { certificateHash: fromBase64Url(m.certificateHash, 'certificateHash', 32) }),
        });
        if (m.frankingTag !== undefined) {
          tagged.push({ group, index: group.envelopes.length - 1, frankingTag: fromBase64Url(m.frankingTag, 'frankingTag', 32) });
        }
      });

      const now = relay.now();
      const groups = [...byAccount.values()];
      const spent = await store.spendTokens({
        uses: groups.map((g) => ({ account: g.accountKey, hash: g.tokenHash, envelopes: g.envelopes.length, bytes: g.bytes })),
        now,
        perToken: TOKEN_RATE,
        perRecipient: SEALED_RECIPIENT_RATE,
      });
      if (spent.status === 'invalid') {
        sealedOutcomes.inc({ code: 'TOKEN_INVALID' });
        throw relayError('TOKEN_INVALID', 'a delivery token is not valid for its recipient');
      }
      if (spent.status === 'budget') {
        sealedOutcomes.inc({ code: 'TOKEN_BUDGET_EXCEEDED' });
        relay.metrics.rateLimited.inc({ limit: spent.scope === 'token' ? 'sealed_token' : 'sealed_recipient' });
        throw relayError('TOKEN_BUDGET_EXCEEDED', 'a delivery token or its recipient has spent its budget; retry later', {
          scope: spent.scope,
          retryAfterSeconds: Math.ceil(spent.retryAfterMs / 1000),
        });
      }

      if (tagged.length > 0) {
        // Franked with no sender: the relay can vouch for the tag, time and recipient, never for who sent it.
        const deliveries = await frankEnvelopes(
          relay.frankKeys,
          relay.provider,
          null,
          tagged.map((t) => ({ recipient: (t.group.envelopes[t.index] as OutgoingEnvelope).recipient, frankingTag: t.frankingTag })),
          now,
        );
        for (const [i, t] of tagged.entries()) {
          t.group.envelopes[t.index] = { ...(t.group.envelopes[t.index] as OutgoingEnvelope), delivery: deliveries[i] as Uint8Array };
        }
      }
      const ttlSeconds = Math.min(body.ttlSeconds ?? relay.config.messageTtlSeconds, relay.config.messageTtlSeconds);
      if (payload) {
        // One transaction for the whole group send, all or nothing: the payload is stored once for every account.
        const result = await relay.storage.storeSealedGroup({
          payload,
          accounts: groups.map((g) => ({ sender: { accountKey: g.tokenHash, deviceId: SEALED_SENDER_DEVICE }, envelopes: g.envelopes })),
          now,
          expiresAt: now + ttlSeconds * 1000,
          maxQueuedMessages: limits.maxQueuedMessagesPerDevice,
          maxQueuedBytes: limits.maxQueuedBytesPerDevice,
          ...senderShare(limits),
        });
        if (
          accountStored(
            result,
            groups.reduce((n, g) => n + g.bytes, 0),
          )
        )
          relay.metrics.fanoutsStored.inc();
        sealedOutcomes.inc({ code: 'OK' });
        return { accepted: body.messages.length };
      }
      let accepted = 0;
      // One transaction per recipient account (its device check and quotas); a retry of the whole
      // request is safe after a later account fails, since each envelope is idempotent by its key.
      for (const g of groups) {
        const result = await relay.storage.storeMessages({
          sender: { accountKey: g.tokenHash, deviceId: SEALED_SENDER_DEVICE },
          envelopes: g.envelopes,
          now,
          expiresAt: now + ttlSeconds * 1000,
          maxQueuedMessages: limits.maxQueuedMessagesPerDevice,
          maxQueuedBytes: limits.maxQueuedBytesPerDevice,
          ...senderShare(limits),
        });
        accountStored(result, g.bytes);
        accepted += g.envelopes.length;
      }
      sealedOutcomes.inc({ code: 'OK' });
      return { accepted };
    },
  );

  app.post(
    '/v2/messages',
    {
      config: { auth: 'device' },
      bodyLimit: sendBodyBytes(relay.config),
      schema: {
        summary: 'Identified first-contact send (the strangers path)',
        description: `The v1 send, signed by the sender's device, for a recipient that has granted no token yet: at most ${STRANGER_RECIPIENTS_PER_DAY} new recipient accounts per sender account and day, at most ${STRANGER_ENVELOPES_PER_DAY} envelopes per recipient account and day (429 STRANGER_BUDGET_EXCEEDED).`,
        tags: ['sealed'],
        body: SendBody,
        response: { 200: SendResponse, ...errorResponses(409, 410, 429, 507) },
      },
    },
    async (request) => {
      const me = deviceOf(request);
      const store = tokenStore(relay.storage.tokens);
      const body = request.body;
      if (body.messages.length > limits.maxEnvelopesPerSend) {
        throw relayError('TOO_MANY_ENVELOPES', `at most ${limits.maxEnvelopesPerSend} envelopes per send`, {
          limit: limits.maxEnvelopesPerSend,
        });
      }
      const seen = new Set<string>();
      const perAccount = new Map<string, { account: Uint8Array; envelopes: number }>();
      const envelopes = body.messages.map((m, i): OutgoingEnvelope => {
        const target = `${m.account}:${m.deviceId}`;
        if (seen.has(target)) throw relayError('MALFORMED', `messages[${i}]: a second envelope for the same device`);
        seen.add(target);
        const envelope = fromBase64Url(m.envelope, `messages[${i}].envelope`, { max: limits.maxEnvelopeBytes });
        if (envelope.length === 0) throw relayError('MALFORMED', `messages[${i}].envelope: empty`);
        const accountKey = fromBase64Url(m.account, `messages[${i}].account`, 32);
        // The sender's own other devices are not strangers.
        if (m.account !== me.account) {
          const entry = perAccount.get(m.account) ?? { account: accountKey, envelopes: 0 };
          entry.envelopes += 1;
          perAccount.set(m.account, entry);
        }
        return {
          recipient: { accountKey, deviceId: m.deviceId },
          clientId: m.id,
          envelope,
          ...(m.certificateHash === undefined ? {} : { certificateHash: fromBase64Url(m.certificateHash, 'certificateHash', 32) }),
        };
      });
      const now = relay.now();
      if (perAccount.size > 0) {
        const spent = await store.spendStranger({
          sender: me.accountKey,
          recipients: [...perAccount.values()],
          now,
          recipientsPerDay: STRANGER_RECIPIENTS_PER_DAY,
          envelopesPerDay: STRANGER_ENVELOPES_PER_DAY,
        });
        if (spent.status === 'exceeded') {
          strangerOutcomes.inc({ code: 'STRANGER_BUDGET_EXCEEDED' });
          relay.metrics.rateLimited.inc({ limit: spent.scope === 'sender' ? 'stranger_sender' : 'stranger_recipient' });
          throw relayError('STRANGER_BUDGET_EXCEEDED', 'the first-contact budget is spent; retry later', {
            scope: spent.scope,
            retryAfterSeconds: Math.ceil(spent.retryAfterMs / 1000),
          });
        }
      }
      const ttlSeconds = Math.min(body.ttlSeconds ?? relay.config.messageTtlSeconds, relay.config.messageTtlSeconds);
      const result = await relay.storage.storeMessages({
        sender: me,
        envelopes,
        now,
        expiresAt: now + ttlSeconds * 1000,
        maxQueuedMessages: limits.maxQueuedMessagesPerDevice,
        maxQueuedBytes: limits.maxQueuedBytesPerDevice,
        ...senderShare(limits),
      });
      if (result.status !== 'stored') strangerOutcomes.inc({ code: result.status });
      throwIfRefused(relay, result);
      relay.metrics.envelopesAccepted.inc(result.stored);
      relay.metrics.envelopesDuplicate.inc(result.duplicates);
      if (result.stored > 0 && !relay.storage.wakesOnCommit) relay.hub.notify(result.recipients);
      strangerOutcomes.inc({ code: 'OK' });
      return { accepted: envelopes.length };
    },
  );
}
