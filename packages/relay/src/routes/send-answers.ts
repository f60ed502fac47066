/**
 * What a send and a group fan-out answer alike (spec/09-relay.md §4.3,
 * §4.3.1): the per-recipient byte rate checked before anything is stored,
 * and the storage's verdict turned into 200 or a typed refusal, each
 * counted in the metrics. One place, so the two routes cannot drift apart.
 */
import type { RelayContext } from '../context.ts';
import { relayError } from '../errors.ts';
import { toBase64Url } from '../http/encoding.ts';
import type { TokenBuckets } from '../limits/token-buckets.ts';
import type { StoreMessagesResult } from '../storage/types.ts';

/**
 * Refuses (429 RATE_LIMITED) when one recipient account would receive more
 * envelope bytes from this sender account than its rate allows; takes
 * nothing (the caller takes the bytes once the send is stored).
 */
export function checkRecipientRates(
  relay: RelayContext,
  buckets: TokenBuckets,
  sender: string,
  bytesPerAccount: ReadonlyMap<string, number>,
  now: number,
): void {
  for (const [account, bytes] of bytesPerAccount) {
    const verdict = buckets.check(`${sender}>${account}`, bytes, now);
    if (!verdict.ok) {
      relay.metrics.rateLimited.inc({ limit: 'recipient_bytes' });
      relay.metrics.sendsRejected.inc({ code: 'RATE_LIMITED' });
      const retryAfterSeconds = Math.ceil(verdict.retryAfterMs / 1000);
      throw relayError('RATE_LIMITED', 'a recipient is receiving too much; retry later', { retryAfterSeconds });
    }
  }
}

/** The send's rate-limit spend, once it is stored. */
export function takeRecipientRates(buckets: TokenBuckets, sender: string, bytesPerAccount: ReadonlyMap<string, number>, now: number): void {
  for (const [account, bytes] of bytesPerAccount) buckets.take(`${sender}>${account}`, bytes, now);
}

/**
 * 200 `{accepted}` for a stored send (waking the recipients' websockets and
 * calling `onStored` when anything new was stored), else the refusal.
 * `bytes` is what the send delivers in total (metrics).
 */
export function answerSend(
  relay: RelayContext,
  result: StoreMessagesResult,
  sent: { readonly envelopes: number; readonly bytes: number; readonly onStored: () => void },
): { accepted: number } {
  switch (result.status) {
    case 'stored': {
      const { metrics, hub } = relay;
      metrics.envelopesAccepted.inc(result.stored);
      metrics.envelopesDuplicate.inc(result.duplicates);
      if (result.stored > 0) {
        sent.onStored();
        metrics.envelopeBytesAccepted.inc(sent.bytes);
        hub.notify(result.recipients);
      }
      return { accepted: sent.envelopes };
    }
    case 'mismatched-devices':
      relay.metrics.sendsRejected.inc({ code: 'MISMATCHED_DEVICES' });
      throw relayError('MISMATCHED_DEVICES', "the send does not cover exactly the recipients' devices", {
        mismatches: result.mismatches.map((m) => ({
          account: toBase64Url(m.accountKey),
          missingDevices: m.missingDevices,
          extraDevices: m.extraDevices,
        })),
      });
    case 'stale-devices':
      relay.metrics.sendsRejected.inc({ code: 'STALE_DEVICES' });
      throw relayError('STALE_DEVICES', 'some devices have a new certificate; fetch their bundles again', {
        stale: result.stale.map((s) => ({ account: toBase64Url(s.accountKey), staleDevices: s.staleDevices })),
      });
    case 'mailbox-full':
      relay.metrics.sendsRejected.inc({ code: 'MAILBOX_FULL' });
      relay.metrics.rateLimited.inc({ limit: result.scope === 'mailbox' ? 'mailbox' : 'mailbox_sender_share' });
      throw relayError(
        'MAILBOX_FULL',
        result.scope === 'mailbox' ? 'a recipient mailbox is full' : "this sender's share of a recipient mailbox is full",
        {
          scope: result.scope,
          devices: result.devices.map((d) => ({ account: toBase64Url(d.accountKey), deviceId: d.deviceId })),
        },
      );
  }
}
