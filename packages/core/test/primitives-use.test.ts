// Padding, safety numbers, and the deterministic random source.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Account,
  ParleyError,
  cryptoProvider,
  pad,
  paddedLength,
  safetyNumber,
  unpad,
  verifyScannedSafetyNumber,
  limits,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { deterministicRandom } from '../src/testing.ts';

const provider = cryptoProvider(nodeBackend);

describe('padding (spec/04-double-ratchet.md §5)', () => {
  it('pads short messages to multiples of 160 and long ones with Padme', () => {
    expect([0, 1, 159, 160, 161, 319, 4095].map((n) => paddedLength(n + 1))).toEqual([160, 160, 160, 320, 320, 320, 4160]);
    expect(paddedLength(4097)).toBe(4352);
    expect(paddedLength(100_001)).toBe(100_352);
    expect(paddedLength(limits.MAX_PLAINTEXT_BYTES + 1)).toBeLessThanOrEqual(limits.MAX_MESSAGE_BYTES - 4096);
  });

  it('round-trips any plaintext, never grows a message by more than 160 bytes or 12%, and is monotonic', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), (pt) => {
        const p = pad(pt);
        expect(p.length).toBe(paddedLength(pt.length + 1));
        expect(p.length - pt.length).toBeLessThanOrEqual(Math.max(160, Math.ceil(pt.length * 0.12)));
        expect(unpad(p)).toEqual(pt);
      }),
    );
    for (let n = 1; n < 70_000; n += 97) expect(paddedLength(n + 1)).toBeGreaterThanOrEqual(paddedLength(n));
  });

  it('rejects malformed padding', () => {
    for (const bad of [new Uint8Array(160), Uint8Array.of(1, 2, 3), Uint8Array.of(0x80, 1)]) {
      expect(() => unpad(bad)).toThrow(ParleyError);
    }
  });
});

describe('safety numbers (spec/02-keys.md §7)', () => {
  const alice = Account.generate(provider);
  const bob = Account.generate(provider);
  const ab = safetyNumber(alice.publicKey, bob.publicKey, provider);
  const ba = safetyNumber(bob.publicKey, alice.publicKey, provider);

  it('are 60 digits, identical on both sides, and independent of devices', () => {
    expect(ab.digits).toMatch(/^\d{60}$/);
    expect(ab.digits).toBe(ba.digits);
    alice.createDevice(2, provider);
    expect(safetyNumber(alice.publicKey, bob.publicKey, provider).digits).toBe(ab.digits);
  });

  it('verify a scan from the other side and refuse a scan from anyone else', () => {
    expect(verifyScannedSafetyNumber(ab, ba.scannable)).toBe(true);
    expect(verifyScannedSafetyNumber(ab, ab.scannable)).toBe(false);
    const mallory = Account.generate(provider);
    expect(verifyScannedSafetyNumber(ab, safetyNumber(mallory.publicKey, alice.publicKey, provider).scannable)).toBe(false);
    expect(verifyScannedSafetyNumber(ab, new Uint8Array([1, 2, 3]))).toBe(false);
    expect(safetyNumber(mallory.publicKey, bob.publicKey, provider).digits).not.toBe(ab.digits);
  });
});

describe('deterministic random source (tests and vectors only)', () => {
  it('is reproducible and independent of how reads are split', () => {
    const a = deterministicRandom('seed');
    const b = deterministicRandom('seed');
    const whole = a(200);
    const parts = new Uint8Array([...b(1), ...b(63), ...b(64), ...b(72)]);
    expect(parts).toEqual(whole);
    expect(deterministicRandom('other')(200)).not.toEqual(whole);
  });
});
