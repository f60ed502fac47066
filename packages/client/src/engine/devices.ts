/**
 * This account's devices: listing them, approving a link (step 2 of
 * spec/10-client.md §5.2) and removing one (§5.3). The last two are the
 * primary's: each signs the next revision of our device list, stores it,
 * queues it to our devices and everyone we know, and publishes it to the
 * relay once committed.
 */
import { type Account, type DeviceCertificate, bytesEqual } from '@parley/core';
import { certificateHash, signDeviceList } from '../devices/device-list.ts';
import { decodeLinkRequest, encodeLinkResponse } from '../devices/linking.ts';
import { ClientError } from '../errors.ts';
import type { KnownDevices } from '../state/devices.ts';
import { loadDevices, saveDevices } from '../state/devices.ts';
import { accountId, parseAccountId } from '../state/ids.ts';
import { newContent, queueDirect } from './compose.ts';
import type { Context, Pending } from './context.ts';
import { publishOwnList, refreshDevices } from './directory.ts';
import type { Command, Job } from './run.ts';

export interface DeviceInfo {
  readonly deviceId: number;
  /** True for this device. */
  readonly current: boolean;
}

function requirePrimary(ctx: Context): Account {
  if (!ctx.account) throw new ClientError('NOT_PRIMARY', 'only the primary device (holding the account key) can do this');
  return ctx.account;
}

/** The devices we trust for an account, fetched from the relay and judged; ours include this one. */
export function listDevicesJob(accountKey: Uint8Array): Job<DeviceInfo[]> {
  return async (ctx, pending) => {
    const known = await refreshDevices(ctx, accountKey, pending);
    const ids = known.trusted.map((c) => ({ deviceId: c.deviceId, current: false }));
    if (bytesEqual(accountKey, ctx.self.accountKey)) ids.push({ deviceId: ctx.self.deviceId, current: true });
    return ids.sort((a, b) => a.deviceId - b.deviceId);
  };
}

/**
 * Certifies the new device's keys under the next free device id and lists
 * it; resolves with the link response for the new device. The new device
 * asks for our contacts once registered (engine/contacts-sync.ts).
 */
export function approveLinkCommand(ctx: Context, request: string): Command<string> {
  const account = requirePrimary(ctx);
  const { signingKey, identityKey } = decodeLinkRequest(request);
  let certificate: DeviceCertificate;
  let certificates: DeviceCertificate[];
  return {
    async prepare(ctx, pending) {
      const known = await refreshDevices(ctx, ctx.self.accountKey, pending);
      // Above every id we trust or our signed list names.
      const ids = [ctx.self.deviceId, ...known.trusted.map((c) => c.deviceId), ...(known.list ? [...known.list.devices.keys()] : [])];
      certificate = account.certify(Math.max(...ids) + 1, signingKey, identityKey);
      certificates = [ctx.device.certificate, ...known.trusted, certificate];
    },
    commit(ctx, pending) {
      const list = publishDeviceList(ctx, account, certificates, pending);
      return encodeLinkResponse({ certificate, deviceList: list });
    },
    // On the relay before the new device registers, so no sender ever sees it listed but not signed for.
    publish: publishOwnList,
  };
}

/**
 * Removes one of our devices: the relay revokes it by its certificate (so a
 * replay can never remove a device re-linked under the same id), then the
 * new list goes out.
 */
export function removeDeviceCommand(ctx: Context, deviceId: number): Command<void> {
  const account = requirePrimary(ctx);
  if (deviceId === ctx.self.deviceId) throw new TypeError('the primary device cannot remove itself');
  const remove = ctx.relay.removeDevice;
  if (!remove) throw new ClientError('NOT_PRIMARY', 'this relay link cannot sign as the account');
  let known: KnownDevices;
  return {
    async prepare(ctx, pending) {
      known = await refreshDevices(ctx, ctx.self.accountKey, pending);
      // The certificate to revoke: the one we trust, else whatever the relay registered under that id (a ghost).
      const trusted = known.trusted.find((c) => c.deviceId === deviceId);
      const listed = trusted ? null : (await ctx.relay.listDevices(ctx.self.accountKey)).find((d) => d.deviceId === deviceId);
      const hash = trusted ? certificateHash(trusted, ctx.provider) : listed ? ctx.provider.backend.sha256(listed.certificate) : null;
      if (hash) await remove.call(ctx.relay, deviceId, hash);
    },
    commit(ctx, pending) {
      publishDeviceList(ctx, account, [ctx.device.certificate, ...known.trusted.filter((c) => c.deviceId !== deviceId)], pending);
    },
    publish: publishOwnList,
  };
}

/** Signs the next revision of our device list, stores it, and queues it to our devices and everyone we know. Inside a transaction. */
function publishDeviceList(ctx: Context, account: Account, certificates: readonly DeviceCertificate[], pending: Pending): Uint8Array {
  const self = ctx.self.accountKey;
  const before = loadDevices(ctx.store, self, ctx.provider);
  const list = signDeviceList(account, (before.list?.revision ?? 0) + 1, certificates, ctx.provider);
  const others = certificates.filter((c) => c.deviceId !== ctx.self.deviceId);
  saveDevices(ctx.store, {
    ...before,
    list,
    trusted: others,
    refused: before.refused.filter((r) => !others.some((c) => c.deviceId === r.deviceId)),
  });
  // One message per account (each its own entry), so a ghost device on one account holds up no other.
  for (const entry of ctx.store.list('devices')) {
    const content = { ...newContent(ctx, { type: 'device-list' }), deviceList: list.encoded };
    queueDirect(ctx, parseAccountId(entry.key), content, { keepForRetry: true });
  }
  pending.add('devices-change', { account: accountId(self), added: [], removed: [] });
  return list.encoded;
}
