/**
 * Turns a refused `storeMessages` result into the relay's coded error, for
 * the /v2 send routes (sealed and strangers path). Same codes and details as
 * the v1 send (spec/09-relay.md §4.3), so clients handle them once.
 */
import type { RelayContext } from '../context.ts';
import { toBase64Url } from '../http/encoding.ts';
import { relayError } from '../errors.ts';
import type { StoreMessagesResult } from '../storage/types.ts';

export function throwIfRefused(
  relay: RelayContext,
  result: StoreMessagesResult,
): asserts result is Extract<StoreMessagesResult, { status: 'stored' }> {
  switch (result.status) {
    case 'stored':
      return;
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
