/**
 * The message versions a device advertises, and their one codec.
 * spec/05-wire-format.md §5.5 (version 2), spec/design/formats-v2.md §3.1.
 *
 * A version list is what a device signs in its SignedPreKeyV2 and what an
 * initiator repeats in its PreKeyMessageV2; both sides bind both lists into
 * the session's associated data. This module knows nothing of sessions: it
 * only says which lists are well formed and which version two lists choose.
 */
import { readArray, readUint } from '../codec/fields.ts';
import { fail } from '../errors.ts';

/** The versions this implementation speaks, ascending. A v2 device publishes exactly these. */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([1, 2]);

/**
 * At most 8 entries in an advertised list: a device speaks a handful of
 * versions at once (the current one and those it still accepts), and a short
 * list keeps the signed bytes and the AD input small.
 */
export const MAX_ADVERTISED_VERSIONS = 8;

/** Versions are small positive integers (0 is not a version; one CBOR byte holds 1..23, two up to 255). */
export const MAX_VERSION_NUMBER = 255;

/**
 * Reads a version list from decoded CBOR: 1..8 unsigned integers in 1..255,
 * strictly ascending (so a list has exactly one encoding and a rewritten
 * list cannot hide a duplicate). Anything else is MALFORMED or OVERSIZED.
 */
export function readVersionList(v: unknown, field: string): number[] {
  const entries = readArray(v, field, { min: 1, max: MAX_ADVERTISED_VERSIONS });
  const out: number[] = [];
  for (let i = 0; i < entries.length; i++) {
    const n = readUint(entries[i], `${field}[${i}]`, MAX_VERSION_NUMBER);
    if (n === 0) fail('MALFORMED', `${field}[${i}]: version 0 is reserved`, { field });
    if (i > 0 && n <= (out[i - 1] as number)) fail('MALFORMED', `${field}: versions must be strictly ascending`, { field });
    out.push(n);
  }
  return out;
}

/** Checks a list built in memory exactly as a received one (throws as `readVersionList`). */
export function checkVersionList(list: readonly number[], field: string): number[] {
  return readVersionList([...list], field);
}

/**
 * The version two devices use: the highest one both lists hold
 * (spec/design/formats-v2.md §3.2). No common version is UNSUPPORTED_VERSION.
 */
export function chooseVersion(mine: readonly number[], theirs: readonly number[]): number {
  const best = highestCommonVersion(mine, theirs);
  if (best === 0) fail('UNSUPPORTED_VERSION', 'no message version in common with the peer device');
  return best;
}

/** max(a ∩ b), or 0 when the lists share no version. */
export function highestCommonVersion(a: readonly number[], b: readonly number[]): number {
  let best = 0;
  for (const v of a) if (v > best && b.includes(v)) best = v;
  return best;
}

/**
 * The downgrade rule (spec/design/formats-v2.md §3.3): a session below the
 * version this device has already seen the peer device sign is refused, as
 * far as this device offers that version itself (a device offering only 1
 * is downgraded by nobody). `minVersion` is the caller's pin for the peer
 * device (absent: none); `offered` what this device offers.
 */
export function checkNotDowngraded(version: number, minVersion: number | undefined, offered: readonly number[], deviceId: number): void {
  if (minVersion === undefined) return;
  const floor = Math.min(minVersion, Math.max(...offered));
  if (version < floor) {
    fail('DOWNGRADE_REFUSED', `version ${version} for a device pinned at version ${minVersion}`, { deviceId, version, minVersion });
  }
}
