/**
 * versions.json: message version 2 at session start. Version lists,
 * SignedPreKeyV2 (the second signature), PreKeyBundleV2, the version choice
 * and the downgrade rule, and the version-2 PQXDH (Info.pqxdh2, AD2) from
 * both sides, with the refusals. Pins spec/02-keys.md §5.7,
 * spec/03-handshake.md §7 and spec/05-wire-format.md §5.5
 * (spec/design/formats-v2.md §3).
 */
import { type CborValue, encodeBundle, encodeCbor, encodeSignedPreKeyV2 } from '@parley/core';
import { associatedData2, initiate, respond } from '../../../packages/core/src/handshake/pqxdh.ts';
import { signedPreKeyV2SignedBytes } from '../../../packages/core/src/keys/prekeys.ts';
import { checkNotDowngraded, chooseVersion } from '../../../packages/core/src/keys/versions.ts';
import { Info, Label } from '../../../packages/core/src/labels.ts';
import { type Cast, deviceJson, freshBobPrekeys, responderJson } from '../lib/cast.ts';
import { dh } from '../lib/derive.ts';
import { editField, flipInField, setField } from '../lib/mutate.ts';
import { type Json, type TestCase, type TestGroup, type VectorFile, finish, hex } from '../lib/vector-file.ts';

const codeOf = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? 'NOT_A_PARLEY_ERROR';
  }
};

function versionListGroup(): TestGroup {
  const valid = (comment: string, list: CborValue): TestCase => ({ comment, list: hex(encodeCbor(list)), result: 'valid' });
  const invalid = (comment: string, list: CborValue, error: string): TestCase => ({
    comment,
    list: hex(encodeCbor(list)),
    result: 'invalid',
    error,
  });
  return {
    type: 'VersionList',
    spec: 'spec/02-keys.md §5.7',
    description:
      'A version list as signed in a SignedPreKeyV2 and sent in a PreKeyMessageV2: 1 to 8 unsigned integers, each 1..255, strictly ascending. Valid lists decode to the same values; invalid ones are refused with the error.',
    tests: [
      valid('what a version-1-and-2 device advertises', [1, 2]),
      valid('one version', [1]),
      valid('eight versions, the largest 255', [1, 2, 3, 4, 5, 6, 7, 255]),
      invalid('empty', [], 'MALFORMED'),
      invalid('descending', [2, 1], 'MALFORMED'),
      invalid('a repeated version', [1, 1, 2], 'MALFORMED'),
      invalid('version 0', [0, 1], 'MALFORMED'),
      invalid('nine versions', [1, 2, 3, 4, 5, 6, 7, 8, 9], 'MALFORMED'),
      invalid('a version over 255', [1, 256], 'OVERSIZED'),
      invalid('not an array', 2, 'MALFORMED'),
      invalid('a text entry', ['2'], 'MALFORMED'),
    ],
  };
}

function signedPreKeyGroup(cast: Cast): TestGroup {
  const store = freshBobPrekeys(cast);
  const v1 = store.currentSignedPreKey();
  const k = store.currentSignedPreKeyV2();
  const encoded = encodeSignedPreKeyV2(k);
  const invalid = (comment: string, bytes: Uint8Array, error: string): TestCase => ({
    comment,
    encoded: hex(bytes),
    result: 'invalid',
    error,
  });
  // SignedPreKeyV2 = [id, publicKey, versions, signature].
  return {
    type: 'SignedPreKeyV2',
    spec: 'spec/02-keys.md §5.7, spec/05-wire-format.md §5.5',
    description:
      'A version-2 device signs each signed prekey twice: the v1 signature (02 §5.2) and signature = Ed25519(signingKey, signedBytes), signedBytes = CBOR(["Parley v2 signed prekey", id, publicKey, versions]). Valid: the encoding decodes to the fields and the signature verifies under the device\'s signingKey. Invalid: decoding, then verifying under signingKey, fails with the error.',
    device: deviceJson(cast, cast.bobDevice1, 'bob.device1'),
    tests: [
      {
        comment: "bob's signed prekey 1 as a v2 device publishes it",
        id: k.id,
        publicKey: hex(k.publicKey),
        versions: [...k.versions],
        signedBytes: hex(signedPreKeyV2SignedBytes(k.id, k.publicKey, k.versions)),
        signature: hex(k.signature),
        v1Signature: hex(v1.signature),
        encoded: hex(encoded),
        result: 'valid',
      },
      invalid('versions rewritten to [1] (a relay hiding version 2)', setField(encoded, [2], [1]), 'BAD_SIGNATURE'),
      invalid('versions rewritten to [1, 2, 3]', setField(encoded, [2], [1, 2, 3]), 'BAD_SIGNATURE'),
      invalid('the v1 signature in place of the v2 one (labels differ)', setField(encoded, [3], v1.signature), 'BAD_SIGNATURE'),
      invalid(
        'signature with one bit flipped',
        editField(encoded, [3], (s) => flipInField(s, 0)),
        'BAD_SIGNATURE',
      ),
      invalid('versions not ascending', setField(encoded, [2], [2, 1]), 'MALFORMED'),
      invalid('versions empty', setField(encoded, [2], []), 'MALFORMED'),
      invalid('the v1 form (three fields)', encodeCbor([v1.id, v1.publicKey, v1.signature]), 'MALFORMED'),
      invalid('prekey id 0', setField(encoded, [0], 0), 'MALFORMED'),
    ],
  };
}

