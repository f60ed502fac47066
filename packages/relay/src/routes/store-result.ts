/**
 * The one mapping of a refused `storeMessages`/`storeFanout` result to the
 * relay's coded error, with its metrics: used by the v1 send and fan-out
 * (send-answers.ts) and the /v2 sealed and strangers routes, so a client
 * handles each refusal once whichever route it used (spec/09-relay.md §4.3,
 * §8.3 for the rate-limited counts).
 */
import type { RelayContext } from '../context.ts';
import { relayError } from '../errors.ts';
import { toBase64Url } from '../http/encoding.ts';
import type { StoreMessagesResult } from '../storage/types.ts';

/** 429 RATE_LIMITED for a spent per-recipient byte rate (taken before the store or inside it), counted. */
export function rateLimited(relay: RelayContext, retryAfterMs: number) {
  relay.metrics.rateLimited.inc({ limit: 'recipient_bytes' });
  relay.metrics.sendsRejected.inc({ code: 'RATE_LIMITED' });
  const retryAfterSeconds = Math.ceil(retryAfterMs / 1000);
  return relayError('RATE_LIMITED', 'a recipient is receiving too much; retry later', { retryAfterSeconds });
}

export function throwIfRefused(
  relay: RelayContext,
  result: StoreMessagesResult,
): asserts result is Extract<StoreMessagesResult, { status: 'stored' }> {
  switch (result.status) {
    case 'stored':
      return;
    case 'request-refused':
      // A replay record written with the send (§3.3): the answers a record written on its own gets.
      if (result.verdict === 'replayed') relay.metrics.authFailures.inc({ code: 'AUTH_REPLAYED' });
      throw relay.replay.refusal(result.verdict);
    case 'rate-limited':
      throw rateLimited(relay, result.retryAfterMs);
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
      // A refusal by quota whichever route hit it (spec §8.3 lists `mailbox` and `mailbox_sender_share`).
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
