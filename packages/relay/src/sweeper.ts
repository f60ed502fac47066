/**
 * Deletes what has expired: messages past their TTL, idempotency records,
 * attachments (rows and files), replay records, full budget buckets.
 * spec/09-relay.md §6.
 */
import type { FastifyInstance } from 'fastify';
import type { SweepResult } from './storage/types.ts';

/**
 * One sweep: bounded writes (SWEEP_CHUNK_ROWS rows each) one after another, all with the time it
 * started, until one says nothing due then is left. Other writes commit between them. It ends:
 * every write but the last deletes a full bound of rows that were due at that fixed time.
 * Also called by tests with a moved clock; returns the totals.
 */
export async function sweepOnce(app: FastifyInstance): Promise<SweepResult> {
  const { storage, blobs, metrics, now } = app.relay;
  const t = now();
  const total = { messages: 0, sentIds: 0, attachments: [] as string[], seenRequests: 0, budgets: 0, more: false };
  for (let more = true; more; ) {
    const result = await storage.sweep(t);
    for (const id of result.attachments) await blobs.remove(id);
    metrics.swept.inc({ kind: 'messages' }, result.messages);
    metrics.swept.inc({ kind: 'idempotency_records' }, result.sentIds);
    metrics.swept.inc({ kind: 'attachments' }, result.attachments.length);
    metrics.swept.inc({ kind: 'replay_records' }, result.seenRequests);
    metrics.swept.inc({ kind: 'budget_buckets' }, result.budgets);
    total.messages += result.messages;
    total.sentIds += result.sentIds;
    total.attachments.push(...result.attachments);
    total.seenRequests += result.seenRequests;
    total.budgets += result.budgets;
    more = result.more;
  }
  // Destroying a frank key ends the proofs of its period (spec/14-franking.md §4.1).
  metrics.swept.inc({ kind: 'frank_keys' }, await storage.sweepFrankKeys(t));
  return total;
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
