/** keys.json against spec/02-keys.md §1-§6. */
import { encode } from '../lib/cbor.mjs';
import { same, refuses } from '../lib/check.mjs';
import { Label } from '../lib/constants.mjs';
import { fromHex as h } from '../lib/hex.mjs';
import { ed25519PublicKey, ed25519Sign, mlkemKeygen, x25519PublicKey } from '../lib/primitives.mjs';
import {
  bundleArray,
  certificateArray,
  decodeBundle,
  decodeCertificate,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodeSignedPreKey,
  kemPreKeyArray,
  oneTimePreKeyArray,
  signedPreKeyArray,
  verifyBundle,
  verifyCertificate,
  verifyKemPreKey,
  verifySignedPreKey,
} from '../lib/structures.mjs';

export function checkKeys(f) {
  for (const g of f.groups('AccountKey')) {
    for (const t of g.tests) f.run(t, () => same('accountKey', ed25519PublicKey(h(t.accountSeed)), t.accountKey));
  }

  for (const g of f.groups('DeviceCertificate')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = (bytes) => verifyCertificate(decodeCertificate(bytes), h(t.expectedAccountKey));
        if (t.result === 'invalid') return refuses('certificate', () => accept(h(t.certificate)), t.error);
        same('accountKey', ed25519PublicKey(h(t.accountSeed)), t.accountKey);
        same('signingKey', ed25519PublicKey(h(t.signingSeed)), t.signingKey);
        same('identityKey', x25519PublicKey(h(t.identityPrivateKey)), t.identityKey);
        const signedBytes = encode([Label.deviceCertificate, 1, h(t.accountKey), t.deviceId, h(t.signingKey), h(t.identityKey)]);
        same('signedBytes', signedBytes, t.signedBytes);
        const signature = ed25519Sign(h(t.accountSeed), signedBytes);
        same('signature', signature, t.signature);
        const cert = {
          version: 1,
          accountKey: h(t.accountKey),
          deviceId: t.deviceId,
          signingKey: h(t.signingKey),
          identityKey: h(t.identityKey),
          signature,
        };
        same('certificate', encode(certificateArray(cert)), t.certificate);
        accept(h(t.certificate));
      });
    }
  }

  for (const g of f.groups('SignedPreKey')) {
    same('group signingKey', ed25519PublicKey(h(g.signingSeed)), g.signingKey);
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = (bytes) => verifySignedPreKey(h(g.signingKey), decodeSignedPreKey(bytes));
        if (t.result === 'invalid') return refuses('signed prekey', () => accept(h(t.signedPreKey)), t.error);
        same('publicKey', x25519PublicKey(h(t.privateKey)), t.publicKey);
        const signedBytes = encode([Label.signedPreKey, t.id, h(t.publicKey)]);
        same('signedBytes', signedBytes, t.signedBytes);
        same('signature', ed25519Sign(h(g.signingSeed), signedBytes), t.signature);
        same('encoded', encode(signedPreKeyArray({ id: t.id, publicKey: h(t.publicKey), signature: h(t.signature) })), t.encoded);
        accept(h(t.encoded));
      });
    }
  }

  for (const g of f.groups('OneTimePreKey')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (t.result === 'invalid') return refuses('one-time prekey', () => decodeOneTimePreKey(h(t.oneTimePreKey)), t.error);
        same('publicKey', x25519PublicKey(h(t.privateKey)), t.publicKey);
        same('encoded', encode(oneTimePreKeyArray({ id: t.id, publicKey: h(t.publicKey) })), t.encoded);
        decodeOneTimePreKey(h(t.encoded));
      });
    }
  }

  for (const g of f.groups('KemPreKey')) {
    same('group signingKey', ed25519PublicKey(h(g.signingSeed)), g.signingKey);
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = (bytes) => verifyKemPreKey(h(g.signingKey), decodeKemPreKey(bytes));
        if (t.result === 'invalid') return refuses('KEM prekey', () => accept(h(t.kemPreKey)), t.error);
        const keys = mlkemKeygen(h(t.seed));
        same('publicKey', keys.publicKey, t.publicKey);
        same('secretKey', keys.secretKey, t.secretKey);
        const signedBytes = encode([Label.kemPreKey, t.id, keys.publicKey, t.lastResort]);
        same('signedBytes', signedBytes, t.signedBytes);
        const signature = ed25519Sign(h(g.signingSeed), signedBytes);
        same('signature', signature, t.signature);
        same('encoded', encode(kemPreKeyArray({ id: t.id, publicKey: keys.publicKey, lastResort: t.lastResort, signature })), t.encoded);
        accept(h(t.encoded));
      });
    }
  }

  for (const g of f.groups('PreKeyBundle')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const accept = (bytes) => {
          const b = decodeBundle(bytes);
          verifyBundle(b, h(t.expectedAccountKey));
          return b;
        };
        if (t.result === 'invalid') return refuses('bundle', () => accept(h(t.bundle)), t.error);
        const bundle = {
          version: t.version,
          certificate: decodeCertificate(h(t.certificate)),
          signedPreKey: decodeSignedPreKey(h(t.signedPreKey)),
          oneTimePreKey: t.oneTimePreKey === null ? null : decodeOneTimePreKey(h(t.oneTimePreKey)),
          kemPreKey: decodeKemPreKey(h(t.kemPreKey)),
        };
        same('bundle', encode(bundleArray(bundle)), t.bundle);
        accept(h(t.bundle));
      });
    }
  }
}
