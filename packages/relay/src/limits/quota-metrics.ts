/**
 * Metrics that show who is near a quota, without saying who: for each quota,
 * how many devices, mailboxes, sender shares or accounts are at or above
 * `NEAR_LIMIT` of it. Labels name the quota only (metrics never carry account
 * keys or device ids, spec/09-relay.md §10); an operator who sees a count
 * rise looks the rows up in storage. Refusals are counted separately, per
 * quota, in `parley_relay_rate_limited_total{limit}`. spec/09-relay.md §8.3.
 */
import { Gauge } from 'prom-client';
import type { RelayContext } from '../context.ts';
import type { QuotaPressure } from '../storage/types.ts';
import { senderShare } from './sender-share.ts';

/** "Near" means at or above this fraction of the limit: room for an alert before refusals start. */
export const NEAR_LIMIT = 0.8;

/**
 * The counts scan the quota tables, so a scrape reuses them for this long:
 * however often /metrics is asked, the scans run at most twice a minute
 * (Prometheus scrapes every 15-60 s; a gauge this coarse needs no more).
 */
export const QUOTA_METRICS_MAX_AGE_MS = 30_000;

export function registerQuotaMetrics(relay: Pick<RelayContext, 'config' | 'storage' | 'metrics' | 'now'>): Gauge<'quota'> {
  const { limits } = relay.config;
  const near = (n: number) => Math.ceil(n * NEAR_LIMIT);
  const share = senderShare(limits);
  let cached: { at: number; pressure: Promise<QuotaPressure> } | undefined;
  const pressure = (): Promise<QuotaPressure> => {
    const now = relay.now();
    if (!cached || now - cached.at >= QUOTA_METRICS_MAX_AGE_MS || now < cached.at) {
      const p = relay.storage.quotaPressure(
        {
          mailboxMessages: near(limits.maxQueuedMessagesPerDevice),
          mailboxBytes: near(limits.maxQueuedBytesPerDevice),
          senderMessages: near(share.maxQueuedMessagesPerSender),
          senderBytes: near(share.maxQueuedBytesPerSender),
          attachmentBytesDevice: near(limits.maxAttachmentBytesPerDevice),
          attachmentBytesAccount: near(limits.maxAttachmentBytesPerAccount),
        },
        now,
      );
      // A failed scan is not kept: the next scrape tries again.
      p.catch(() => {
        if (cached?.pressure === p) cached = undefined;
      });
      cached = { at: now, pressure: p };
    }
    return cached.pressure;
  };
  return new Gauge({
    name: 'parley_relay_quota_near_limit',
    help: `Devices, mailboxes, sender shares or accounts at or above ${NEAR_LIMIT * 100}% of a quota, by quota`,
    labelNames: ['quota'] as const,
    registers: [relay.metrics.registry],
    async collect() {
      const p = await pressure();
      this.set({ quota: 'mailbox_messages' }, p.mailboxMessages);
      this.set({ quota: 'mailbox_bytes' }, p.mailboxBytes);
      this.set({ quota: 'mailbox_sender_share' }, p.senderShares);
      this.set({ quota: 'attachment_bytes_per_device' }, p.attachmentBytesDevice);
      this.set({ quota: 'attachment_bytes_per_account' }, p.attachmentBytesAccount);
    },
  });
}
