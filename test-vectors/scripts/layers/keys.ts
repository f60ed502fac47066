/**
 * keys.json: account keys, device certificates, prekey and KEM prekey
 * signatures, bundle encodings, and the ways each is refused.
 * Pins spec/02-keys.md §1-§6.
 */
import {
  type DeviceCertificate,
  type KemPreKeyPublic,
  Label,
  type OneTimePreKeyPublic,
  PROTOCOL_VERSION,
  encodeBundle,
  encodeCbor,
  encodeCertificate,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodeSignedPreKey,
  fromHex,
  limits,
} from '@parley/core';
import { type Cast, accountJson, deviceJson, kemPreKeyJson, oneTimePreKeyJson, signedPreKeyJson } from '../lib/cast.ts';
import { malleateSignature, secretScalar, signWithTorsion, torsionedKey } from '../lib/ed25519.ts';
import {
  BAD_X25519_KEYS,
  appendField,
  dropLastField,
  editField,
  flipInField,
  indefiniteArray,
  longFormArrayLength,
  setField,
  truncate,
  withTrailingByte,
  withUint64,
} from '../lib/mutate.ts';
import { type TestCase, type TestGroup, type VectorFile, DEVIATION_NOTE, finish, hex } from '../lib/vector-file.ts';

function certificateSignedBytes(c: DeviceCertificate): Uint8Array {
  return encodeCbor([Label.deviceCertificate, c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey]);
}

/**
 * Certificates "signed" by an account key of small order: with A and R the
 * identity point and s = 0, [s]B = R + [k]A holds for every message, so only
 * the refusal of small-order A (spec/01-conventions.md §3.2) stops them.
 */
function smallOrderAccountKeys(cast: Cast): TestCase[] {
  const identity = fromHex(`01${'00'.repeat(31)}`);
  const signature = Uint8Array.of(...identity, ...new Uint8Array(32));
  const c = cast.aliceDevice1.certificate;
  return [
    ['the identity point', identity],
    ['a non-canonical encoding of the identity point', fromHex(`ee${'ff'.repeat(30)}7f`)],
  ].map(([name, accountKey]) => ({
    comment: `accountKey is ${name} (small order) and the signature is R = identity, s = 0, which satisfies the cofactorless equation for any message`,
    certificate: hex(encodeCbor([c.version, accountKey as Uint8Array, c.deviceId, c.signingKey, c.identityKey, signature])),
    expectedAccountKey: hex(accountKey as Uint8Array),
    result: 'invalid',
    error: 'BAD_CERTIFICATE',
  }));
}

/**
 * Signatures that involve a small torsion component (spec/01-conventions.md
 * §3.2). An account key A = [a]B + T (T of order 8) is refused whatever the
 * signature: with k = 0 mod 8 both the cofactored and the cofactorless
 * equation hold, with k != 0 mod 8 only the cofactored one. A signature by a
 * torsion-free key whose R = [r]B + T satisfies only the cofactored equation:
 * the specification (cofactorless) refuses it, the noble backend accepts it
 * (D4, the one place the backends still differ).
 */
