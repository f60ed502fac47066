/**
 * Fetching and checking prekey bundles before starting sessions.
 * spec/10-client.md §4.1, §4.1.1 (versions).
 *
 * A bundle from the relay is accepted only when its certificate is exactly
 * the one the directory trusts for that device and every signature in it
 * verifies; anything else means the relay's state moved (a re-registered
 * device) or the relay lies, and the device list is fetched again.
 *
 * Bundles come from the relay's v2 route where it has one (a PreKeyBundleV2
 * for devices that publish one, spec/design/formats-v2.md §3.1). A verified
 * v2 bundle raises the device's version pin; a bundle below the pin is a
 * downgrade: refused (DOWNGRADE_REFUSED, event `downgrade-refused`) and
 * treated as a bundle that does not verify.
 */
import { type AnyPreKeyBundle, type DeviceCertificate, certificatesEqual, decodeAnyBundle, verifyBundle } from '@parley/core';
import { pinnedVersion, signedVersion, withRaisedPin } from '../devices/version-pins.ts';
import { accountId } from '../state/ids.ts';
import { loadDevices, saveDevices } from '../state/devices.ts';
import { type Context, Pending } from './context.ts';

export interface BundleFetch {
  readonly bundles: Map<number, AnyPreKeyBundle>;
  /** Devices whose bundle did not match the trusted certificate, did not verify, or was a downgrade. */
  readonly mismatched: number[];
  /** Per device with a bundle: its version pin, for `SessionRecord.initiate`'s `minVersion`. */
  readonly pins: Map<number, number>;
}

/** Claims one bundle per device (one-time prekeys are consumed only for these devices). */
export async function fetchBundles(ctx: Context, accountKey: Uint8Array, devices: readonly DeviceCertificate[]): Promise<BundleFetch> {
  const bundles = new Map<number, AnyPreKeyBundle>();
  const pins = new Map<number, number>();
  const mismatched: number[] = [];
  const answers = await Promise.all(devices.map((d) => ctx.relay.fetchBundles(accountKey, d.deviceId)));
  const pending = new Pending();
  ctx.store.transaction(() => {
    let known = loadDevices(ctx.store, accountKey, ctx.provider);
    const before = known;
    devices.forEach((trusted, i) => {
      const entry = (answers[i] ?? []).find((b) => b.deviceId === trusted.deviceId);
      if (!entry) {
        mismatched.push(trusted.deviceId);
        return;
      }
      let bundle: AnyPreKeyBundle;
      try {
        bundle = decodeAnyBundle(entry.bundle);
        verifyBundle(bundle, { expectedAccountKey: accountKey, provider: ctx.provider });
        if (!certificatesEqual(bundle.certificate, trusted)) throw new Error('certificate differs from the trusted one');
      } catch {
        mismatched.push(trusted.deviceId);
        return;
      }
      const signed = signedVersion(bundle);
      const pin = pinnedVersion(known, trusted, ctx.provider);
      if (pin !== undefined && signed < pin) {
        // The device signed `pin` under this certificate before: this bundle hides it.
        pending.add('downgrade-refused', { account: accountId(accountKey), deviceId: trusted.deviceId, version: signed, minVersion: pin });
        mismatched.push(trusted.deviceId);
        return;
      }
      known = withRaisedPin(known, trusted, signed, ctx.provider) ?? known;
      bundles.set(trusted.deviceId, bundle);
      pins.set(trusted.deviceId, Math.max(pin ?? 1, signed));
    });
    if (known !== before) saveDevices(ctx.store, known);
  });
  pending.flush(ctx.events);
  return { bundles, mismatched, pins };
}
