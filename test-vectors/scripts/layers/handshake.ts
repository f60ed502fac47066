/**
 * handshake.json: PQXDH from explicit keys (every DH output, the KEM shared
 * secret, the HKDF inputs and output, the associated data), the initial
 * message bytes with and without a one-time prekey, and the PreKeyMessages
 * and bundles a device must refuse. Pins spec/03-handshake.md and the
 * PreKeyMessage of spec/05-wire-format.md §4.
 */
import {
  type CborValue,
  type KemPreKeyPublic,
  Label,
  MessageType,
  PROTOCOL_VERSION,
  type PreKeyBundle,
  SessionRecord,
  certificateToCbor,
  concatBytes,
  encodeBundle,
  encodeCbor,
  fromUtf8,
  pad,
  utf8,
} from '@parley/core';
import { type Cast, deviceJson, freshBobPrekeys, responderJson } from '../lib/cast.ts';
import { chainStep, dh, kdfRoot, pqxdh } from '../lib/derive.ts';
import { BAD_X25519_KEYS, appendField, editField, flipInField, getField, setField } from '../lib/mutate.ts';
import { type Json, type TestCase, type TestGroup, type VectorFile, finish, hex } from '../lib/vector-file.ts';

export interface FirstMessage {
  /** The PreKeyMessage bytes. */
  readonly message: Uint8Array;
  readonly bundle: PreKeyBundle;
  readonly case: TestCase;
  /** The same PreKeyMessage with its embedded message sealing `padded` instead (for padding refusals). */
  readonly withPadded: (padded: Uint8Array) => Uint8Array;
}

