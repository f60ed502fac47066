/**
 * Version pins (spec/design/formats-v2.md §3.3, §3.5; spec/10-client.md
 * §4.1.1): per peer device certificate, the highest message version this
 * device has seen it sign. Afterwards a bundle or a first message of a lower
 * version from that device is a downgrade (DOWNGRADE_REFUSED): the device
 * signed that it speaks more, so either the relay hid the v2 signature or the
 * device went back to an older release under the same certificate.
 *
 * A pin belongs to one certificate: a re-registered device (a new
 * certificate) starts again from what its own signed prekey says. Pins are
 * only raised; nothing the relay serves lowers one. Pure functions over the
 * stored `KnownDevices` (state/devices.ts), which keeps them.
 */
import { type AnyPreKeyBundle, type CryptoProvider, type DeviceCertificate, bytesEqual, certificateHash, isBundleV2 } from '@parley/core';
import { type KnownDevices, MAX_PINS_PER_ACCOUNT } from '../state/devices.ts';

/** The pin of this exact certificate; undefined when none was learned for it. */
export function pinnedVersion(known: KnownDevices, certificate: DeviceCertificate, provider: CryptoProvider): number | undefined {
  const hash = certificateHash(certificate, provider);
  return known.pins.find((p) => p.deviceId === certificate.deviceId && bytesEqual(p.certificateHash, hash))?.minVersion;
}

/**
 * The pin of a device by id, for the certificate the directory trusts for it
 * (a pin learned for an older certificate of the id binds nothing).
 */
export function pinOfTrustedDevice(known: KnownDevices, deviceId: number, provider: CryptoProvider): number | undefined {
  const trusted = known.trusted.find((c) => c.deviceId === deviceId);
  return trusted ? pinnedVersion(known, trusted, provider) : undefined;
}

/** The highest version a verified bundle says its device speaks (1 for a v1 bundle). */
export function signedVersion(bundle: AnyPreKeyBundle): number {
  return isBundleV2(bundle) ? (bundle.signedPreKey.versions.at(-1) as number) : 1;
}

/**
 * `known` with the pin of `certificate` raised to `version`, or null when
 * the pin already stands at or above it. A pin of the same device id for
 * another certificate is replaced (the device was re-registered).
 */
export function withRaisedPin(
  known: KnownDevices,
  certificate: DeviceCertificate,
  version: number,
  provider: CryptoProvider,
): KnownDevices | null {
  if (version <= 1) return null; // 1 is every device's floor: nothing to pin.
  const hash = certificateHash(certificate, provider);
  const held = known.pins.find((p) => p.deviceId === certificate.deviceId);
  if (held && bytesEqual(held.certificateHash, hash) && held.minVersion >= version) return null;
  const pins = [
    ...known.pins.filter((p) => p.deviceId !== certificate.deviceId),
    { deviceId: certificate.deviceId, certificateHash: hash, minVersion: version },
  ].sort((a, b) => a.deviceId - b.deviceId);
  return { ...known, pins: pins.slice(-MAX_PINS_PER_ACCOUNT) };
}
