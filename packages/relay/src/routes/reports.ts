/**
 * Abuse reports (spec/14-franking.md §7): `POST /v2/reports`, signed by the
 * recipient device that holds the reported message. The relay verifies
 * every item's frank and franking tag (franking/verify.ts), refuses a
 * second report of one envelope by one account and more than
 * REPORTS_PER_DAY per account, and queues the report for moderators. The
 * reported sender is told nothing.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { decodeReport } from '@parley/core';
import type { FastifyInstance } from 'fastify';
import { deviceOf } from '../auth/authenticate.ts';
import { relayError } from '../errors.ts';
import { verifyStoredReport } from '../franking/verify.ts';
import { base64UrlLength, fromBase64Url } from '../http/encoding.ts';
import { rateBudget } from '../limits/rate-budgets.ts';
import { errorResponses } from '../schemas.ts';

/** Reports one reporter account may queue per day: report spam against moderators (formats-v2 §13.2). */
export const REPORTS_PER_DAY = 20;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Largest encoded report accepted: the reported message at the largest
 * plaintext (1 MiB) plus ten ordinary context messages. A reported file is
 * checked against the relay's own stored blob (the pointer inside the
 * franked plaintext names it and commits to it); a reporter may send a small
 * blob inline (one the relay no longer stores) within this same limit.
 */
export const MAX_REPORT_WIRE_BYTES = 2 * 1024 * 1024;

const ReportBody = Type.Object(
  {
    report: Type.String({
      pattern: '^[A-Za-z0-9_-]*$',
      contentEncoding: 'base64url',
      description: 'The AbuseReport (CBOR, spec/14-franking.md §7.1), base64url',
    }),
  },
  { additionalProperties: false },
);

export async function reportRoutes(instance: FastifyInstance): Promise<void> {
  const app = instance.withTypeProvider<TypeBoxTypeProvider>();
  const { relay } = app;
  // File-check work per reporter account (spec/17 §5 step 3a). At least one largest report's cost is
  // always chargeable, so a budget set below MAX_REPORT_BLOB_BYTES slows reports down instead of refusing them all.
  const checkCapacity = relay.config.rateLimits.reportCheckBytesPerDayPerAccount;
  const fileChecks = rateBudget(relay.storage, 'report-checks', { capacity: checkCapacity, windowMs: DAY_MS });

  app.post(
    '/v2/reports',
    {
      config: { auth: 'device' },
      bodyLimit: base64UrlLength(MAX_REPORT_WIRE_BYTES) + 1024,
      schema: {
        summary: 'Report a received message (and up to 10 context messages) to the moderators',
        description:
          "Signed by the recipient device. Every item's frank and franking tag are verified: 422 FRANK_KEY_EXPIRED, FRANK_INVALID, TAG_MISMATCH, CONTEXT_MISMATCH, ATTACHMENT_MISMATCH, ATTACHMENT_UNAVAILABLE, TOKEN_INVALID_IN_REPORT (sealed items need the moderation service), 413 PAYLOAD_TOO_LARGE (files to check above MAX_REPORT_BLOB_BYTES), 409 REPORT_DUPLICATE, 429 REPORT_BUDGET_EXCEEDED, 429 RATE_LIMITED (the account's report file-check budget is spent; nothing was read). 202: queued.",
        tags: ['reports'],
        body: ReportBody,
        response: { 202: Type.Object({ queued: Type.Boolean() }), ...errorResponses(409, 413, 422) },
      },
    },
    async (request, reply) => {
      const me = deviceOf(request);
      const now = relay.now();
      const refuse = (code: Parameters<typeof relayError>[0], message: string, details?: Record<string, unknown>) => {
        relay.metrics.reports.inc({ outcome: code });
        return relayError(code, message, details);
      };
      /** What this report's file check took from the budget: given back if the report is queued. */
      let charged = 0;
      const bytes = fromBase64Url(request.body.report, 'report', { max: MAX_REPORT_WIRE_BYTES });
      let report: ReturnType<typeof decodeReport>;
      try {
        report = decodeReport(bytes);
      } catch (error) {
        // Core's typed decode error, without any report byte in it.
        throw refuse('MALFORMED', `report: ${(error as Error).message}`);
      }
      const verdict = await verifyStoredReport(report, {
        storage: relay.storage,
        frankKeys: relay.frankKeys,
        provider: relay.provider,
        reporter: me.accountKey,
        now,
        checkDuplicate: true,
        blobs: relay.blobs,
        chargeFiles: async (cost) => {
          charged = Math.min(cost, checkCapacity);
          const taken = await fileChecks.take(me.account, charged, now);
          if (!taken.ok) charged = 0;
          return taken;
        },
      });
      if (!verdict.ok && verdict.code === 'RATE_LIMITED') {
        relay.metrics.rateLimited.inc({ limit: 'report_checks' });
        const retryAfterSeconds = Math.ceil((verdict.retryAfterMs ?? 1000) / 1000);
        throw refuse('RATE_LIMITED', "this account's report file checks for the day are spent; retry later", { retryAfterSeconds });
      }
      if (!verdict.ok) {
        const details = verdict.reason === undefined ? { item: verdict.item } : { item: verdict.item, reason: verdict.reason };
        throw refuse(verdict.code, `report item ${verdict.item} refused: ${verdict.code}`, details);
      }
      const first = report.items[0] as (typeof report.items)[number];
      const filed = await relay.storage.fileReport({
        reporter: { accountKey: me.accountKey, deviceId: me.deviceId },
        envelopeId: first.envelopeId,
        receivedAt: now,
        report: bytes,
        maxPerWindow: REPORTS_PER_DAY,
        windowMs: DAY_MS,
      });
      if (filed.status === 'duplicate') throw refuse('REPORT_DUPLICATE', 'this envelope was already reported by this account');
      if (filed.status === 'over-budget') {
        throw refuse('REPORT_BUDGET_EXCEEDED', `at most ${REPORTS_PER_DAY} reports per account and day`, { limit: REPORTS_PER_DAY });
      }
      // Queued reports are bounded by REPORTS_PER_DAY: only refused ones spend the file-check budget.
      if (charged > 0) await fileChecks.giveBack([{ key: me.account, amount: charged }], now);
      relay.metrics.reports.inc({ outcome: 'queued' });
      return reply.code(202).send({ queued: true });
    },
  );
}
