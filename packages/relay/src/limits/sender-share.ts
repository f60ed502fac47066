/**
 * One sender account's share of a recipient's mailbox. Its own module
 * because the send route applies it and the quota metrics report against
 * it; in routes/messages.ts it closed an import cycle with
 * limits/quota-metrics.ts (.dependency-cruiser.cjs, no-circular).
 */
import type { RelayLimits } from '../config.ts';

/** One sender account's share of a mailbox, from the percentage (spec/09-relay.md §8.3). */
export function senderShare(limits: RelayLimits): { maxQueuedMessagesPerSender: number; maxQueuedBytesPerSender: number } {
  // At least one: a share of zero would let nobody send.
  const part = (n: number) => Math.max(1, Math.floor((n * limits.maxMailboxPercentPerSender) / 100));
  return {
    maxQueuedMessagesPerSender: part(limits.maxQueuedMessagesPerDevice),
    maxQueuedBytesPerSender: part(limits.maxQueuedBytesPerDevice),
  };
}
