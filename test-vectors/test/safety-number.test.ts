// safety-number.json through core's safetyNumber / verifyScannedSafetyNumber.
import { cryptoProvider, decodeCbor, safetyNumber, verifyScannedSafetyNumber } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { backends, bytes, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('safety-number.json');

describe.each(backends.map((b) => [b.name, b] as const))('safety-number.json (%s backend)', (_name, backend) => {
  const p = cryptoProvider(backend);

  it('fingerprints: the digits and the first 32 bytes (as seen in a payload of a key with itself)', () => {
    for (const { test } of testsOf(file, 'Fingerprint')) {
      const key = bytes(test.accountKey);
      const sn = safetyNumber(key, key, p);
      expect(sn.digits).toBe(test.digits + test.digits);
      const [, local] = decodeCbor(sn.scannable, 'payload', 256) as [number, Uint8Array, Uint8Array];
      expect(hexOf(local)).toBe(test.fingerprint.slice(0, 64));
    }
  });

  it('safety numbers and scannable payloads', () => {
    for (const { test } of testsOf(file, 'SafetyNumber')) {
      const sn = safetyNumber(bytes(test.localAccountKey), bytes(test.remoteAccountKey), p);
      expect(sn.digits).toBe(test.digits);
      expect(hexOf(sn.scannable)).toBe(test.scannable);
    }
  });

  it('scanned payloads verify exactly when valid', () => {
    for (const { test } of testsOf(file, 'ScannedSafetyNumber')) {
      const ours = safetyNumber(bytes(test.localAccountKey), bytes(test.remoteAccountKey), p);
      expect(verifyScannedSafetyNumber(ours, bytes(test.scanned)), test.comment).toBe(test.result === 'valid');
    }
  });
});
