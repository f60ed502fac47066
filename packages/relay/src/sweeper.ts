/**
 * Deletes what has expired: messages past their TTL, idempotency records,
 * attachments (rows and files), replay records, full budget buckets.
 * spec/09-relay.md §6.
 */
import type { FastifyInstance } from 'fastify';
import type { SweepResult } from './storage/types.ts';

/** One sweep; also called by tests with a moved clock. */
export async function sweepOnce(app: FastifyInstance): Promise<SweepResult> {
  const { storage, blobs, metrics, now } = app.relay;
  const t = now();
  const result = await storage.sweep(t);
  for (const id of result.attachments) await blobs.remove(id);
  metrics.swept.inc({ kind: 'messages' }, result.messages);
  metrics.swept.inc({ kind: 'idempotency_records' }, result.sentIds);
  metrics.swept.inc({ kind: 'attachments' }, result.attachments.length);
  metrics.swept.inc({ kind: 'replay_records' }, result.seenRequests);
  metrics.swept.inc({ kind: 'budget_buckets' }, result.budgets);
  // Destroying a frank key ends the proofs of its period (spec/14-franking.md §4.1).
  metrics.swept.inc({ kind: 'frank_keys' }, await storage.sweepFrankKeys(t));
  return result;
}

export function startSweeper(app: FastifyInstance): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  app.addHook('onReady', async () => {
    timer = setInterval(() => {
      if (running) return;
      running = sweepOnce(app)
        .catch((error) => app.log.error({ err: error }, 'sweep failed'))
        .finally(() => {
          running = undefined;
        });
    }, app.relay.config.sweepIntervalSeconds * 1000);
    timer.unref();
  });
  app.addHook('preClose', async () => {
    clearInterval(timer);
    await running;
  });
}
