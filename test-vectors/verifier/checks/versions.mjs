/** versions.json against spec/02-keys.md §5.7, spec/03-handshake.md §7 and spec/05-wire-format.md §5.5. */
import { decode, encode } from '../lib/cbor.mjs';
import { Mismatch, refuses, same, truth } from '../lib/check.mjs';
import { Info, Limits } from '../lib/constants.mjs';
import { fail } from '../lib/errors.mjs';
import { concat, fromHex as h } from '../lib/hex.mjs';
import { deviceFrom, prekeysFrom } from '../lib/parties.mjs';
import { dh, ed25519Sign, hkdf, mlkemDecapsulate, mlkemEncapsulate, sha256, x25519PublicKey } from '../lib/primitives.mjs';
import { certificateArray, verifyCertificate } from '../lib/structures.mjs';
import {
  InfoV2,
  associatedData2,
  checkDowngrade,
  chooseVersion,
  decodeBundleV2,
  decodeSignedPreKeyV2,
  readVersionList,
  signedPreKeyV2Array,
  signedPreKeyV2SignedBytes,
  verifyBundleV2,
  verifySignedPreKeyV2,
} from '../lib/versions.mjs';

const F = new Uint8Array(32).fill(0xff);
const SALT = new Uint8Array(32);
const secret = (dhs, kemSecret, info) => hkdf(SALT, concat(F, ...dhs, kemSecret), info, 32);

