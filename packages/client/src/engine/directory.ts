/**
 * The device directory: which devices of an account we encrypt to and
 * accept messages from. spec/10-client.md §5.
 *
 * Three sources, trusted in this order: the account-signed device list
 * (the highest revision seen, from a message, a link or the relay, which
 * stores the latest one; never a lower revision than one already seen),
 * certificates (each must verify under the account key and be named by
 * that list), and the relay's directory (only ever a proposal, judged by
 * trust.ts). A device the relay lists that fails is reported once per
 * change as `untrusted-device` and never encrypted to; an account without a
 * signed list has no trusted device at all.
 */
import { type DeviceCertificate, bytesEqual, certificatesEqual } from '@parley/core';
import { type DeviceList, compareDeviceLists, decodeSignedDeviceList, listsCertificate } from '../devices/device-list.ts';
import { judgeDevices, trustsCertificate } from '../devices/trust.ts';
import { accountId } from '../state/ids.ts';
import { type KnownDevices, loadDevices, saveDevices } from '../state/devices.ts';
import { deleteSession } from '../state/sessions.ts';
import type { Context, Pending } from './context.ts';

/** A `checkedAt` in the distant past: fetched before, but due again (0 means never fetched). */
const NEEDS_REFRESH = 1;

/** The devices we would send to (our own device left out), loading or refreshing the relay's list when too old. */
export async function devicesFor(ctx: Context, accountKey: Uint8Array, pending: Pending, force = false): Promise<KnownDevices> {
  const known = loadDevices(ctx.store, accountKey, ctx.provider);
  // Without a signed list nothing is trusted, so a cached verdict is worth nothing: ask the relay again.
  const fresh = known.checkedAt > 0 && known.list !== null && ctx.clock() - known.checkedAt < ctx.options.deviceListMaxAgeMs;
  if (!force && fresh) return known;
  return refreshDevices(ctx, accountKey, pending);
}

/**
 * Fetches the relay's directory and signed list for an account, accepts the
 * list when it is newer than ours (it must verify; an older one changes
 * nothing), and judges the directory against the newest list we hold.
 */
export async function refreshDevices(ctx: Context, accountKey: Uint8Array, pending: Pending): Promise<KnownDevices> {
  const [relayDevices, relayList] = await Promise.all([ctx.relay.listDevices(accountKey), ctx.relay.fetchDeviceList(accountKey)]);
  const own = bytesEqual(accountKey, ctx.self.accountKey);
  const entries = relayDevices.filter((d) => !(own && d.deviceId === ctx.self.deviceId));
  return ctx.store.transaction(() => {
    if (relayList) {
      try {
        acceptSignedList(ctx, accountKey, relayList, pending);
      } catch (e) {
        pending.add('warning', {
          code: (e as { code?: string }).code ?? 'BAD_DEVICE_LIST',
          message: `the relay served a device list that does not verify (${accountId(accountKey)})`,
        });
      }
    }
    const before = loadDevices(ctx.store, accountKey, ctx.provider);
    const verdict = judgeDevices(accountKey, entries, before.list, ctx.provider);
    const next: KnownDevices = { ...before, trusted: verdict.trusted, refused: verdict.refused, checkedAt: ctx.clock() };
    commitDevices(ctx, before, next, pending);
    return next;
  });
}

/**
 * Saves a new verdict, drops sessions with devices the signed list no
 * longer names, and queues the events describing the change. Call inside a
 * transaction.
 */
