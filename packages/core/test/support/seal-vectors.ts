/**
 * Builds test-vectors/seal.json (spec/12-sealed-sender.md §3-§4): delivery
 * token hashes, mode-1 seals with every intermediate value, and refused
 * opens with their codes. The seal test checks the checked-in file equals
 * this output byte for byte; rewrite it on purpose with
 * `NODE_OPTIONS=--conditions=parley:source node --import tsx packages/core/test/support/seal-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { concatBytes, fromHex, toHex, utf8 } from '../../src/bytes.ts';
import { encodeCbor } from '../../src/codec/cbor.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { cryptoProvider } from '../../src/crypto/provider.ts';
import { ParleyError } from '../../src/errors.ts';
import { deliveryTokenHash } from '../../src/seal/token.ts';
import { decodeSeal, encodeSeal } from '../../src/seal/format.ts';
import { openContactSeal, sealAad, sealInfo, sealToContact } from '../../src/seal/seal.ts';
import {
  decodeSealedGroupEnvelope,
  encodeGroupKeyWrap,
  encodeSealedGroupEnvelope,
  openGroupPayload,
  sealGroupPayload,
} from '../../src/seal/group.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const SEAL_FILE = new URL('../../../../test-vectors/seal.json', import.meta.url);

interface SealCase {
  comment: string;
  skR: Uint8Array;
  recipientCertificateHash: Uint8Array;
  skS: Uint8Array;
  senderDeviceId: number;
  ikmE: Uint8Array;
  tokenHash: Uint8Array;
  frankingTag: Uint8Array | null;
  message: Uint8Array;
}

const backend = nobleBackend;
const pub = (sk: Uint8Array) => backend.x25519PublicKey(sk);

function makeSeal(c: SealCase): Uint8Array {
  // The provider's first draw is ikmE (RFC 9180 DeriveKeyPair input).
  const provider = cryptoProvider(backend, (n) => {
    if (n !== 32) throw new Error('unexpected draw');
    return c.ikmE.slice();
  });
  return sealToContact(
    {
      recipientIdentityKey: pub(c.skR),
      recipientCertificateHash: c.recipientCertificateHash,
      senderIdentityPrivateKey: c.skS,
      senderDeviceId: c.senderDeviceId,
      tokenHash: c.tokenHash,
      frankingTag: c.frankingTag,
      message: c.message,
    },
    provider,
  );
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ParleyError) return e.code;
    throw e;
  }
  throw new Error('an invalid vector was accepted');
}

export function buildSeal(): string {
  const r = deterministicRandom('parley seal vectors');
  const provider = cryptoProvider(backend, r);
  const accounts = [r(32), r(32)];
  const tokens = [r(32), r(32)];
  let tcId = 1;
  const tokenTests = [
    { account: accounts[0], token: tokens[0], comment: 'a token for account A' },
    { account: accounts[1], token: tokens[0], comment: 'the same token for account B: another hash' },
    { account: accounts[0], token: tokens[1], comment: 'another token for account A' },
  ].map((t) => ({
    tcId: tcId++,
    comment: t.comment,
    recipientAccount: toHex(t.account as Uint8Array),
    token: toHex(t.token as Uint8Array),
    tokenHash: toHex(deliveryTokenHash(t.account as Uint8Array, t.token as Uint8Array, provider)),
    result: 'valid',
  }));

  const base: SealCase = {
    comment: 'a short v1 RatchetMessage-sized body, no franking tag (v1 inner message)',
    skR: r(32),
    recipientCertificateHash: r(32),
    skS: r(32),
    senderDeviceId: 3,
    ikmE: r(32),
    tokenHash: deliveryTokenHash(accounts[0] as Uint8Array, tokens[0] as Uint8Array, provider),
    frankingTag: null,
    message: r(120),
  };
  const cases: SealCase[] = [
    base,
    { ...base, comment: 'with a franking tag (v2 inner message)', ikmE: r(32), frankingTag: r(32), senderDeviceId: 1, message: r(404) },
    { ...base, comment: 'a large device id (3-byte head) and a 1-byte message', ikmE: r(32), senderDeviceId: 70_000, message: utf8('x') },
  ];
  const sealTests = cases.map((c) => {
    const seal = makeSeal(c);
    const s = decodeSeal(seal);
    return {
      tcId: tcId++,
      comment: c.comment,
      skR: toHex(c.skR),
      pkR: toHex(pub(c.skR)),
      recipientCertificateHash: toHex(c.recipientCertificateHash),
      skS: toHex(c.skS),
      pkS: toHex(pub(c.skS)),
      senderDeviceId: c.senderDeviceId,
      ikmE: toHex(c.ikmE),
      tokenHash: toHex(c.tokenHash),
      frankingTag: c.frankingTag === null ? null : toHex(c.frankingTag),
      message: toHex(c.message),
      info: toHex(sealInfo(c.recipientCertificateHash)),
      aad: toHex(sealAad(c.tokenHash, c.frankingTag)),
      sealedInner: toHex(encodeCbor([c.senderDeviceId, c.message])),
      enc: toHex(s.enc),
      check: toHex(s.check as Uint8Array),
      ciphertext: toHex(s.ciphertext),
      seal: toHex(seal),
      overhead: seal.length - c.message.length,
      result: 'valid',
    };
  });

  // Refused opens: each changes one input of the first seal.
  const seal0 = makeSeal(base);
  const s0 = decodeSeal(seal0);
  const other = r(32);
  const candidates = [{ deviceId: base.senderDeviceId, identityKey: pub(base.skS) }];
  const flip = (b: Uint8Array, i: number) => {
    const x = b.slice();
    x[i] = (x[i] ?? 0) ^ 0x01;
    return x;
  };
  const invalid: {
    comment: string;
    seal: Uint8Array;
    tokenHash?: Uint8Array;
    frankingTag?: Uint8Array | null;
    candidates?: typeof candidates;
  }[] = [
    { comment: 'the token hash in the aad differs (a seal moved to another token)', seal: seal0, tokenHash: r(32) },
    { comment: 'a franking tag where the seal was made without one', seal: seal0, frankingTag: r(32) },
    {
      comment: 'the only candidate is another device key (wrong pkS)',
      seal: seal0,
      candidates: [{ deviceId: base.senderDeviceId, identityKey: pub(other) }],
    },
    {
      comment: 'the candidate key is right but its device id is not the one inside',
      seal: seal0,
      candidates: [{ deviceId: 4, identityKey: pub(base.skS) }],
    },
    { comment: 'check value flipped', seal: encodeSeal({ ...s0, check: flip(s0.check as Uint8Array, 0) }) },
    { comment: 'ciphertext byte flipped', seal: encodeSeal({ ...s0, ciphertext: flip(s0.ciphertext, 5) }) },
    { comment: 'tag byte flipped', seal: encodeSeal({ ...s0, ciphertext: flip(s0.ciphertext, s0.ciphertext.length - 1) }) },
    { comment: 'enc changed to another valid key', seal: encodeSeal({ ...s0, enc: pub(other) }) },
    { comment: 'enc of small order (the all-zero point)', seal: encodeSeal({ ...s0, enc: new Uint8Array(32) }) },
    { comment: 'mode 2 with no check: not a contact-token seal', seal: encodeCbor([2, 5, 2, s0.enc, null, s0.ciphertext]) },
    { comment: 'version 3', seal: encodeCbor([3, 5, 1, s0.enc, s0.check, s0.ciphertext]) },
    { comment: 'type 2 (a RatchetMessage tag) in a seal', seal: encodeCbor([2, 2, 1, s0.enc, s0.check, s0.ciphertext]) },
    { comment: 'check of 7 bytes', seal: encodeCbor([2, 5, 1, s0.enc, (s0.check as Uint8Array).slice(0, 7), s0.ciphertext]) },
    { comment: 'ciphertext shorter than a tag', seal: encodeCbor([2, 5, 1, s0.enc, s0.check, s0.ciphertext.slice(0, 15)]) },
    { comment: 'trailing byte after the seal', seal: concatBytes(seal0, Uint8Array.of(0)) },
  ];
  const openTests = invalid.map((x) => {
    const tokenHash = x.tokenHash ?? base.tokenHash;
    const frankingTag = x.frankingTag === undefined ? base.frankingTag : x.frankingTag;
    const cands = x.candidates ?? candidates;
    const error = codeOf(() =>
      openContactSeal(
        {
          seal: x.seal,
          recipientIdentityPrivateKey: base.skR,
          recipientCertificateHash: base.recipientCertificateHash,
          tokenHash,
          frankingTag,
          candidates: cands,
        },
        provider,
      ),
    );
    return {
      tcId: tcId++,
      comment: x.comment,
      skR: toHex(base.skR),
      recipientCertificateHash: toHex(base.recipientCertificateHash),
      tokenHash: toHex(tokenHash),
      frankingTag: frankingTag === null ? null : toHex(frankingTag),
      candidates: cands.map((c) => ({ deviceId: c.deviceId, identityKey: toHex(c.identityKey) })),
      seal: toHex(x.seal),
      error,
      result: 'invalid',
    };
  });

  // Group payload and key wrap (§10): the only random draw is K.
  const groupTests: object[] = [];
  for (const [comment, message] of [
    ['a 357-byte group message (a short text in v2)', r(357)],
    ['a 1-byte group message', Uint8Array.of(0x42)],
  ] as const) {
    const key = r(32);
    const { payload, wrap } = sealGroupPayload(
      message,
      cryptoProvider(backend, () => key.slice()),
    );
    groupTests.push({
      tcId: tcId++,
      comment,
      key: toHex(key),
      message: toHex(message),
      payload: toHex(payload),
      payloadDigest: toHex(backend.sha256(payload)),
      wrap: toHex(wrap),
      result: 'valid',
    });
  }
  const gKey = r(32);
  const gMessage = r(100);
  const g = sealGroupPayload(
    gMessage,
    cryptoProvider(backend, () => gKey.slice()),
  );
  const flipped = g.payload.slice();
  flipped[0] = (flipped[0] ?? 0) ^ 1;
  const wrongKeyWrap = encodeGroupKeyWrap({ key: r(32), payloadDigest: backend.sha256(g.payload) });
  const groupInvalid = [
    { comment: 'a payload byte flipped (not the payload the wrap names)', wrap: g.wrap, payload: flipped },
    { comment: 'the right digest with another key', wrap: wrongKeyWrap, payload: g.payload },
    { comment: 'a payload shorter than a tag', wrap: g.wrap, payload: g.payload.slice(0, 15) },
    { comment: 'a wrap of type 5', wrap: encodeCbor([2, 5, gKey, backend.sha256(g.payload)]), payload: g.payload },
    { comment: 'a wrap of version 3', wrap: encodeCbor([3, 6, gKey, backend.sha256(g.payload)]), payload: g.payload },
  ].map((x) => ({
    tcId: tcId++,
    comment: x.comment,
    wrap: toHex(x.wrap),
    payload: toHex(x.payload),
    error: codeOf(() => openGroupPayload(x.wrap, x.payload, provider)),
    result: 'invalid',
  }));

  // What a device receives from a sealed group send: [2, 7, seal, payload] (spec 12 §10).
  const framedSeal = fromHex(sealTests[0]?.seal as string);
  const framedTests = [{ comment: 'a seal and a group payload', seal: framedSeal, payload: g.payload }].map((x) => ({
    tcId: tcId++,
    comment: x.comment,
    seal: toHex(x.seal),
    payload: toHex(x.payload),
    envelope: toHex(encodeSealedGroupEnvelope({ seal: x.seal, payload: x.payload })),
    result: 'valid',
  }));
  const framedInvalid = [
    { comment: 'type 6 (a GroupKeyWrap) in the type field', envelope: encodeCbor([2, 6, framedSeal, g.payload]) },
    { comment: 'version 3', envelope: encodeCbor([3, 7, framedSeal, g.payload]) },
    { comment: 'a payload shorter than a tag', envelope: encodeCbor([2, 7, framedSeal, g.payload.slice(0, 15)]) },
    { comment: 'an empty seal', envelope: encodeCbor([2, 7, new Uint8Array(0), g.payload]) },
    { comment: 'five fields', envelope: encodeCbor([2, 7, framedSeal, g.payload, null]) },
  ].map((x) => ({
    tcId: tcId++,
    comment: x.comment,
    envelope: toHex(x.envelope),
    error: codeOf(() => decodeSealedGroupEnvelope(x.envelope)),
    result: 'invalid',
  }));

  const file = {
    description:
      'Sealed sender: delivery token hashes and the mode-1 seal (HPKE auth mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, single-shot, 8-byte exporter check value).',
    spec: 'spec/12-sealed-sender.md §3-§4',
    version: 1,
    numberOfTests:
      tokenTests.length +
      sealTests.length +
      openTests.length +
      groupTests.length +
      groupInvalid.length +
      framedTests.length +
      framedInvalid.length,
    notes: {
      ephemeral: "The sender's only random draw is ikmE (32 bytes); enc is DeriveKeyPair(ikmE).pk (RFC 9180 §7.1.3).",
      keys: 'skR and skS are X25519 identity private keys of the recipient and sender devices; recipientCertificateHash stands for SHA-256 of the recipient device certificate.',
      candidates: "For refused opens, candidates are the contact's devices the recipient tries, in order.",
      group:
        'GroupPayload: payload = ChaCha20-Poly1305(key, 0^12, message, aad = "Parley v2 group payload"), wrap = CBOR([2, 6, key, SHA-256(payload)]) (spec 12 §10). SealedGroupEnvelope: what a device receives from a sealed group send, CBOR([2, 7, seal, payload]) (spec 12 §5.2).',
    },
    testGroups: [
      { type: 'DeliveryTokenHash', tests: tokenTests },
      { type: 'SealValid', tests: sealTests },
      { type: 'SealOpenInvalid', tests: openTests },
      { type: 'GroupPayload', tests: groupTests },
      { type: 'GroupPayloadInvalid', tests: groupInvalid },
      { type: 'SealedGroupEnvelope', tests: framedTests },
      { type: 'SealedGroupEnvelopeInvalid', tests: framedInvalid },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(SEAL_FILE, buildSeal());
  console.log(`wrote ${fileURLToPath(SEAL_FILE)}`);
}
