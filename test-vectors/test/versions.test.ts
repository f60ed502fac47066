// versions.json through core, on both backends: version lists, SignedPreKeyV2,
// PreKeyBundleV2, the version choice with the pin, and the version-2 PQXDH
// from both sides (keys from the vector, randomness exactly the vector's).
import {
  decodeAnyBundle,
  decodeCbor,
  decodeSignedPreKeyV2,
  encodeSignedPreKeyV2,
  isBundleV2,
  verifyBundle,
  verifySignedPreKeyV2,
} from '@parley/core';
import { describe, expect, it } from 'vitest';
import { initiate, respond } from '../../packages/core/src/handshake/pqxdh.ts';
import { checkNotDowngraded, chooseVersion, readVersionList } from '../../packages/core/src/keys/versions.ts';
import { VectorRandom, backends, bytes, deviceFrom, expectRefusal, hexOf, loadVectors, prekeyStoreFrom, testsOf } from './support.ts';

const file = loadVectors('versions.json');

describe.each(backends.map((b) => [b.name, b] as const))('versions.json (%s)', (_n, backend) => {
  it('reads valid version lists and refuses the others', () => {
    for (const { test } of testsOf(file, 'VersionList')) {
      const read = () => readVersionList(decodeCbor(bytes(test.list), 'versions', 1024), 'versions');
      if (test.result === 'valid') expect(read().length, test.comment).toBeGreaterThan(0);
      else expectRefusal(read, test, backend);
    }
  });

  it('SignedPreKeyV2: the store signs exactly the listed bytes; tampered forms are refused', () => {
    for (const { group, test } of testsOf(file, 'SignedPreKeyV2')) {
      const random = new VectorRandom(backend);
      const device = deviceFrom(group.device, random.provider);
      const accept = () => verifySignedPreKeyV2(random.provider, device.certificate.signingKey, decodeSignedPreKeyV2(bytes(test.encoded)));
      if (test.result === 'invalid') {
        expectRefusal(accept, test, backend);
        continue;
      }
      accept();
      const k = decodeSignedPreKeyV2(bytes(test.encoded));
      expect(hexOf(encodeSignedPreKeyV2(k))).toBe(test.encoded);
      expect(k.versions).toEqual(test.versions);
      // Ed25519 is deterministic: the device's own signature over signedBytes is the vector's.
      expect(hexOf(device.sign(bytes(test.signedBytes)))).toBe(test.signature);
    }
  });

  it('PreKeyBundleV2 decodes by version and verifies; tampered bundles are refused', () => {
    for (const { test } of testsOf(file, 'PreKeyBundleV2')) {
      const random = new VectorRandom(backend);
      const accept = () => {
        const b = decodeAnyBundle(bytes(test.bundle));
        verifyBundle(b, { expectedAccountKey: bytes(test.expectedAccountKey), provider: random.provider });
        return b;
      };
      if (test.result === 'invalid') {
        expectRefusal(accept, test, backend);
        continue;
      }
      const b = accept();
      expect(isBundleV2(b) && b.signedPreKey.versions).toEqual(test.versions);
    }
  });

  it('chooses max(∩) and refuses a downgrade below the pin', () => {
    for (const { test } of testsOf(file, 'VersionChoice')) {
      const choose = () => {
        const v = chooseVersion(test.localVersions, test.remoteVersions ?? [1]);
        checkNotDowngraded(v, test.minVersion ?? undefined, test.localVersions, 1);
        return v;
      };
      if (test.result === 'valid') expect(choose(), test.comment).toBe(test.version);
      else expectRefusal(choose, test, backend);
    }
  });

  it('PQXDH2: the initiator derives the listed values; the responder derives or refuses as listed, consuming nothing', () => {
    let initiatorAd = '';
    for (const { group, test } of testsOf(file, 'PQXDH2')) {
      const random = new VectorRandom(backend);
      const alice = deviceFrom(group.initiator, random.provider);
      const bob = deviceFrom(group.responder, random.provider);
      if (test.side === 'initiator') {
        random.push(test.ephemeralPrivateKey, test.kemEncapsulationRandomness);
        const hs = initiate(random.provider, alice, decodeAnyBundle(bytes(test.bundle)), { expectedAccountKey: bob.accountKey });
        random.expectUsed();
        expect(hs.version).toBe(test.version);
        expect(hexOf(hs.sharedSecret)).toBe(test.sharedSecret);
        expect(hexOf(hs.associatedData)).toBe(test.associatedData);
        expect(hexOf(hs.kemCiphertext)).toBe(test.kemCiphertext);
        expect(hs.versions).toEqual({ initiator: test.versionsA, responder: test.versionsB });
        initiatorAd = test.associatedData;
        continue;
      }
      const store = prekeyStoreFrom(group.responder, bob, random.provider);
      const before = hexOf(store.serialize());
      const m = group.message;
      const use = {
        baseKey: bytes(m.baseKey),
        signedPreKeyId: m.signedPreKeyId,
        oneTimePreKeyId: m.oneTimePreKeyId,
        kemPreKeyId: m.kemPreKeyId,
      };
      const run = () =>
        respond(random.provider, bob, store, alice.certificate, use, bytes(m.kemCiphertext), {
          initiatorVersions: test.initiatorVersions,
          ...(test.minVersion ? { minVersion: test.minVersion } : {}),
        });
      if (test.result === 'invalid') expectRefusal(run, test, backend);
      else {
        const r = run();
        expect(hexOf(r.sharedSecret), test.comment).toBe(test.sharedSecret);
        expect(hexOf(r.associatedData), test.comment).toBe(test.associatedData);
        expect(hexOf(r.associatedData) === initiatorAd).toBe(test.matchesInitiator);
      }
      expect(hexOf(store.serialize())).toBe(before);
      random.expectUsed();
    }
  });
});
