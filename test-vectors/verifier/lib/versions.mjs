/**
 * Message versions as spec/02-keys.md §5.7, spec/03-handshake.md §7 and
 * spec/05-wire-format.md §5.5 define them (written from the spec, not from
 * packages/core): version lists, SignedPreKeyV2, PreKeyBundleV2, AD2, the
 * version-2 PQXDH info, the version choice and the downgrade rule.
 */
import { decode, encode, readArray, readBytes, readOptional, readUint } from './cbor.mjs';
import { Limits } from './constants.mjs';
import { fail } from './errors.mjs';
import { utf8 } from './hex.mjs';
import { checkX25519PublicKey, ed25519Sign, ed25519Verify, sha256 } from './primitives.mjs';
import {
  certificateArray,
  certificateFromArray,
  kemPreKeyFromArray,
  oneTimePreKeyFromArray,
  verifyCertificate,
  verifyKemPreKey,
} from './structures.mjs';

export const LabelV2 = {
  signedPreKey: 'Parley v2 signed prekey',
  associatedData: 'Parley v2 associated data',
};
export const InfoV2 = { pqxdh: utf8('Parley_v2_PQXDH_X25519_ML-KEM-768_SHA-256_ChaCha20-Poly1305') };
/** What a version-2 device advertises (02 §5.7). */
export const V2_DEVICE_VERSIONS = [1, 2];
export const MAX_ADVERTISED_VERSIONS = 8;

/** 1..8 entries, each 1..255, strictly ascending (02 §5.7). */
export function readVersionList(v, field) {
  if (!Array.isArray(v)) fail('MALFORMED', `${field}: not an array`);
  if (v.length < 1 || v.length > MAX_ADVERTISED_VERSIONS) fail('MALFORMED', `${field}: ${v.length} entries`);
  let last = 0;
  for (const n of v) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) fail('MALFORMED', `${field}: not an unsigned integer`);
    if (n > 255) fail('OVERSIZED', `${field}: ${n} > 255`);
    if (n === 0) fail('MALFORMED', `${field}: version 0`);
    if (n <= last) fail('MALFORMED', `${field}: not strictly ascending`);
    last = n;
  }
  return [...v];
}

export const signedPreKeyV2SignedBytes = (id, publicKey, versions) => encode([LabelV2.signedPreKey, id, publicKey, versions]);
export const signPreKeyV2 = (signingSeed, id, publicKey, versions) =>
  ed25519Sign(signingSeed, signedPreKeyV2SignedBytes(id, publicKey, versions));

function readId(v, field) {
  const id = readUint(v, field, Limits.MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: 0`);
  return id;
}

export function signedPreKeyV2FromArray(v) {
  const f = readArray(v, 'SignedPreKeyV2', 4);
  return {
    id: readId(f[0], 'id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'publicKey', 32), 'publicKey'),
    versions: readVersionList(f[2], 'versions'),
    signature: readBytes(f[3], 'signature', 64),
  };
}

export const signedPreKeyV2Array = (k) => [k.id, k.publicKey, k.versions, k.signature];
export const decodeSignedPreKeyV2 = (bytes) => signedPreKeyV2FromArray(decode(bytes, 'SignedPreKeyV2', Limits.MAX_BUNDLE_BYTES));

export function verifySignedPreKeyV2(signingKey, k) {
  if (!ed25519Verify(signingKey, signedPreKeyV2SignedBytes(k.id, k.publicKey, k.versions), k.signature)) {
    fail('BAD_SIGNATURE', 'signed prekey (v2)');
  }
}

/** PreKeyBundleV2 = [2, certificate, SignedPreKeyV2, OneTimePreKey / null, KemPreKey] (05 §5.5). */
export function decodeBundleV2(bytes) {
  const v = decode(bytes, 'PreKeyBundleV2', Limits.MAX_BUNDLE_BYTES);
  if (!Array.isArray(v) || v.length < 1) fail('MALFORMED', 'PreKeyBundleV2: not an array');
  if (typeof v[0] !== 'number' || !Number.isInteger(v[0])) fail('MALFORMED', 'PreKeyBundleV2: version');
  if (v[0] !== 2) fail('UNSUPPORTED_VERSION', `PreKeyBundleV2: version ${v[0]}`);
  const f = readArray(v, 'PreKeyBundleV2', 5);
  return {
    version: 2,
    certificate: certificateFromArray(f[1]),
    signedPreKey: signedPreKeyV2FromArray(f[2]),
    oneTimePreKey: readOptional(f[3], oneTimePreKeyFromArray),
    kemPreKey: kemPreKeyFromArray(f[4]),
  };
}

export const bundleV2Array = (b, rest) => [2, certificateArray(b.certificate), signedPreKeyV2Array(b.signedPreKey), ...rest];

export function verifyBundleV2(b, expectedAccountKey) {
  verifyCertificate(b.certificate, expectedAccountKey);
  verifySignedPreKeyV2(b.certificate.signingKey, b.signedPreKey);
  verifyKemPreKey(b.certificate.signingKey, b.kemPreKey);
}

/** AD2 = SHA-256(CBOR(["Parley v2 associated data", cert_A, cert_B, versions_A, versions_B])) (03 §7.2). */
export function associatedData2(initiatorCertificate, responderCertificate, versionsA, versionsB) {
  const input = encode([
    LabelV2.associatedData,
    certificateArray(initiatorCertificate),
    certificateArray(responderCertificate),
    versionsA,
    versionsB,
  ]);
  return { input, associatedData: sha256(input) };
}

/** max(a ∩ b); none in common: UNSUPPORTED_VERSION (03 §7.1). */
export function chooseVersion(a, b) {
  const common = a.filter((v) => b.includes(v));
  if (common.length === 0) fail('UNSUPPORTED_VERSION', 'no common version');
  return Math.max(...common);
}

/**
 * The downgrade rule (03 §7.3): with a pin, a session below min(pin, the
 * highest version this side offers) is DOWNGRADE_REFUSED.
 */
export function checkDowngrade(version, minVersion, offered) {
  if (minVersion === null || minVersion === undefined) return;
  if (version < Math.min(minVersion, Math.max(...offered))) fail('DOWNGRADE_REFUSED', `version ${version} below pin ${minVersion}`);
}
