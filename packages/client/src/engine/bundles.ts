/**
 * Fetching and checking prekey bundles before starting sessions.
 * spec/10-client.md §4.1.
 *
 * A bundle from the relay is accepted only when its certificate is exactly
 * the one the directory trusts for that device and every signature in it
 * verifies; anything else means the relay's state moved (a re-registered
 * device) or the relay lies, and the device list is fetched again.
 */
import { type DeviceCertificate, type PreKeyBundle, certificatesEqual, decodeBundle, verifyBundle } from '@parley/core';
import type { Context } from './context.ts';

export interface BundleFetch {
  readonly bundles: Map<number, PreKeyBundle>;
  /** Devices whose bundle did not match the trusted certificate (or did not verify). */
  readonly mismatched: number[];
}

/** Claims one bundle per device (one-time prekeys are consumed only for these devices). */
export async function fetchBundles(ctx: Context, accountKey: Uint8Array, devices: readonly DeviceCertificate[]): Promise<BundleFetch> {
  const bundles = new Map<number, PreKeyBundle>();
  const mismatched: number[] = [];
  const answers = await Promise.all(devices.map((d) => ctx.relay.fetchBundles(accountKey, d.deviceId)));
  devices.forEach((trusted, i) => {
    const entry = (answers[i] ?? []).find((b) => b.deviceId === trusted.deviceId);
    if (!entry) {
      mismatched.push(trusted.deviceId);
      return;
    }
    try {
      const bundle = decodeBundle(entry.bundle);
      verifyBundle(bundle, { expectedAccountKey: accountKey, provider: ctx.provider });
      if (!certificatesEqual(bundle.certificate, trusted)) throw new Error('certificate differs from the trusted one');
      bundles.set(trusted.deviceId, bundle);
    } catch {
      mismatched.push(trusted.deviceId);
    }
  });
  return { bundles, mismatched };
}