export function commitDevices(ctx: Context, before: KnownDevices, next: KnownDevices, pending: Pending): void {
  saveDevices(ctx.store, next);
  const id = accountId(next.accountKey);
  const was = new Map(before.trusted.map((c) => [c.deviceId, c]));
  const now = new Map(next.trusted.map((c) => [c.deviceId, c]));
  const added = [...now.keys()].filter(
    (d) => !was.has(d) || !certificatesEqual(was.get(d) as DeviceCertificate, now.get(d) as DeviceCertificate),
  );
  const removed = [...was.keys()].filter(
    (d) => !now.has(d) || !certificatesEqual(was.get(d) as DeviceCertificate, now.get(d) as DeviceCertificate),
  );
  // Only the account's signature removes a session: a device the relay stops listing (or lists with another
  // certificate) keeps its record, unused while untrusted, archived when a new session starts (issue 11 finding 5).
  for (const deviceId of removed) {
    if (next.list && !next.list.devices.has(deviceId)) deleteSession(ctx.store, { accountKey: next.accountKey, deviceId });
  }
  if (before.checkedAt > 0 && (added.length || removed.length)) pending.add('devices-change', { account: id, added, removed });
  const reported = new Set(before.refused.map((r) => `${r.deviceId}:${r.reason}`));
  for (const r of next.refused) {
    if (!reported.has(`${r.deviceId}:${r.reason}`))
      pending.add('untrusted-device', { account: id, deviceId: r.deviceId, reason: r.reason });
  }
}

/**
 * Accepts a signed device list that arrived in a message or a link (the
 * signature is checked here). A newer revision replaces the held one and
 * the trusted set is cut down to the devices it names. Returns the list now
 * held. Call inside a transaction; a bad list throws.
 */
export function acceptSignedList(ctx: Context, accountKey: Uint8Array, encoded: Uint8Array, pending: Pending): DeviceList | null {
  const incoming = decodeSignedDeviceList(encoded, accountKey, ctx.provider);
  const before = loadDevices(ctx.store, accountKey, ctx.provider);
  const verdict = compareDeviceLists(before.list, incoming);
  if (verdict === 'conflict') {
    pending.add('warning', {
      code: 'DEVICE_LIST_CONFLICT',
      message: `two different device lists signed for one revision (${accountId(accountKey)})`,
    });
    return before.list;
  }
  if (verdict !== 'newer') return before.list;
  const trusted = before.trusted.filter((c) => listsCertificate(incoming, c, ctx.provider));
  // Earlier refusals were judged against the old list: the relay's list is fetched and judged again before the next send.
  const checkedAt = before.checkedAt > 0 ? NEEDS_REFRESH : 0;
  commitDevices(ctx, before, { ...before, list: incoming, trusted, refused: [], checkedAt }, pending);
  return incoming;
}

/**
 * Decides whether a certificate met inside a message (a new session's
 * sender) may be trusted, and if so records it as a trusted device of its
 * account. Call inside a transaction, after any device list the message
 * carried has been accepted.
 */
export function trustSender(ctx: Context, certificate: DeviceCertificate, pending: Pending): boolean {
  const before = loadDevices(ctx.store, certificate.accountKey, ctx.provider);
  const held = before.trusted.find((c) => c.deviceId === certificate.deviceId);
  if (held && certificatesEqual(held, certificate)) return true;
  if (!trustsCertificate(certificate.accountKey, certificate, before.list, ctx.provider)) return false;
  const trusted = [...before.trusted.filter((c) => c.deviceId !== certificate.deviceId), certificate].sort(
    (a, b) => a.deviceId - b.deviceId,
  );
  const refused = before.refused.filter((r) => r.deviceId !== certificate.deviceId);
  commitDevices(ctx, before, { ...before, trusted, refused }, pending);
  return true;
}

/** The trusted certificate we hold for one device, if any. */
export function trustedCertificate(ctx: Context, accountKey: Uint8Array, deviceId: number): DeviceCertificate | null {
  return loadDevices(ctx.store, accountKey, ctx.provider).trusted.find((c) => c.deviceId === deviceId) ?? null;
}

/**
 * Stores our signed device list on the relay (primary only), so a contact
 * that never heard from us can still check which of our devices are
 * current. The relay keeps the highest revision; publishing again is a
 * no-op, so upkeep repeats it to cover a publication that failed.
 */
export async function publishOwnList(ctx: Context): Promise<void> {
  const publish = ctx.relay.publishDeviceList;
  if (!ctx.account || !publish) return;
  const list = loadDevices(ctx.store, ctx.self.accountKey, ctx.provider).list;
  if (list) await publish.call(ctx.relay, list.encoded);
}
