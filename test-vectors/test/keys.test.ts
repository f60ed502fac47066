// keys.json through core: every valid key, certificate, prekey and bundle is
// rebuilt from its seeds and accepted; every invalid one is refused with its code.
import {
  Account,
  Ed25519KeyPair,
  X25519KeyPair,
  cryptoProvider,
  decodeBundle,
  decodeCertificate,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodeSignedPreKey,
  encodeBundle,
  encodeCertificate,
  encodeKemPreKey,
  encodeSignedPreKey,
  verifyBundle,
  verifyCertificate,
  verifyKemPreKey,
  verifySignedPreKey,
} from '@parley/core';
import { describe, expect, it } from 'vitest';
import { backends, bytes, expectRefusal, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('keys.json');

describe.each(backends.map((b) => [b.name, b] as const))('keys.json (%s backend)', (_name, backend) => {
  const p = cryptoProvider(backend);

  it('derives every account key from its seed', () => {
    for (const { test } of testsOf(file, 'AccountKey')) {
      expect(hexOf(Account.fromSeed(bytes(test.accountSeed), p).publicKey)).toBe(test.accountKey);
    }
  });

  it('re-creates and accepts every valid device certificate', () => {
    for (const { test } of testsOf(file, 'DeviceCertificate').filter(({ test }) => test.result === 'valid')) {
      expect(hexOf(Ed25519KeyPair.fromSeed(bytes(test.signingSeed), p).publicKey)).toBe(test.signingKey);
      expect(hexOf(X25519KeyPair.fromPrivateKey(bytes(test.identityPrivateKey), p).publicKey)).toBe(test.identityKey);
      const account = Account.fromSeed(bytes(test.accountSeed), p);
      const cert = account.certify(test.deviceId, bytes(test.signingKey), bytes(test.identityKey));
      expect(hexOf(encodeCertificate(cert))).toBe(test.certificate);
      expect(backend.ed25519Verify(bytes(test.accountKey), bytes(test.signedBytes), bytes(test.signature))).toBe(true);
      verifyCertificate(backend, decodeCertificate(bytes(test.certificate)), bytes(test.expectedAccountKey));
    }
  });

  it('refuses every invalid device certificate with its code', () => {
    for (const { test } of testsOf(file, 'DeviceCertificate').filter(({ test }) => test.result === 'invalid')) {
      expectRefusal(
        () => verifyCertificate(backend, decodeCertificate(bytes(test.certificate)), bytes(test.expectedAccountKey)),
        test,
        backend,
      );
    }
  });

  it('signed prekeys: valid ones round-trip and verify, invalid ones are refused', () => {
    for (const { group, test } of testsOf(file, 'SignedPreKey')) {
      const signingKey = bytes(group.signingKey);
      if (test.result === 'valid') {
        expect(hexOf(X25519KeyPair.fromPrivateKey(bytes(test.privateKey), p).publicKey)).toBe(test.publicKey);
        expect(hexOf(backend.ed25519Sign(bytes(group.signingSeed), bytes(test.signedBytes)))).toBe(test.signature);
        const k = decodeSignedPreKey(bytes(test.encoded));
        verifySignedPreKey(p, signingKey, k);
        expect(hexOf(encodeSignedPreKey(k))).toBe(test.encoded);
      } else {
        expectRefusal(() => verifySignedPreKey(p, signingKey, decodeSignedPreKey(bytes(test.signedPreKey))), test, backend);
      }
    }
  });

  it('one-time prekeys: valid ones decode, invalid ones are refused', () => {
    for (const { test } of testsOf(file, 'OneTimePreKey')) {
      if (test.result === 'valid') {
        expect(hexOf(X25519KeyPair.fromPrivateKey(bytes(test.privateKey), p).publicKey)).toBe(test.publicKey);
        const k = decodeOneTimePreKey(bytes(test.encoded));
        expect([k.id, hexOf(k.publicKey)]).toEqual([test.id, test.publicKey]);
      } else {
        expectRefusal(() => decodeOneTimePreKey(bytes(test.oneTimePreKey)), test, backend);
      }
    }
  });

  it('KEM prekeys: keys from the seed, signatures, and refusals', () => {
    for (const { group, test } of testsOf(file, 'KemPreKey')) {
      const signingKey = bytes(group.signingKey);
      if (test.result === 'valid') {
        const keys = backend.mlkemKeygen(bytes(test.seed));
        expect(hexOf(keys.publicKey)).toBe(test.publicKey);
        expect(hexOf(keys.secretKey)).toBe(test.secretKey);
        expect(hexOf(backend.ed25519Sign(bytes(group.signingSeed), bytes(test.signedBytes)))).toBe(test.signature);
        const k = decodeKemPreKey(bytes(test.encoded));
        verifyKemPreKey(p, signingKey, k);
        expect(k.lastResort).toBe(test.lastResort);
        expect(hexOf(encodeKemPreKey(k))).toBe(test.encoded);
      } else {
        expectRefusal(() => verifyKemPreKey(p, signingKey, decodeKemPreKey(bytes(test.kemPreKey))), test, backend);
      }
    }
  });

  it('bundles: valid ones are accepted and re-encode to the same bytes, invalid ones are refused', () => {
    for (const { test } of testsOf(file, 'PreKeyBundle')) {
      const accept = () => {
        const b = decodeBundle(bytes(test.bundle));
        verifyBundle(b, { expectedAccountKey: bytes(test.expectedAccountKey), provider: p });
        return b;
      };
      if (test.result === 'valid') {
        const b = accept();
        expect(hexOf(encodeBundle(b))).toBe(test.bundle);
        expect(hexOf(encodeCertificate(b.certificate))).toBe(test.certificate);
        expect(b.oneTimePreKey === null).toBe(test.oneTimePreKey === null);
      } else {
        expectRefusal(accept, test, backend);
      }
    }
  });
});
