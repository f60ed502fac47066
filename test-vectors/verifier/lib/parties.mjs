/** Devices and prekey stores from a vector's JSON, checked for consistency. */
import { same } from './check.mjs';
import { fromHex as h } from './hex.mjs';
import { ed25519PublicKey, x25519PublicKey } from './primitives.mjs';
import { PreKeyStore } from './records.mjs';
import { decodeCertificate, verifyCertificate } from './structures.mjs';

/** { certificate, signingSeed, identityPrivateKey } from device fields; the keys must match the certificate. */
export function deviceFrom(d) {
  const certificate = verifyCertificate(decodeCertificate(h(d.certificate)), h(d.accountKey));
  same('device signingKey', ed25519PublicKey(h(d.signingSeed)), certificate.signingKey);
  same('device identityKey', x25519PublicKey(h(d.identityPrivateKey)), certificate.identityKey);
  same('device deviceId', certificate.deviceId, d.deviceId);
  return { certificate, signingSeed: h(d.signingSeed), identityPrivateKey: h(d.identityPrivateKey) };
}

/** The responder's prekey store, every listed key unused; public halves must match private ones. */
export function prekeysFrom(r) {
  for (const k of [...r.signedPreKeys, ...r.oneTimePreKeys])
    same(`prekey ${k.id} publicKey`, x25519PublicKey(h(k.privateKey)), k.publicKey);
  return PreKeyStore.fromKeys(r);
}
