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
  const total = { messages: 0, purged: 0, sentIds: 0, attachments: [] as string[], seenRequests: 0, budgets: 0, more: false };
  for (let more = true; more; ) {
    const result = await storage.sweep(t);
    for (const id of result.attachments) await blobs.remove(id);
    metrics.swept.inc({ kind: 'messages' }, result.messages);
    metrics.swept.inc({ kind: 'purged_messages' }, result.purged);
    metrics.swept.inc({ kind: 'idempotency_records' }, result.sentIds);
    metrics.swept.inc({ kind: 'attachments' }, result.attachments.length);
    metrics.swept.inc({ kind: 'replay_records' }, result.seenRequests);
    metrics.swept.inc({ kind: 'budget_buckets' }, result.budgets);
    total.messages += result.messages;
    total.purged += result.purged;
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

/** The purge running for a relay, if any (keyed by the relay's shared state: routes see a child instance). */
const purges = new WeakMap<object, Promise<number>>();

/**
 * Purges the mailboxes of removed or replaced devices in bounded writes (DEVICE_PURGE_CHUNK_ROWS
 * each) until none is left; other writes commit between them. Started after a removal or a
 * replacement and at start (a purge a crash interrupted resumes); one at a time per relay, and a
 * call while one runs returns it. Resolves to the rows purged (errors are logged).
 * spec/09-relay.md §4.1.2.
 */
export function purgeRemoved(app: FastifyInstance): Promise<number> {
  const { relay } = app;
  const running = purges.get(relay);
  if (running) return running;
  const run = (async () => {
    let purged = 0;
    for (let more = true; more; ) {
      const r = await relay.storage.purgeRemovedMailboxes();
      relay.metrics.swept.inc({ kind: 'purged_messages' }, r.purged);
      purged += r.purged;
      more = r.more;
    }
    return purged;
  })()
    .catch((error) => {
      app.log.error({ err: error }, 'mailbox purge failed');
      return 0;
    })
    .finally(() => purges.delete(relay));
  purges.set(relay, run);
  return run;
}

export function startSweeper(app: FastifyInstance): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  app.addHook('onReady', async () => {
    void purgeRemoved(app);
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
    await purges.get(app.relay);
  });
}