/** Runs one handshake through core and writes it out step by step. */
export function handshakeCase(cast: Cast, prefix: string, bundle: PreKeyBundle, plaintext: string, comment: string): FirstMessage {
  const { rng, backend: b } = cast;
  const record = rng.run(
    [
      [`${prefix}.ephemeralPrivateKey`, 32],
      [`${prefix}.kemEncapsulationRandomness`, 32],
      [`${prefix}.initiatorRatchetPrivateKey`, 32],
    ],
    () => SessionRecord.initiate(cast.aliceDevice1, bundle, { expectedAccountKey: cast.bob.publicKey }),
  );
  const message = record.encrypt(utf8(plaintext));

  const ephemeralPrivateKey = rng.drawn(`${prefix}.ephemeralPrivateKey`);
  const kemEncapsulationRandomness = rng.drawn(`${prefix}.kemEncapsulationRandomness`);
  const ratchetPrivateKey = rng.drawn(`${prefix}.initiatorRatchetPrivateKey`);
  const baseKey = b.x25519PublicKey(ephemeralPrivateKey);
  const v = pqxdh(b, {
    initiatorIdentityPrivateKey: rng.drawn('alice.device1.identityPrivateKey'),
    ephemeralPrivateKey,
    kemEncapsulationRandomness,
    initiatorCertificate: cast.aliceDevice1.certificate,
    responderCertificate: bundle.certificate,
    signedPreKey: bundle.signedPreKey.publicKey,
    oneTimePreKey: bundle.oneTimePreKey?.publicKey ?? null,
    kemPreKey: bundle.kemPreKey.publicKey,
  });

  // The initiator's first sending chain (spec/04-double-ratchet.md §3).
  const ratchetKey = b.x25519PublicKey(ratchetPrivateKey);
  const ratchetDh = dh(b, ratchetPrivateKey, bundle.signedPreKey.publicKey);
  const root = kdfRoot(b, v.sharedSecret, ratchetDh);
  const step = chainStep(b, root.chainKey);
  const headerBytes = encodeCbor([ratchetKey, 0, 0]);
  const padded = pad(utf8(plaintext));
  const aeadAssociatedData = concatBytes(v.associatedData, headerBytes);
  const ciphertext = b.aeadSeal(step.messageKey, step.nonce, padded, aeadAssociatedData);
  const ratchetMessage = encodeCbor([PROTOCOL_VERSION, MessageType.ratchet, headerBytes, ciphertext]);
  const preKeyMessage = encodeCbor([
    PROTOCOL_VERSION,
    MessageType.preKey,
    certificateToCbor(cast.aliceDevice1.certificate),
    baseKey,
    bundle.signedPreKey.id,
    bundle.oneTimePreKey?.id ?? null,
    bundle.kemPreKey.id,
    v.kemCiphertext,
    ratchetMessage,
  ]);
  if (hex(preKeyMessage) !== hex(message)) throw new Error(`${prefix}: core's PreKeyMessage differs from the step-by-step derivation`);

  // The responder accepts it: same secret, then its first DH ratchet step (draws its first ratchet key).
  const bobRecord = new SessionRecord(cast.provider);
  const received = rng.run([[`${prefix}.responderRatchetPrivateKey`, 32]], () =>
    bobRecord.decrypt(message, { device: cast.bobDevice1, prekeys: freshBobPrekeys(cast), expectedAccountKey: cast.alice.publicKey }),
  );
  if (fromUtf8(received.plaintext) !== plaintext) throw new Error(`${prefix}: responder read another plaintext`);
  const responderRatchetPrivateKey = rng.drawn(`${prefix}.responderRatchetPrivateKey`);
  const responderDh = dh(b, responderRatchetPrivateKey, ratchetKey);
  const responderChain = kdfRoot(b, root.rootKey, responderDh);

  const testCase: TestCase = {
    comment,
    bundle: hex(encodeBundle(bundle)),
    signedPreKeyId: bundle.signedPreKey.id,
    oneTimePreKeyId: bundle.oneTimePreKey?.id ?? null,
    kemPreKeyId: bundle.kemPreKey.id,
    ephemeralPrivateKey: hex(ephemeralPrivateKey),
    kemEncapsulationRandomness: hex(kemEncapsulationRandomness),
    initiatorRatchetPrivateKey: hex(ratchetPrivateKey),
    responderRatchetPrivateKey: hex(responderRatchetPrivateKey),
    baseKey: hex(baseKey),
    dh1: hex(v.dh1),
    dh2: hex(v.dh2),
    dh3: hex(v.dh3),
    dh4: v.dh4 ? hex(v.dh4) : null,
    kemCiphertext: hex(v.kemCiphertext),
    kemSharedSecret: hex(v.kemSharedSecret),
    hkdfIkm: hex(v.ikm),
    hkdfSalt: hex(v.salt),
    hkdfInfo: hex(v.info),
    sharedSecret: hex(v.sharedSecret),
    associatedDataInput: hex(v.associatedDataInput),
    associatedData: hex(v.associatedData),
    initiatorRatchetKey: hex(ratchetKey),
    ratchetDh: hex(ratchetDh),
    rootKey: hex(root.rootKey),
    chainKey: hex(root.chainKey),
    messageKey: hex(step.messageKey),
    nonce: hex(step.nonce),
    nextChainKey: hex(step.nextChainKey),
    plaintext: hex(utf8(plaintext)),
    paddedPlaintext: hex(padded),
    headerBytes: hex(headerBytes),
    aeadAssociatedData: hex(aeadAssociatedData),
    ciphertext: hex(ciphertext),
    ratchetMessage: hex(ratchetMessage),
    preKeyMessage: hex(preKeyMessage),
    responderRatchetKey: hex(b.x25519PublicKey(responderRatchetPrivateKey)),
    responderDh: hex(responderDh),
    responderRootKey: hex(responderChain.rootKey),
    responderSendingChainKey: hex(responderChain.chainKey),
    result: 'valid',
  };
  const withPadded = (other: Uint8Array) =>
    setField(
      message,
      [8],
      encodeCbor([PROTOCOL_VERSION, MessageType.ratchet, headerBytes, b.aeadSeal(step.messageKey, step.nonce, other, aeadAssociatedData)]),
    );
  return { message, bundle, case: testCase, withPadded };
}