function bundleGroup(cast: Cast): TestGroup {
  const store = freshBobPrekeys(cast);
  const bundle = store.bundleV2();
  const bytes = encodeBundle(bundle);
  const bob = hex(cast.bob.publicKey);
  const invalid = (comment: string, b: Uint8Array, error: string, expectedAccountKey = bob): TestCase => ({
    comment,
    bundle: hex(b),
    expectedAccountKey,
    result: 'invalid',
    error,
  });
  // PreKeyBundleV2 = [2, certificate, SignedPreKeyV2, OneTimePreKey / null, KemPreKey].
  return {
    type: 'PreKeyBundleV2',
    spec: 'spec/05-wire-format.md §5.5, spec/09-relay.md §4.2.1',
    description:
      'What the relay serves on /v2/keys for a device that published its v2 signed prekey. Valid: decodes (version 2) and verifies against expectedAccountKey (certificate, v2 signed prekey signature, KEM prekey signature). Invalid: decoding or verifying fails with the error.',
    tests: [
      {
        comment: "bob's v2 bundle with one-time prekey 1 and KEM prekey 2",
        bundle: hex(bytes),
        expectedAccountKey: bob,
        versions: [1, 2],
        result: 'valid',
      },
      invalid('versions in the signed prekey rewritten to [1]', setField(bytes, [2, 2], [1]), 'BAD_SIGNATURE'),
      invalid('version 3', setField(bytes, [0], 3), 'UNSUPPORTED_VERSION'),
      invalid(
        'a v1 signed prekey (three fields) in a version-2 bundle',
        setField(bytes, [2], [bundle.signedPreKey.id, bundle.signedPreKey.publicKey, store.currentSignedPreKey().signature]),
        'MALFORMED',
      ),
      invalid("the bundle checked against alice's account", bytes, 'BAD_CERTIFICATE', hex(cast.alice.publicKey)),
    ],
  };
}

function choiceGroup(): TestGroup {
  type Choice = [comment: string, local: number[], remote: number[] | null, minVersion: number | null];
  const cases: Choice[] = [
    ['both advertise [1, 2]', [1, 2], [1, 2], null],
    ['a v1 bundle (no versions): version 1', [1, 2], null, null],
    ['this device offers [1] only', [1], [1, 2], null],
    ['the peer advertises [1]', [1, 2], [1], null],
    ['a peer of a later release', [1, 2], [1, 2, 3], null],
    ['pinned at 2, the bundle says [1, 2]', [1, 2], [1, 2], 2],
    ['pinned at 2, but this device offers [1] only: nobody downgraded it', [1], [1, 2], 2],
    ['pinned at 2, a v1 bundle: a downgrade', [1, 2], null, 2],
    ['pinned at 2, the bundle says [1]: a downgrade', [1, 2], [1], 2],
    ['no common version', [2], [1], null],
  ];
  return {
    type: 'VersionChoice',
    spec: 'spec/03-handshake.md §7.1, §7.3',
    description:
      'The initiator chooses max(localVersions ∩ remoteVersions); remoteVersions null stands for a v1 bundle, which offers [1]. With a pin (minVersion), a choice below min(minVersion, max(localVersions)) is DOWNGRADE_REFUSED. Valid cases give the version; invalid ones the error.',
    tests: cases.map(([comment, local, remote, minVersion]) => {
      let version = 0;
      const error = codeOf(() => {
        version = chooseVersion(local, remote ?? [1]);
        checkNotDowngraded(version, minVersion ?? undefined, local, 1);
      });
      const base = { comment, localVersions: local, remoteVersions: remote, minVersion };
      return error ? { ...base, result: 'invalid', error } : { ...base, version, result: 'valid' };
    }),
  };
}

