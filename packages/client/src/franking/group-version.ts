/**
 * Which wire version a group message goes out in (formats-v2 §10, "groups
 * with v1 members"; spec/10-client.md §8.4).
 *
 * Rule: version 2 (GroupMessageV2, franked: its tag under the signature)
 * when this client runs v2 and every other member device is known to run
 * it: we hold a v2 session with it, or it has signed a v2 prekey (its
 * version pin, devices/version-pins.ts). Otherwise version 1 for everyone:
 * one group message goes to every device (the fan-out stores it once), and a
 * device that cannot read v2 would lose the message, so the lowest version
 * wins, as the design says. A device we know nothing about yet (no session,
 * no bundle fetched) counts as v1 until its bundle or session shows v2; the
 * UI can show the group's version from the last message sent.
 */
import type { DeviceCertificate } from '@parley/core';
import { pinOfTrustedDevice } from '../devices/version-pins.ts';
import type { Context } from '../engine/context.ts';
import { type KnownDevices, loadDevices } from '../state/devices.ts';
import { accountId } from '../state/ids.ts';
import { loadSession } from '../state/sessions.ts';

export function groupMessageVersion(ctx: Context, devices: readonly DeviceCertificate[]): 1 | 2 {
  if (!ctx.options.sessionVersions.includes(2)) return 1;
  // One devices record per account, and a session record only for a device without a v2 pin: a large
  // group's send must not deserialize every member's session.
  const known = new Map<string, KnownDevices>();
  for (const c of devices) {
    const id = accountId(c.accountKey);
    let k = known.get(id);
    if (!k) {
      k = loadDevices(ctx.store, c.accountKey, ctx.provider);
      known.set(id, k);
    }
    const pin = pinOfTrustedDevice(k, c.deviceId, ctx.provider);
    if (pin !== undefined && pin >= 2) continue;
    const address = { accountKey: c.accountKey, deviceId: c.deviceId };
    if (loadSession(ctx.store, address, ctx.provider).record.sessionVersion !== 2) return 1;
  }
  return 2;
}