function torsionCases(cast: Cast): TestCase[] {
  const c = cast.aliceDevice1.certificate;
  const certificate = (accountKey: Uint8Array, signature: Uint8Array) =>
    hex(encodeCbor([c.version, accountKey, c.deviceId, c.signingKey, c.identityKey, signature]));
  const torsioned = torsionedKey('accountKey');
  const signedBytes = certificateSignedBytes({ ...c, accountKey: torsioned.publicKey });
  const keyCase = (comment: string, label: string, accept: (k: bigint) => boolean): TestCase => ({
    comment,
    certificate: certificate(
      torsioned.publicKey,
      signWithTorsion(label, torsioned.a, torsioned.publicKey, signedBytes, { rTorsion: false, accept }),
    ),
    expectedAccountKey: hex(torsioned.publicKey),
    result: 'invalid',
    error: 'BAD_CERTIFICATE',
  });
  const aliceKey = cast.alice.publicKey;
  const a = secretScalar(cast.rng.drawn('alice.accountSeed'));
  return [
    keyCase(
      'accountKey A = [a]B + T with T of order 8 (canonical, not of small order, not torsion-free); signature S = r + k*a with k = 0 mod 8, so both the cofactored and the cofactorless equation hold: only the torsion check refuses it',
      'accountKey/k0',
      (k) => k % 8n === 0n,
    ),
    keyCase(
      'the same torsioned accountKey; signature S = r + k*a with k != 0 mod 8: the cofactored equation holds, the cofactorless one does not (the backends used to disagree); refused by the key check',
      'accountKey/k1',
      (k) => k % 8n !== 0n,
    ),
    {
      comment:
        "alice's own (torsion-free) account key signs with R = [r]B + T, T of order 8, S = r + k*a: the cofactored equation holds, the cofactorless one of spec/01 §3.2 does not. Only the key holder can make such a signature. D4: the noble backend accepts it",
      certificate: certificate(
        aliceKey,
        signWithTorsion('alice/rTorsion', a, aliceKey, certificateSignedBytes(c), { rTorsion: true, accept: () => true }),
      ),
      expectedAccountKey: hex(aliceKey),
      result: 'invalid',
      error: 'BAD_CERTIFICATE',
      knownDeviation: { id: 'D4', backends: ['noble'], v1Error: null },
    },
  ];
}

function accountGroup(cast: Cast): TestGroup {
  return {
    type: 'AccountKey',
    spec: 'spec/02-keys.md §1',
    description: 'An account key is the Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5).',
    tests: (['alice', 'bob', 'carol'] as const).map((name) => ({
      comment: `${name}'s account`,
      ...accountJson(cast, name),
      result: 'valid',
    })),
  };
}