function badKemPublicKey(k: KemPreKeyPublic): Uint8Array {
  // The first 12-bit coefficient becomes 4095 >= q = 3329: FIPS 203 §7.2's modulus check fails.
  const out = k.publicKey.slice();
  out[0] = 0xff;
  out[1] = (out[1] as number) | 0x0f;
  return out;
}

function preKeyMessageGroup(cast: Cast, withOneTime: FirstMessage, withoutOneTime: FirstMessage): TestGroup {
  const m = withOneTime.message;
  const m2 = withoutOneTime.message;
  const alice = hex(cast.alice.publicKey);
  const inner = getField(m, [8]) as Uint8Array;
  const editInner = (path: number[], fn: (f: CborValue) => CborValue) => setField(m, [8], editField(inner, path, fn));
  const headerBytes = getField(inner, [2]) as Uint8Array;
  const invalid = (comment: string, message: Uint8Array, error: string, extra: { [k: string]: Json } = {}): TestCase => ({
    comment,
    message: hex(message),
    acceptedBefore: [],
    expectedAccountKey: alice,
    ...extra,
    result: 'invalid',
    error,
  });
  // PreKeyMessage = [version, 1, initiatorCertificate, baseKey, signedPreKeyId, oneTimePreKeyId / null, kemPreKeyId, kemCiphertext, message].
  return {
    type: 'PreKeyMessage',
    spec: 'spec/03-handshake.md §4, spec/05-wire-format.md §4.2',
    description:
      "Each message is delivered to a new session record of the responder (bob's device 1 with all its prekeys unused, as listed in the group), after the messages in acceptedBefore were accepted, each into its own new record, by the same prekey store. The sender must be expectedAccountKey. Decrypting the message must fail with the error and change neither the record nor the prekey store. Where randomDraws is given, the responder must have drawn exactly that many 32-byte random values before refusing (04 §4.6).",
    responder: responderJson(cast),
    tests: [
      invalid(
        'AEAD tag with one bit flipped',
        editInner([3], (c) => flipInField(c, -1)),
        'DECRYPT_FAILED',
      ),
      invalid(
        'first ciphertext byte flipped',
        editInner([3], (c) => flipInField(c, 0)),
        'DECRYPT_FAILED',
      ),
      invalid(
        'kemCiphertext with one bit flipped (implicit rejection gives another shared secret)',
        editField(m, [7], (c) => flipInField(c, 100)),
        'DECRYPT_FAILED',
      ),
      invalid(
        'header with previousCounter changed (the header is authenticated)',
        editInner([2], () => encodeCbor([getField(headerBytes, [0]) as Uint8Array, 1, 0])),
        'DECRYPT_FAILED',
      ),
      invalid(
        "initiatorCertificate replaced by alice's device 2 certificate (valid, but not the key that computed DH1 and the associated data)",
        setField(m, [2], certificateToCbor(cast.aliceDevice2.certificate)),
        'DECRYPT_FAILED',
      ),
      invalid('oneTimePreKeyId names one-time prekey 2, which the initiator did not use', setField(m, [5], 2), 'DECRYPT_FAILED'),
      invalid('oneTimePreKeyId removed (null): DH4 is left out', setField(m, [5], null), 'DECRYPT_FAILED'),
      invalid('kemPreKeyId names the last-resort KEM prekey 1 instead of 2', setField(m, [6], 1), 'DECRYPT_FAILED'),
      invalid('unknown signedPreKeyId', setField(m, [4], 99), 'UNKNOWN_PREKEY'),
      invalid('unknown oneTimePreKeyId', setField(m, [5], 99), 'UNKNOWN_PREKEY'),
      invalid('unknown kemPreKeyId', setField(m, [6], 99), 'UNKNOWN_PREKEY'),
      invalid('replay after acceptance: the one-time prekey is gone', m, 'UNKNOWN_PREKEY', { acceptedBefore: [hex(m)] }),
      invalid('replay after acceptance without a one-time prekey: the base key was remembered', m2, 'PREKEY_REUSED', {
        acceptedBefore: [hex(m2)],
      }),
      invalid(
        'initiatorCertificate signature with one bit flipped',
        editField(m, [2], (c) => editCertSignature(c)),
        'BAD_CERTIFICATE',
      ),
      invalid("a valid message from alice while the responder expects carol's account", m, 'BAD_CERTIFICATE', {
        expectedAccountKey: hex(cast.carol.publicKey),
      }),
      ...BAD_X25519_KEYS.map(({ name, key }) => invalid(`baseKey is the ${name}`, setField(m, [3], key), 'BAD_PUBLIC_KEY')),
      invalid(
        'header ratchetKey is a small-order point',
        editInner([2], () => encodeCbor([BAD_X25519_KEYS[0]?.key as Uint8Array, 0, 0])),
        'BAD_PUBLIC_KEY',
      ),
      {
        ...invalid(
          "authentic initial message whose plaintext has no 0x80 marker: the responder's first DH ratchet step has drawn its new ratchet key before the padding is checked",
          withOneTime.withPadded(new Uint8Array(160)),
          'BAD_PADDING',
        ),
        randomDraws: 1,
      },
      invalid(
        'kemCiphertext 1087 bytes',
        editField(m, [7], (c) => (c as Uint8Array).slice(1)),
        'MALFORMED',
      ),
      invalid('baseKey as a text string', setField(m, [3], 'alice'), 'MALFORMED'),
      // A wrong-length X25519 key is a shape error (01 §2.3, 02 §2.3): MALFORMED, never BAD_PUBLIC_KEY.
      invalid(
        'baseKey 31 bytes (a wrong-length X25519 key is MALFORMED)',
        editField(m, [3], (k) => (k as Uint8Array).slice(1)),
        'MALFORMED',
      ),
      invalid(
        'baseKey 33 bytes (a wrong-length X25519 key is MALFORMED)',
        editField(m, [3], (k) => Uint8Array.of(...(k as Uint8Array), 0)),
        'MALFORMED',
      ),
      invalid(
        'header ratchetKey 31 bytes (a wrong-length X25519 key is MALFORMED)',
        editInner([2], () => encodeCbor([new Uint8Array(31).fill(9), 0, 0])),
        'MALFORMED',
      ),
      invalid('oneTimePreKeyId 0 (reserved)', setField(m, [5], 0), 'MALFORMED'),
      invalid('ten fields', appendField(m, [], null), 'MALFORMED'),
      invalid('embedded message is a PreKeyMessage', setField(m, [8], m), 'MALFORMED'),
      invalid('message type 5 (unknown)', setField(m, [1], 5), 'MALFORMED'),
      invalid(
        'message type 3 (a group message type, not accepted by a one-to-one session)',
        setField(m, [1], MessageType.group),
        'MALFORMED',
      ),
      invalid('version 3', setField(m, [0], 3), 'UNSUPPORTED_VERSION'),
      invalid('a v1 PreKeyMessage relabelled version 2 (9 fields; PreKeyMessageV2 has 10)', setField(m, [0], 2), 'MALFORMED'),
      invalid(
        'embedded RatchetMessage of version 2',
        editInner([0], () => 2),
        'UNSUPPORTED_VERSION',
      ),
      invalid(
        'header longer than 64 bytes',
        editInner([2], () => encodeCbor([new Uint8Array(32), 0, 0, new Uint8Array(32)])),
        'OVERSIZED',
      ),
      invalid('the embedded RatchetMessage alone: no session exists yet', inner, 'NO_SESSION'),
    ],
  };
}

