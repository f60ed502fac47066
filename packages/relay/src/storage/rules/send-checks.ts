/**
 * The checks a send passes before anything is stored, shared by every
 * storage backend (spec/09-relay.md §4.3): the send covers each recipient
 * account's devices exactly, the certificates it encrypted for are current,
 * no mailbox goes over its limits, and no sender account goes over its
 * share of a mailbox (spec §8.3: one sender cannot fill someone's mailbox
 * and lock their friends out). Pure: the backend reads the device rows
 * inside its transaction and hands them in.
 *
 * Counters include expired envelopes the sweep has not deleted yet. On a
 * 'mailbox-full' verdict the backend deletes the expired envelopes of those
 * mailboxes in the same transaction and asks again (`mailboxesToPurge`), so
 * an expired envelope never causes a refusal (issue 12 finding 7).
 */
import type {
  AttachmentQuota,
  CreateAttachmentResult,
  DeviceAddress,
  DeviceMismatch,
  OutgoingEnvelope,
  StaleDevices,
  StoreMessagesInput,
  StoreMessagesResult,
} from '../types.ts';

/** One registered device of a recipient account, as the backend read it (under its lock). */
export interface RecipientDeviceState {
  readonly device_id: number;
  readonly certificate_hash: Uint8Array;
  readonly queued_messages: number;
  readonly queued_bytes: number;
  /** What the sending account already has queued in this mailbox (0 when nothing). */
  readonly sender_messages: number;
  readonly sender_bytes: number;
}

export type SendVerdict =
  | { readonly status: 'ok'; readonly recipients: DeviceAddress[] }
  | Exclude<StoreMessagesResult, { readonly status: 'stored' }>;

export const hexOf = (a: Uint8Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('hex');

/** Recipient accounts of a send (by hex key), with the device ids it names. */
export function recipientAccounts(
  envelopes: readonly OutgoingEnvelope[],
): Map<string, { readonly accountKey: Uint8Array; readonly devices: Set<number> }> {
  const byAccount = new Map<string, { accountKey: Uint8Array; devices: Set<number> }>();
  for (const e of envelopes) {
    const k = hexOf(e.recipient.accountKey);
    let entry = byAccount.get(k);
    if (!entry) byAccount.set(k, (entry = { accountKey: e.recipient.accountKey, devices: new Set() }));
    entry.devices.add(e.recipient.deviceId);
  }
  return byAccount;
}

/**
 * `fresh` are the envelopes not yet known by client id; `devicesOf` returns
 * every registered device of an account. The device-list check covers all
 * of `input.envelopes` (a partial retry still names every device).
 */
export function checkSend(
  input: StoreMessagesInput,
  fresh: readonly OutgoingEnvelope[],
  devicesOf: (accountKey: Uint8Array) => readonly RecipientDeviceState[],
): SendVerdict {
  const senderKey = hexOf(input.sender.accountKey);
  // Per recipient account, the send must name every registered device
  // except the sender's own, and nothing else.
  const mismatches: DeviceMismatch[] = [];
  const state = new Map<string, RecipientDeviceState>();
  for (const [k, { accountKey, devices }] of recipientAccounts(input.envelopes)) {
    const registered = new Set<number>();
    for (const row of devicesOf(accountKey)) {
      if (k === senderKey && row.device_id === input.sender.deviceId) continue;
      registered.add(row.device_id);
      state.set(`${k}:${row.device_id}`, row);
    }
    const missingDevices = [...registered].filter((id) => !devices.has(id)).sort((a, b) => a - b);
    const extraDevices = [...devices].filter((id) => !registered.has(id)).sort((a, b) => a - b);
    if (missingDevices.length || extraDevices.length) mismatches.push({ accountKey, missingDevices, extraDevices });
  }
  if (mismatches.length) return { status: 'mismatched-devices', mismatches };

  const stale = new Map<string, StaleDevices>();
  for (const e of fresh) {
    if (!e.certificateHash) continue;
    const k = hexOf(e.recipient.accountKey);
    const row = state.get(`${k}:${e.recipient.deviceId}`);
    if (row && Buffer.compare(row.certificate_hash, e.certificateHash) !== 0) {
      let entry = stale.get(k);
      if (!entry) stale.set(k, (entry = { accountKey: e.recipient.accountKey, staleDevices: [] }));
      entry.staleDevices.push(e.recipient.deviceId);
    }
  }
  if (stale.size) return { status: 'stale-devices', stale: [...stale.values()] };

  const added = new Map<string, { address: DeviceAddress; messages: number; bytes: number }>();
  for (const e of fresh) {
    const k = `${hexOf(e.recipient.accountKey)}:${e.recipient.deviceId}`;
    let entry = added.get(k);
    if (!entry) added.set(k, (entry = { address: e.recipient, messages: 0, bytes: 0 }));
    entry.messages++;
    entry.bytes += e.envelope.length + (e.payloadBytes ?? 0);
  }
  const over = (pick: (row: RecipientDeviceState, a: { messages: number; bytes: number }, address: DeviceAddress) => boolean) =>
    [...added.entries()]
      .filter(([k, a]) => {
        const row = state.get(k);
        return row !== undefined && pick(row, a, a.address);
      })
      .map(([, a]) => a.address);
  const full = over(
    (row, a) => row.queued_messages + a.messages > input.maxQueuedMessages || row.queued_bytes + a.bytes > input.maxQueuedBytes,
  );
  if (full.length) return { status: 'mailbox-full', devices: full, scope: 'mailbox' };
  const shareMessages = input.maxQueuedMessagesPerSender ?? input.maxQueuedMessages;
  const shareBytes = input.maxQueuedBytesPerSender ?? input.maxQueuedBytes;
  // A share protects a mailbox from other accounts: an account's own devices
  // (sync messages to a linked device that is away) may use all of it.
  const share = over(
    (row, a, address) =>
      hexOf(address.accountKey) !== senderKey &&
      (row.sender_messages + a.messages > shareMessages || row.sender_bytes + a.bytes > shareBytes),
  );
  if (share.length) return { status: 'mailbox-full', devices: share, scope: 'sender-share' };
  return { status: 'ok', recipients: [...added.values()].map((a) => a.address) };
}

/**
 * Mailboxes worth purging of expired envelopes before answering
 * 'mailbox-full' (only full ones: a purge costs an index range scan).
 */
export function mailboxesToPurge(verdict: SendVerdict): DeviceAddress[] {
  return verdict.status === 'mailbox-full' ? verdict.devices : [];
}

/**
 * The stored-bytes quotas of an upload of `size` (spec §8.3), given what the
 * owner's device and account hold now: the refusal, or undefined.
 */
export function attachmentQuotaVerdict(
  size: number,
  deviceBytes: number,
  accountBytes: number,
  quota: AttachmentQuota,
): CreateAttachmentResult | undefined {
  if (deviceBytes + size > quota.maxBytesPerDevice) return { status: 'quota-exceeded', scope: 'device', limit: quota.maxBytesPerDevice };
  if (accountBytes + size > quota.maxBytesPerAccount)
    return { status: 'quota-exceeded', scope: 'account', limit: quota.maxBytesPerAccount };
  return undefined;
}