function certificateGroup(cast: Cast): TestGroup {
  const valid = (device: typeof cast.aliceDevice1, label: string, account: 'alice' | 'bob', comment: string): TestCase => ({
    comment,
    accountSeed: hex(cast.rng.drawn(`${account}.accountSeed`)),
    ...deviceJson(cast, device, label),
    signedBytes: hex(certificateSignedBytes(device.certificate)),
    signature: hex(device.certificate.signature),
    expectedAccountKey: hex(cast[account].publicKey),
    result: 'valid',
  });
  const cert = encodeCertificate(cast.aliceDevice1.certificate);
  const aliceKey = hex(cast.alice.publicKey);
  const invalid = (comment: string, certificate: Uint8Array, error: string, expectedAccountKey = aliceKey): TestCase => ({
    comment,
    certificate: hex(certificate),
    expectedAccountKey,
    result: 'invalid',
    error,
  });
  // Field positions in DeviceCertificate = [version, accountKey, deviceId, signingKey, identityKey, signature].
  return {
    type: 'DeviceCertificate',
    spec: 'spec/02-keys.md §3, spec/05-wire-format.md §5.1',
    description:
      'Valid: the account signs signedBytes = CBOR(["Parley v1 device certificate", version, accountKey, deviceId, signingKey, identityKey]) with Ed25519; certificate = CBOR([version, accountKey, deviceId, signingKey, identityKey, signature]). Invalid: decoding the certificate, then verifying it against expectedAccountKey, must fail with the error.',
    tests: [
      valid(cast.aliceDevice1, 'alice.device1', 'alice', "alice's device 1, created by the account"),
      valid(
        cast.aliceDevice2,
        'alice.device2',
        'alice',
        "alice's device 2, keys made on the device and certified by the account (linking)",
      ),
      valid(cast.bobDevice1, 'bob.device1', 'bob', "bob's device 1"),
      invalid(
        'signature with one bit flipped',
        editField(cert, [5], (s) => flipInField(s, 0)),
        'BAD_CERTIFICATE',
      ),
      invalid('valid certificate of another account than the expected one', cert, 'BAD_CERTIFICATE', hex(cast.bob.publicKey)),
      invalid(
        "accountKey replaced by bob's (signed by alice)",
        setField(cert, [1], cast.bob.publicKey),
        'BAD_CERTIFICATE',
        hex(cast.bob.publicKey),
      ),
      invalid('deviceId changed after signing', setField(cert, [2], 3), 'BAD_CERTIFICATE'),
      invalid(
        'identityKey swapped for device 2 key after signing',
        setField(cert, [4], cast.aliceDevice2.certificate.identityKey),
        'BAD_CERTIFICATE',
      ),
      invalid(
        'signature with S + L (non-canonical scalar; strict verification refuses it)',
        editField(cert, [5], (s) => malleateSignature(s as Uint8Array)),
        'BAD_CERTIFICATE',
      ),
      ...smallOrderAccountKeys(cast),
      ...torsionCases(cast),
      invalid('version 2', setField(cert, [0], 2), 'UNSUPPORTED_VERSION'),
      invalid('version 0', setField(cert, [0], 0), 'UNSUPPORTED_VERSION'),
      invalid(
        'version 2 with seven fields (the version is checked before the field count)',
        appendField(setField(cert, [0], 2), [], 0),
        'UNSUPPORTED_VERSION',
      ),
      invalid('last byte cut off', truncate(cert), 'MALFORMED'),
      invalid('trailing byte after the certificate', withTrailingByte(cert), 'MALFORMED'),
      invalid(
        'signature 63 bytes',
        editField(cert, [5], (s) => (s as Uint8Array).slice(0, 63)),
        'MALFORMED',
      ),
      invalid(
        'identityKey 33 bytes',
        editField(cert, [4], (k) => Uint8Array.of(...(k as Uint8Array), 0)),
        'MALFORMED',
      ),
      invalid(
        'accountKey 31 bytes',
        editField(cert, [1], (k) => (k as Uint8Array).slice(0, 31)),
        'MALFORMED',
      ),
      invalid('deviceId 0 (ids start at 1)', setField(cert, [2], 0), 'MALFORMED'),
      invalid('deviceId 2^31 (above the 2^31-1 bound)', setField(cert, [2], limits.MAX_DEVICE_ID + 1), 'OVERSIZED'),
      invalid('deviceId as a negative integer', setField(cert, [2], -1), 'MALFORMED'),
      invalid('deviceId as a text string', setField(cert, [2], '1'), 'MALFORMED'),
      invalid('seven fields', appendField(cert, [], 0), 'MALFORMED'),
      invalid('five fields', dropLastField(cert), 'MALFORMED'),
      invalid('array of indefinite length (not deterministic CBOR)', indefiniteArray(cert), 'MALFORMED'),
      invalid('array length in a longer form than needed (not deterministic CBOR)', longFormArrayLength(cert), 'MALFORMED'),
      invalid('version encoded as the half-precision float 1.0', Uint8Array.of(0x86, 0xf9, 0x3c, 0x00, ...cert.subarray(2)), 'MALFORMED'),
      invalid('a map instead of an array', Uint8Array.of(0xa1, 0x01, ...cert.subarray(1, 2)), 'MALFORMED'),
      invalid(
        `larger than the ${limits.MAX_BUNDLE_BYTES}-byte limit for keys structures`,
        editField(cert, [5], () => new Uint8Array(limits.MAX_BUNDLE_BYTES)),
        'OVERSIZED',
      ),
      ...BAD_X25519_KEYS.map(({ name, key }) =>
        invalid(`identityKey is the ${name} (checked when decoding, before the signature)`, setField(cert, [4], key), 'BAD_PUBLIC_KEY'),
      ),
    ],
  };
}