function editCertSignature(c: CborValue): CborValue {
  const f = (c as CborValue[]).slice();
  f[5] = flipInField(f[5] as CborValue, 0);
  return f;
}

function initiateGroup(cast: Cast): TestGroup {
  const bundle = cast.bobPrekeys.bundle();
  const kem = bundle.kemPreKey;
  const publicKey = badKemPublicKey(kem);
  const signature = cast.bobDevice1.sign(encodeCbor([Label.kemPreKey, kem.id, publicKey, kem.lastResort]));
  const bad = encodeBundle({ ...bundle, kemPreKey: { ...kem, publicKey, signature } });
  return {
    type: 'InitiatorBundle',
    spec: 'spec/03-handshake.md §3',
    description:
      'The initiator (the group initiator device) accepts the bundle (keys.json PreKeyBundle rules, against expectedAccountKey) and encapsulates to its KEM prekey. Invalid: the handshake must fail with the error before any message exists.',
    initiator: deviceJson(cast, cast.aliceDevice1, 'alice.device1'),
    tests: [
      {
        comment: 'KEM prekey with a coefficient >= q (fails the ML-KEM encapsulation key check of FIPS 203 §7.2), validly signed',
        bundle: hex(bad),
        expectedAccountKey: hex(cast.bob.publicKey),
        result: 'invalid',
        error: 'BAD_PUBLIC_KEY',
      },
    ],
  };
}

