/**
 * Wire-to-typed conversions shared by the HTTP and websocket sides.
 */
import { fromBase64Url } from './encoding.ts';
import type { ReceivedEnvelope, WireDeliveredMessage } from './types.ts';

export function decodeDelivered(m: WireDeliveredMessage): ReceivedEnvelope {
  return {
    seq: m.seq,
    sender: { accountKey: fromBase64Url(m.sender.account), deviceId: m.sender.deviceId },
    id: m.id,
    serverTimestamp: m.serverTimestamp,
    expiresAt: m.expiresAt,
    envelope: fromBase64Url(m.envelope),
  };
}