function signedPreKeyGroup(cast: Cast): TestGroup {
  const spk = cast.bobPrekeys.currentSignedPreKey();
  const bytes = encodeSignedPreKey(spk);
  const invalid = (comment: string, signedPreKey: Uint8Array, error: string): TestCase => ({
    comment,
    signedPreKey: hex(signedPreKey),
    result: 'invalid',
    error,
  });
  return {
    type: 'SignedPreKey',
    spec: 'spec/02-keys.md §5.2',
    description:
      'The device signing key signs signedBytes = CBOR(["Parley v1 signed prekey", id, publicKey]); encoded = CBOR([id, publicKey, signature]). Invalid: decoding signedPreKey, then verifying it with the group\'s signingKey, must fail with the error.',
    signingSeed: hex(cast.rng.drawn('bob.device1.signingSeed')),
    signingKey: hex(cast.bobDevice1.certificate.signingKey),
    tests: [
      {
        comment: "bob's signed prekey 1",
        ...signedPreKeyJson(cast, spk),
        signedBytes: hex(encodeCbor([Label.signedPreKey, spk.id, spk.publicKey])),
        encoded: hex(bytes),
        result: 'valid',
      },
      invalid(
        'signature with one bit flipped',
        editField(bytes, [2], (s) => flipInField(s, 10)),
        'BAD_SIGNATURE',
      ),
      invalid('id changed after signing', setField(bytes, [0], 7), 'BAD_SIGNATURE'),
      invalid(
        'signature with S + L',
        editField(bytes, [2], (s) => malleateSignature(s as Uint8Array)),
        'BAD_SIGNATURE',
      ),
      invalid(
        "the same signedBytes signed by another device's signing key (alice's device 1)",
        setField(bytes, [2], cast.aliceDevice1.sign(encodeCbor([Label.signedPreKey, spk.id, spk.publicKey]))),
        'BAD_SIGNATURE',
      ),
      invalid('id 0 (reserved)', setField(bytes, [0], 0), 'MALFORMED'),
      invalid(
        'id 2^32 in the 8-byte integer form (integers above 2^32-1 are outside the subset)',
        withUint64((x) => setField(bytes, [0], x), 2n ** 32n),
        'MALFORMED',
      ),
      invalid('id 2^32 written as a float64 (no floats in the subset)', setField(bytes, [0], 2 ** 32), 'MALFORMED'),
      invalid(
        'id 2^32-1 (the largest id): accepted by decoding, so the signature fails',
        setField(bytes, [0], 2 ** 32 - 1),
        'BAD_SIGNATURE',
      ),
      invalid(
        'publicKey 31 bytes',
        editField(bytes, [1], (k) => (k as Uint8Array).slice(1)),
        'MALFORMED',
      ),
      invalid('four fields', appendField(bytes, [], new Uint8Array(0)), 'MALFORMED'),
      ...BAD_X25519_KEYS.map(({ name, key }) => invalid(`publicKey is the ${name}`, setField(bytes, [1], key), 'BAD_PUBLIC_KEY')),
    ],
  };
}

function oneTimePreKeyGroup(cast: Cast): TestGroup {
  const [first, second] = cast.bobPrekeys.oneTimePreKeys() as [OneTimePreKeyPublic, OneTimePreKeyPublic];
  const bytes = encodeOneTimePreKey(first);
  const invalid = (comment: string, oneTimePreKey: Uint8Array, error: string): TestCase => ({
    comment,
    oneTimePreKey: hex(oneTimePreKey),
    result: 'invalid',
    error,
  });
  return {
    type: 'OneTimePreKey',
    spec: 'spec/02-keys.md §5.3',
    description: 'Unsigned one-time X25519 prekeys: encoded = CBOR([id, publicKey]). Invalid: decoding must fail with the error.',
    tests: [
      ...[first, second].map((k) => ({
        comment: `bob's one-time prekey ${k.id}`,
        ...oneTimePreKeyJson(cast, k),
        encoded: hex(encodeOneTimePreKey(k)),
        result: 'valid' as const,
      })),
      invalid('id 0 (reserved)', setField(bytes, [0], 0), 'MALFORMED'),
      invalid('publicKey missing', dropLastField(bytes), 'MALFORMED'),
      ...BAD_X25519_KEYS.map(({ name, key }) => invalid(`publicKey is the ${name}`, setField(bytes, [1], key), 'BAD_PUBLIC_KEY')),
    ],
  };
}