export function handshakeFile(cast: Cast): string {
  const store = cast.bobPrekeys;
  const withOneTime = handshakeCase(cast, 'handshake1', store.bundle(), 'hello Bob', 'one-time prekey 1 and one-time KEM prekey 2');
  const withoutOneTime = handshakeCase(
    cast,
    'handshake2',
    store.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false }),
    'hello again',
    'no one-time prekey (no DH4); the last-resort KEM prekey 1',
  );
  const file: VectorFile = {
    description:
      'The PQXDH handshake and the first message: every DH output, the ML-KEM-768 encapsulation, the HKDF input and output, the associated data, the first chain step and the PreKeyMessage bytes; then PreKeyMessages and a bundle that must be refused.',
    spec: 'spec/03-handshake.md',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      roles: 'The initiator is alice device 1, the responder bob device 1 (the same keys as keys.json).',
      randomness:
        'ephemeralPrivateKey (EK_A), kemEncapsulationRandomness (the 32-byte m of ML-KEM.Encaps_internal), initiatorRatchetPrivateKey (drawn when the session is created) and responderRatchetPrivateKey (drawn by the responder when the first message is accepted) are the only random values.',
      derivation:
        'dh1 = X25519(IK_A, SPK_B), dh2 = X25519(EK_A, IK_B), dh3 = X25519(EK_A, SPK_B), dh4 = X25519(EK_A, OPK_B) or absent; hkdfIkm = 32 x 0xff || dh1 || dh2 || dh3 [|| dh4] || kemSharedSecret; sharedSecret = HKDF-SHA256(hkdfIkm, hkdfSalt, hkdfInfo, 32); associatedData = SHA-256(associatedDataInput).',
      firstMessage:
        '(rootKey, chainKey) = KDF_RK(sharedSecret, X25519(initiatorRatchetPrivateKey, SPK_B)); the message key and nonce come from chainKey (ratchet.json KDF_CK); the AEAD associated data is associatedData || headerBytes.',
    },
    testGroups: [
      {
        type: 'PQXDH',
        spec: 'spec/03-handshake.md §2-§4',
        description:
          'The initiator builds the PreKeyMessage from the bundle and its random values; the responder (the group responder, every prekey unused) accepts it, reads plaintext, and takes its first DH ratchet step: (responderRootKey, responderSendingChainKey) = KDF_RK(rootKey, X25519(responderRatchetPrivateKey, initiatorRatchetKey)).',
        initiator: deviceJson(cast, cast.aliceDevice1, 'alice.device1'),
        responder: responderJson(cast),
        tests: [withOneTime.case, withoutOneTime.case],
      },
      preKeyMessageGroup(cast, withOneTime, withoutOneTime),
      initiateGroup(cast),
    ],
  };
  return finish(file);
}
