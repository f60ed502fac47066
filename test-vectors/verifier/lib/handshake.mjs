/**
 * PQXDH as spec/03-handshake.md defines it: the initiator's derivation from
 * a bundle and explicit random values, and the responder's from a
 * PreKeyMessage and its prekeys.
 */
import { encode } from './cbor.mjs';
import { Info, Label, Sizes } from './constants.mjs';
import { fail } from './errors.mjs';
import { concat } from './hex.mjs';
import { dh, hkdf, mlkemDecapsulate, mlkemEncapsulate, sha256, x25519PublicKey } from './primitives.mjs';
import { certificateArray, verifyBundle, verifyCertificate } from './structures.mjs';

const F = new Uint8Array(32).fill(0xff);
const SALT = new Uint8Array(32);

export function associatedData(initiatorCertificate, responderCertificate) {
  const input = encode([Label.associatedData, certificateArray(initiatorCertificate), certificateArray(responderCertificate)]);
  return { input, associatedData: sha256(input) };
}

function deriveSecret(dhs, kemSecret) {
  const ikm = concat(F, ...dhs, kemSecret);
  return { ikm, salt: SALT, info: Info.pqxdh, sharedSecret: hkdf(SALT, ikm, Info.pqxdh, 32) };
}

/**
 * The initiator (§3). `device` = { identityPrivateKey, certificate };
 * `random` = { ephemeralPrivateKey, kemEncapsulationRandomness }.
 */
export function initiate(device, bundle, expectedAccountKey, random) {
  verifyBundle(bundle, expectedAccountKey);
  const ek = random.ephemeralPrivateKey;
  const dh1 = dh(device.identityPrivateKey, bundle.signedPreKey.publicKey);
  const dh2 = dh(ek, bundle.certificate.identityKey);
  const dh3 = dh(ek, bundle.signedPreKey.publicKey);
  const dh4 = bundle.oneTimePreKey ? dh(ek, bundle.oneTimePreKey.publicKey) : null;
  const kem = mlkemEncapsulate(bundle.kemPreKey.publicKey, random.kemEncapsulationRandomness);
  const secret = deriveSecret(dh4 ? [dh1, dh2, dh3, dh4] : [dh1, dh2, dh3], kem.sharedSecret);
  const ad = associatedData(device.certificate, bundle.certificate);
  return {
    baseKey: x25519PublicKey(ek),
    dh1,
    dh2,
    dh3,
    dh4,
    kemCiphertext: kem.ciphertext,
    kemSharedSecret: kem.sharedSecret,
    ...secret,
    associatedDataInput: ad.input,
    associatedData: ad.associatedData,
    use: {
      baseKey: x25519PublicKey(ek),
      signedPreKeyId: bundle.signedPreKey.id,
      oneTimePreKeyId: bundle.oneTimePreKey?.id ?? null,
      kemPreKeyId: bundle.kemPreKey.id,
    },
  };
}

/** The responder (§4): certificate, then the prekeys by id, then the same secret. Consumes nothing. */
export function respond(device, prekeys, message, expectedAccountKey) {
  verifyCertificate(message.initiatorCertificate, expectedAccountKey);
  if (message.kemCiphertext.length !== Sizes.mlkemCiphertext) fail('MALFORMED', 'kemCiphertext');
  const keys = prekeys.lookup(message.use);
  const base = message.use.baseKey;
  const dhs = [
    dh(keys.signed.privateKey, message.initiatorCertificate.identityKey),
    dh(device.identityPrivateKey, base),
    dh(keys.signed.privateKey, base),
  ];
  if (keys.oneTime) dhs.push(dh(keys.oneTime.privateKey, base));
  const secret = deriveSecret(dhs, mlkemDecapsulate(message.kemCiphertext, keys.kemSecretKey));
  return {
    sharedSecret: secret.sharedSecret,
    associatedData: associatedData(message.initiatorCertificate, device.certificate).associatedData,
    signedPreKey: keys.signed,
  };
}