function kemPreKeyGroup(cast: Cast): TestGroup {
  const lastResort = cast.bobPrekeys.lastResortKemPreKey();
  const [oneTime] = cast.bobPrekeys.kemPreKeys() as [KemPreKeyPublic];
  const bytes = encodeKemPreKey(oneTime);
  const invalid = (comment: string, kemPreKey: Uint8Array, error: string): TestCase => ({
    comment,
    kemPreKey: hex(kemPreKey),
    result: 'invalid',
    error,
  });
  const valid = (k: KemPreKeyPublic, comment: string): TestCase => {
    const keys = cast.backend.mlkemKeygen(cast.rng.drawn(`bob.device1.kemPreKey${k.id}.seed`));
    return {
      comment,
      ...kemPreKeyJson(cast, k),
      secretKey: hex(keys.secretKey),
      signedBytes: hex(encodeCbor([Label.kemPreKey, k.id, k.publicKey, k.lastResort])),
      encoded: hex(encodeKemPreKey(k)),
      result: 'valid',
    };
  };
  return {
    type: 'KemPreKey',
    spec: 'spec/02-keys.md §5.4',
    description:
      'ML-KEM-768 prekeys: (publicKey, secretKey) = ML-KEM-768.KeyGen_internal(d, z) with seed = d || z (FIPS 203 §6.1); the device signing key signs signedBytes = CBOR(["Parley v1 KEM prekey", id, publicKey, lastResort]); encoded = CBOR([id, publicKey, lastResort, signature]). Invalid: decoding kemPreKey, then verifying it with signingKey, must fail with the error.',
    signingSeed: hex(cast.rng.drawn('bob.device1.signingSeed')),
    signingKey: hex(cast.bobDevice1.certificate.signingKey),
    tests: [
      valid(lastResort, "bob's last-resort KEM prekey (id 1)"),
      valid(oneTime, "bob's one-time KEM prekey (id 2)"),
      invalid('lastResort flag flipped after signing', setField(bytes, [2], true), 'BAD_SIGNATURE'),
      invalid(
        'signature with one bit flipped',
        editField(bytes, [3], (s) => flipInField(s, 63)),
        'BAD_SIGNATURE',
      ),
      invalid('id changed after signing', setField(bytes, [0], 1), 'BAD_SIGNATURE'),
      invalid(
        'publicKey one byte short (1183 bytes)',
        editField(bytes, [1], (k) => (k as Uint8Array).slice(1)),
        'MALFORMED',
      ),
      invalid('lastResort as the integer 0', setField(bytes, [2], 0), 'MALFORMED'),
      invalid('signature missing', dropLastField(bytes), 'MALFORMED'),
    ],
  };
}