function pqxdh2Group(cast: Cast): TestGroup {
  const { rng, backend: b, provider: p } = cast;
  const store = freshBobPrekeys(cast);
  const bundle = store.bundleV2();
  const hs = rng.run(
    [
      ['versions.ephemeralPrivateKey', 32],
      ['versions.kemEncapsulationRandomness', 32],
    ],
    () => initiate(p, cast.aliceDevice1, bundle, { expectedAccountKey: cast.bob.publicKey }),
  );
  const ek = rng.drawn('versions.ephemeralPrivateKey');
  const kemRandomness = rng.drawn('versions.kemEncapsulationRandomness');
  // Step by step, from the spec: the v1 derivation with Info.pqxdh2, and AD2.
  const dh1 = dh(b, rng.drawn('alice.device1.identityPrivateKey'), bundle.signedPreKey.publicKey);
  const dh2 = dh(b, ek, cast.bobDevice1.certificate.identityKey);
  const dh3 = dh(b, ek, bundle.signedPreKey.publicKey);
  const dh4 = dh(b, ek, (bundle.oneTimePreKey as { publicKey: Uint8Array }).publicKey);
  const kem = b.mlkemEncapsulate(bundle.kemPreKey.publicKey, kemRandomness);
  const ikm = new Uint8Array([...new Uint8Array(32).fill(0xff), ...dh1, ...dh2, ...dh3, ...dh4, ...kem.sharedSecret]);
  const sharedSecret = b.hkdfSha256(ikm, new Uint8Array(32), Info.pqxdh2, 32);
  const versions = { initiator: [1, 2], responder: [...bundle.signedPreKey.versions] };
  const adInput = encodeCbor([
    Label.associatedData2,
    certificateArray(cast, 'alice'),
    certificateArray(cast, 'bob'),
    versions.initiator,
    versions.responder,
  ]);
  if (hex(sharedSecret) !== hex(hs.sharedSecret)) throw new Error('versions: core SK differs from the step-by-step v2 derivation');
  if (hex(b.sha256(adInput)) !== hex(hs.associatedData)) throw new Error('versions: core AD2 differs from the step-by-step derivation');
  if (hex(associatedData2(p, cast.aliceDevice1.certificate, cast.bobDevice1.certificate, versions)) !== hex(hs.associatedData)) {
    throw new Error('versions: AD2 helper disagrees');
  }
  const message = {
    baseKey: hex(hs.use.baseKey),
    signedPreKeyId: hs.use.signedPreKeyId,
    oneTimePreKeyId: hs.use.oneTimePreKeyId,
    kemPreKeyId: hs.use.kemPreKeyId,
    kemCiphertext: hex(hs.kemCiphertext),
  };
  const responderCase = (
    comment: string,
    initiatorVersions: number[] | null,
    extra: { [k: string]: Json },
    expect: TestCase['result'],
    error?: string,
  ): TestCase => {
    const out = codeOf(() =>
      respond(p, cast.bobDevice1, freshBobPrekeys(cast), cast.aliceDevice1.certificate, hs.use, hs.kemCiphertext, {
        initiatorVersions,
        ...(typeof extra.minVersion === 'number' ? { minVersion: extra.minVersion } : {}),
      }),
    );
    if ((out ?? undefined) !== error) throw new Error(`versions: responder case "${comment}" gave ${out}, expected ${error}`);
    const r =
      expect === 'valid'
        ? respond(p, cast.bobDevice1, freshBobPrekeys(cast), cast.aliceDevice1.certificate, hs.use, hs.kemCiphertext, { initiatorVersions })
        : null;
    return {
      comment,
      side: 'responder',
      initiatorVersions,
      ...extra,
      ...(r
        ? {
            sharedSecret: hex(r.sharedSecret),
            associatedData: hex(r.associatedData),
            matchesInitiator: hex(r.associatedData) === hex(hs.associatedData),
          }
        : {}),
      result: expect,
      ...(error ? { error } : {}),
    };
  };
  return {
    type: 'PQXDH2',
    spec: 'spec/03-handshake.md §7.2, §7.3',
    description:
      "Alice's device 1 starts a version-2 session with bob's v2 bundle (fields as handshake.json's PQXDH, with hkdfInfo = Info.pqxdh2 and AD2 = SHA-256(CBOR([\"Parley v2 associated data\", cert_A, cert_B, versions_A, versions_B]))). The responder cases give bob the same handshake fields with initiatorVersions as versions_A (null: a version-1 PreKeyMessage) and take versions_B from bob's own store: valid ones list the responder's secret and AD2 and whether AD2 matches the initiator's (a rewritten list does not, and the first message then fails with DECRYPT_FAILED, 05 §4.3); invalid ones fail with the error and consume nothing.",
    initiator: deviceJson(cast, cast.aliceDevice1, 'alice.device1'),
    responder: responderJson(cast),
    message,
    tests: [
      {
        comment: 'the initiator: both devices advertise [1, 2], version 2',
        side: 'initiator',
        bundle: hex(encodeBundle(bundle)),
        ephemeralPrivateKey: hex(ek),
        kemEncapsulationRandomness: hex(kemRandomness),
        version: hs.version,
        dh1: hex(dh1),
        dh2: hex(dh2),
        dh3: hex(dh3),
        dh4: hex(dh4),
        kemCiphertext: hex(kem.ciphertext),
        kemSharedSecret: hex(kem.sharedSecret),
        hkdfIkm: hex(ikm),
        hkdfInfo: hex(Info.pqxdh2),
        sharedSecret: hex(sharedSecret),
        versionsA: versions.initiator,
        versionsB: versions.responder,
        associatedDataInput: hex(adInput),
        associatedData: hex(hs.associatedData),
        result: 'valid',
      },
      responderCase('the responder with versions_A as sent', [1, 2], {}, 'valid'),
      responderCase('versions_A rewritten to [1, 2, 3] on the way: another AD2', [1, 2, 3], {}, 'valid'),
      responderCase('versions_A rewritten to [2]: another AD2', [2], {}, 'valid'),
      responderCase('a version-2 message whose versions_A [1] do not choose version 2', [1], {}, 'invalid', 'DECRYPT_FAILED'),
      responderCase('a version-1 PreKeyMessage from a device pinned at 2', null, { minVersion: 2 }, 'invalid', 'DOWNGRADE_REFUSED'),
      responderCase('a version-1 PreKeyMessage without a pin', null, {}, 'valid'),
    ],
  };
}

