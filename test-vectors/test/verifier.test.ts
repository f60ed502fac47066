// The independent verifier (test-vectors/verifier, no import of packages/core)
// must accept every checked-in vector.
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module without type declarations
import { verifyAll } from '../verifier/verify.mjs';

describe('independent verifier', () => {
  it('recomputes every valid vector and sees every invalid one refused with its code', () => {
    const reports: { file: string; tests: number; failures: unknown[] }[] = verifyAll();
    expect(reports.map((r) => r.file)).toEqual([
      'cbor.json',
      'keys.json',
      'handshake.json',
      'ratchet.json',
      'padding.json',
      'safety-number.json',
      'records.json',
      'groups.json',
      'hpke.json',
      'pq-chunks.json',
      'pq-ratchet.json',
      'franking.json',
      'groups-v2.json',
      'reports.json',
      'versions.json',
      'seal.json',
      'ratchet-v2.json',
      'push-frames.json',
    ]);
    for (const r of reports) {
      expect(r.failures, r.file).toEqual([]);
      expect(r.tests, r.file).toBeGreaterThan(0);
    }
  });
});