function bundleGroup(cast: Cast): TestGroup {
  const store = cast.bobPrekeys;
  const withOneTime = store.bundle();
  const withoutOneTime = store.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false });
  const bytes = encodeBundle(withOneTime);
  const bobKey = hex(cast.bob.publicKey);
  const valid = (b: typeof withOneTime, comment: string): TestCase => ({
    comment,
    version: b.version,
    certificate: hex(encodeCertificate(b.certificate)),
    signedPreKey: hex(encodeSignedPreKey(b.signedPreKey)),
    oneTimePreKey: b.oneTimePreKey ? hex(encodeOneTimePreKey(b.oneTimePreKey)) : null,
    kemPreKey: hex(encodeKemPreKey(b.kemPreKey)),
    expectedAccountKey: bobKey,
    bundle: hex(encodeBundle(b)),
    result: 'valid',
  });
  const invalid = (comment: string, bundle: Uint8Array, error: string, expectedAccountKey = bobKey): TestCase => ({
    comment,
    bundle: hex(bundle),
    expectedAccountKey,
    result: 'invalid',
    error,
  });
  // PreKeyBundle = [version, certificate, signedPreKey, oneTimePreKey / null, kemPreKey].
  return {
    type: 'PreKeyBundle',
    spec: 'spec/02-keys.md §6, spec/05-wire-format.md §5.5',
    description:
      'bundle = CBOR([version, certificate, signedPreKey, oneTimePreKey or null, kemPreKey]) with each part in its array form (the encoded parts are given separately). Accepting a bundle = decode it, verify the certificate against expectedAccountKey, verify both prekey signatures with the certificate signingKey. Invalid: that must fail with the error.',
    tests: [
      valid(withOneTime, 'one-time prekey 1 and one-time KEM prekey 2'),
      valid(withoutOneTime, 'no one-time prekey; the last-resort KEM prekey 1'),
      invalid('bundle of another account than expected', bytes, 'BAD_CERTIFICATE', hex(cast.alice.publicKey)),
      invalid(
        "certificate replaced by alice's device 1 certificate (the prekeys are not signed by that device)",
        setField(bytes, [1], fromCertificate(cast.aliceDevice1.certificate)),
        'BAD_SIGNATURE',
        hex(cast.alice.publicKey),
      ),
      invalid(
        'signed prekey signature with one bit flipped',
        editField(bytes, [2, 2], (s) => flipInField(s, 5)),
        'BAD_SIGNATURE',
      ),
      invalid(
        'KEM prekey signature with one bit flipped',
        editField(bytes, [4, 3], (s) => flipInField(s, 5)),
        'BAD_SIGNATURE',
      ),
      invalid('KEM prekey lastResort flag flipped after signing', setField(bytes, [4, 2], true), 'BAD_SIGNATURE'),
      invalid(
        'certificate signature with one bit flipped',
        editField(bytes, [1, 5], (s) => flipInField(s, 5)),
        'BAD_CERTIFICATE',
      ),
      invalid('version 2', setField(bytes, [0], 2), 'UNSUPPORTED_VERSION'),
      invalid('certificate version 2 inside a version 1 bundle', setField(bytes, [1, 0], 2), 'UNSUPPORTED_VERSION'),
      invalid('KEM prekey missing (four fields)', dropLastField(bytes), 'MALFORMED'),
      invalid('one-time prekey slot holds false instead of null', setField(bytes, [3], false), 'MALFORMED'),
      invalid('last byte cut off', truncate(bytes), 'MALFORMED'),
      invalid(
        `larger than the ${limits.MAX_BUNDLE_BYTES}-byte limit`,
        editField(bytes, [4, 1], (k) => Uint8Array.of(...(k as Uint8Array), ...new Uint8Array(limits.MAX_BUNDLE_BYTES))),
        'OVERSIZED',
      ),
      ...BAD_X25519_KEYS.slice(0, 3).map(({ name, key }) =>
        invalid(`signed prekey publicKey is the ${name}`, setField(bytes, [2, 1], key), 'BAD_PUBLIC_KEY'),
      ),
      ...BAD_X25519_KEYS.slice(3).map(({ name, key }) =>
        invalid(`one-time prekey publicKey is the ${name}`, setField(bytes, [3, 1], key), 'BAD_PUBLIC_KEY'),
      ),
    ],
  };
}

function fromCertificate(c: DeviceCertificate) {
  return [c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey, c.signature];
}

export function keysFile(cast: Cast): string {
  const file: VectorFile = {
    description:
      'Account keys, device certificates, signed prekeys, one-time prekeys, KEM prekeys and prekey bundles: how each is derived, signed and encoded, and the inputs that must be refused.',
    spec: 'spec/02-keys.md',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      signatures: 'Ed25519 (RFC 8032), deterministic: recomputing a signature from its seed and signedBytes must give the same bytes.',
      labels: `Signed-bytes labels are UTF-8 text: ${JSON.stringify(Label.deviceCertificate)}, ${JSON.stringify(Label.signedPreKey)}, ${JSON.stringify(Label.kemPreKey)}.`,
      randomness:
        'accountSeed, signingSeed, identityPrivateKey, privateKey and seed fields are the random values drawn when the keys were made; everything else is derived from them.',
      deviations: DEVIATION_NOTE,
      encoding:
        'Every structure is deterministic CBOR (spec/01-conventions.md §2); the invalid cases include encodings that are well-formed CBOR but not deterministic.',
    },
    testGroups: [
      accountGroup(cast),
      certificateGroup(cast),
      signedPreKeyGroup(cast),
      oneTimePreKeyGroup(cast),
      kemPreKeyGroup(cast),
      bundleGroup(cast),
    ],
  };
  return finish(file);
}