export function checkVersions(f) {
  for (const g of f.groups('VersionList')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const read = () => readVersionList(decode(h(t.list), 'versions', Limits.MAX_BUNDLE_BYTES), 'versions');
        if (t.result === 'invalid') return refuses('version list', read, t.error);
        same('list re-encodes', encode(read()), t.list);
      });
    }
  }

  for (const g of f.groups('SignedPreKeyV2')) {
    const device = deviceFrom(g.device);
    const signingKey = device.certificate.signingKey;
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = () => verifySignedPreKeyV2(signingKey, decodeSignedPreKeyV2(h(t.encoded)));
        if (t.result === 'invalid') return refuses('signed prekey v2', accept, t.error);
        accept();
        const signedBytes = signedPreKeyV2SignedBytes(t.id, h(t.publicKey), t.versions);
        same('signedBytes', signedBytes, t.signedBytes);
        same('signature', ed25519Sign(device.signingSeed, signedBytes), t.signature);
        same(
          'encoded',
          encode(signedPreKeyV2Array({ id: t.id, publicKey: h(t.publicKey), versions: t.versions, signature: h(t.signature) })),
          t.encoded,
        );
        // The v1 signature of the same key, under the v1 label (02 §5.2), is a different signature.
        truth('v1 and v2 signatures differ', t.v1Signature !== t.signature);
      });
    }
  }

  for (const g of f.groups('PreKeyBundleV2')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = () => {
          const b = decodeBundleV2(h(t.bundle));
          verifyBundleV2(b, h(t.expectedAccountKey));
          return b;
        };
        if (t.result === 'invalid') return refuses('bundle v2', accept, t.error);
        same('versions', accept().signedPreKey.versions, t.versions);
      });
    }
  }

  for (const g of f.groups('VersionChoice')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const choose = () => {
          const v = chooseVersion(t.localVersions, t.remoteVersions ?? [1]);
          checkDowngrade(v, t.minVersion, t.localVersions);
          return v;
        };
        if (t.result === 'invalid') return refuses('version choice', choose, t.error);
        same('version', choose(), t.version);
      });
    }
  }

  for (const g of f.groups('PQXDH2')) {
    const alice = deviceFrom(g.initiator);
    const bob = deviceFrom(g.responder);
    let initiatorAd = null;
    for (const t of g.tests) {
      f.run(t, () => {
        if (t.side === 'initiator') {
          const bundle = decodeBundleV2(h(t.bundle));
          verifyBundleV2(bundle, bob.certificate.accountKey);
          const versionsA = [1, 2];
          const versionsB = bundle.signedPreKey.versions;
          same('version', chooseVersion(versionsA, versionsB), t.version);
          const ek = h(t.ephemeralPrivateKey);
          const dhs = [
            dh(alice.identityPrivateKey, bundle.signedPreKey.publicKey),
            dh(ek, bundle.certificate.identityKey),
            dh(ek, bundle.signedPreKey.publicKey),
            dh(ek, bundle.oneTimePreKey.publicKey),
          ];
          dhs.forEach((d, i) => same(`dh${i + 1}`, d, t[`dh${i + 1}`]));
          const kem = mlkemEncapsulate(bundle.kemPreKey.publicKey, h(t.kemEncapsulationRandomness));
          same('kemCiphertext', kem.ciphertext, t.kemCiphertext);
          same('kemCiphertext (message)', kem.ciphertext, g.message.kemCiphertext);
          same('baseKey', x25519PublicKey(ek), g.message.baseKey);
          same('hkdfInfo', InfoV2.pqxdh, t.hkdfInfo);
          truth(
            'Info.pqxdh2 differs from Info.pqxdh',
            InfoV2.pqxdh.length === Info.pqxdh.length && t.hkdfInfo !== Buffer.from(Info.pqxdh).toString('hex'),
          );
          same('hkdfIkm', concat(F, ...dhs, kem.sharedSecret), t.hkdfIkm);
          same('sharedSecret', secret(dhs, kem.sharedSecret, InfoV2.pqxdh), t.sharedSecret);
          same('versionsA', versionsA, t.versionsA);
          same('versionsB', versionsB, t.versionsB);
          const ad = associatedData2(alice.certificate, bundle.certificate, versionsA, versionsB);
          same('associatedDataInput', ad.input, t.associatedDataInput);
          same('associatedData', ad.associatedData, t.associatedData);
          initiatorAd = t.associatedData;
          return;
        }
        // The responder: bob's store, the message's handshake fields, versions_A as given (03 §7.2).
        const respond = () => {
          verifyCertificate(alice.certificate, alice.certificate.accountKey);
          const m = g.message;
          const store = prekeysFrom(g.responder);
          const use = {
            baseKey: h(m.baseKey),
            signedPreKeyId: m.signedPreKeyId,
            oneTimePreKeyId: m.oneTimePreKeyId,
            kemPreKeyId: m.kemPreKeyId,
          };
          const versionsA = t.initiatorVersions === null ? null : readVersionList(t.initiatorVersions, 'versions');
          // The responder offers what its store signed ([1, 2]); a v1 message is checked against the pin.
          if (versionsA === null) checkDowngrade(1, t.minVersion, [1, 2]);
          const keys = store.lookup(use);
          if (versionsA !== null) {
            let chosen = 0;
            try {
              chosen = chooseVersion(versionsA, keys.signed.versions);
            } catch {
              chosen = 0;
            }
            if (chosen !== 2) fail('DECRYPT_FAILED', 'lists do not choose version 2');
          }
          const dhs = [
            dh(keys.signed.privateKey, alice.certificate.identityKey),
            dh(bob.identityPrivateKey, use.baseKey),
            dh(keys.signed.privateKey, use.baseKey),
          ];
          if (keys.oneTime) dhs.push(dh(keys.oneTime.privateKey, use.baseKey));
          const kemSecret = mlkemDecapsulate(h(m.kemCiphertext), keys.kemSecretKey);
          if (versionsA === null) {
            const input = encode(['Parley v1 associated data', certificateArray(alice.certificate), certificateArray(bob.certificate)]);
            return { sharedSecret: secret(dhs, kemSecret, Info.pqxdh), associatedData: sha256(input) };
          }
          return {
            sharedSecret: secret(dhs, kemSecret, InfoV2.pqxdh),
            associatedData: associatedData2(alice.certificate, bob.certificate, versionsA, keys.signed.versions).associatedData,
          };
        };
        if (t.result === 'invalid') return refuses('responder', respond, t.error);
        const r = respond();
        same('sharedSecret', r.sharedSecret, t.sharedSecret);
        same('associatedData', r.associatedData, t.associatedData);
        if (initiatorAd === null) throw new Mismatch('the initiator case must come first');
        same('matchesInitiator', Buffer.from(r.associatedData).toString('hex') === initiatorAd, t.matchesInitiator);
      });
    }
  }
}