function certificateArray(cast: Cast, who: 'alice' | 'bob'): CborValue {
  const c = who === 'alice' ? cast.aliceDevice1.certificate : cast.bobDevice1.certificate;
  return [c.version, c.accountKey, c.deviceId, c.signingKey, c.identityKey, c.signature];
}

export function versionsFile(cast: Cast): string {
  const file: VectorFile = {
    description:
      'Message version 2 at session start: version lists, the second signed-prekey signature, v2 bundles, the version choice with the downgrade pin, and the version-2 PQXDH (Info.pqxdh2, AD2). The ratchet of a v2 session is in ratchet-v2.json.',
    spec: 'spec/03-handshake.md §7',
    version: 1,
    protocolVersion: 2,
    notes: {
      encoding:
        'Bytes are lowercase hex. Lists of versions are JSON arrays; null remoteVersions or initiatorVersions stands for version 1 (no list).',
      labels: `Label.signedPreKey2 = "${Label.signedPreKey2}", Label.associatedData2 = "${Label.associatedData2}", Info.pqxdh2 = "${new TextDecoder().decode(Info.pqxdh2)}" (spec/01-conventions.md §5).`,
    },
    testGroups: [versionListGroup(), signedPreKeyGroup(cast), bundleGroup(cast), choiceGroup(), pqxdh2Group(cast)],
  };
  return finish(file);
}
