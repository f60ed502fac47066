/**
 * Builds test-vectors/franking.json, the franking-tag part (formats-v2 §6.1,
 * §14): tags computed by src/franking/tag.ts, and tags that a receiver must
 * refuse (FRANKING_TAG_MISMATCH) because they commit to another sender,
 * device, plaintext or key. The franking test checks the checked-in file
 * equals this output; rewrite it on purpose with
 * `node --conditions=parley:source --import tsx packages/core/test/support/franking-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { fromHex as fromHexBytes, toHex, utf8 } from '../../src/bytes.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { FRANK_KEY_PERIOD_MS, FRANK_KEY_RETENTION_MS, type RelayFrankInput, frankKeyId, relayFrank } from '../../src/franking/frank.ts';
import { frankingTag } from '../../src/franking/tag.ts';
import {
  MODERATOR_TOKEN_LIFETIME_MS,
  attestFrankingTag,
  checkModeratorToken,
  decodeModeratorToken,
  encodeModeratorToken,
  issueModeratorToken,
  tokenRef,
} from '../../src/franking/token.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const FRANKING_FILE = new URL('../../../../test-vectors/franking.json', import.meta.url);

export function buildFranking(): string {
  const r = deterministicRandom('parley franking tag');
  const account = r(32);
  const otherAccount = r(32);
  const inputs = [
    { comment: 'short text', key: r(32), deviceId: 1, plaintext: utf8('hi') },
    { comment: 'empty plaintext', key: r(32), deviceId: 7, plaintext: new Uint8Array(0) },
    { comment: 'device id above 23 (two-byte CBOR uint)', key: r(32), deviceId: 300, plaintext: utf8('see you at five') },
    { comment: 'plaintext of 1000 bytes', key: r(32), deviceId: 2, plaintext: r(1000) },
  ];
  let tcId = 1;
  const valid = inputs.map((t) => ({
    tcId: tcId++,
    comment: t.comment,
    frankingKey: toHex(t.key),
    senderAccount: toHex(account),
    senderDeviceId: t.deviceId,
    plaintext: toHex(t.plaintext),
    tag: toHex(frankingTag(nobleBackend, t.key, { accountKey: account, deviceId: t.deviceId }, t.plaintext)),
    result: 'valid',
  }));
  const base = valid[0] as (typeof valid)[number];
  const invalid = [
    { comment: 'the tag of another sender account', senderAccount: toHex(otherAccount) },
    { comment: 'the tag of another device of the same account', senderDeviceId: 2 },
    { comment: 'the tag of another plaintext (one byte changed)', plaintext: toHex(utf8('ho')) },
    { comment: 'the tag under another franking key', frankingKey: toHex(r(32)) },
    { comment: 'a truncated tag (16 bytes)', tag: base.tag.slice(0, 32) },
  ].map((change) => ({
    ...base,
    tcId: tcId++,
    ...change,
    tag: change.tag ?? base.tag,
    result: 'invalid',
    error: 'FRANKING_TAG_MISMATCH',
  }));
  // Relay franks (§6.2): one identified and one sealed envelope, then each field changed.
  const fr = deterministicRandom('parley relay frank');
  const acceptedAt = Date.UTC(2026, 11, 6, 5, 30, 0, 123);
  const frankKey = fr(32);
  const frankInputs: { comment: string; f: RelayFrankInput }[] = [
    {
      comment: 'identified send: the sender is named',
      f: {
        keyId: frankKeyId(acceptedAt),
        frankingTag: fr(32),
        recipient: { accountKey: fr(32), deviceId: 2 },
        acceptedAt,
        envelopeId: fr(16),
        sender: { accountKey: fr(32), deviceId: 1 },
      },
    },
    {
      comment: 'sealed send: sender null',
      f: {
        keyId: frankKeyId(acceptedAt + 1000),
        frankingTag: fr(32),
        recipient: { accountKey: fr(32), deviceId: 300 },
        acceptedAt: acceptedAt + 1000,
        envelopeId: fr(16),
        sender: null,
      },
    },
  ];
  const frankJson = (f: RelayFrankInput) => ({
    keyId: f.keyId,
    frankingTag: toHex(f.frankingTag),
    recipientAccount: toHex(f.recipient.accountKey),
    recipientDevice: f.recipient.deviceId,
    acceptedAt: f.acceptedAt,
    envelopeId: toHex(f.envelopeId),
    sender: f.sender === null ? null : { accountKey: toHex(f.sender.accountKey), deviceId: f.sender.deviceId },
  });
  const franks = frankInputs.map(({ comment, f }) => ({
    tcId: tcId++,
    comment,
    frankKey: toHex(frankKey),
    ...frankJson(f),
    frank: toHex(relayFrank(nobleBackend, frankKey, f)),
    result: 'valid',
  }));
  const first = franks[0] as (typeof franks)[number];
  const frankInvalid = [
    { comment: 'another recipient account', recipientAccount: toHex(fr(32)) },
    { comment: 'another recipient device', recipientDevice: 3 },
    { comment: 'accepted one millisecond later (same key period)', acceptedAt: first.acceptedAt + 1 },
    { comment: 'another envelope id (a replayed frank)', envelopeId: toHex(fr(16)) },
    { comment: 'another franking tag', frankingTag: toHex(fr(32)) },
    { comment: 'the sender removed (as if sealed)', sender: null },
    { comment: 'the key id of the next period, acceptance time unchanged', keyId: first.keyId + 1 },
    { comment: 'under another frank key', frankKey: toHex(fr(32)) },
  ].map((change) => ({ ...first, tcId: tcId++, ...change, result: 'invalid', error: 'FRANK_INVALID' }));
  const periodEnd = (frankKeyId(acceptedAt) + 1) * FRANK_KEY_PERIOD_MS;
  const expiry = [
    { comment: 'the last millisecond before destruction', now: periodEnd + FRANK_KEY_RETENTION_MS - 1, expired: false },
    { comment: 'the key is destroyed 90 days after its period ends', now: periodEnd + FRANK_KEY_RETENTION_MS, expired: true },
    { comment: 'during its own period', now: acceptedAt, expired: false },
  ].map((t) => ({ tcId: tcId++, keyId: frankKeyId(acceptedAt), ...t, result: 'valid' }));

  // Moderator tokens and attestations (§6.3).
  const tr = deterministicRandom('parley moderator token');
  const moderatorSeed = tr(32);
  const tokenKey = tr(32);
  const ephemeralSeed = tr(32);
  const holder = { accountKey: tr(32), deviceId: 4 };
  const issuedAt = acceptedAt - 3_600_000;
  const token = issueModeratorToken(nobleBackend, {
    moderatorSeed,
    tokenKey,
    keyId: frankKeyId(issuedAt),
    expiresAt: issuedAt + MODERATOR_TOKEN_LIFETIME_MS,
    ephemeralKey: nobleBackend.ed25519PublicKey(ephemeralSeed),
    holder,
  });
  const messageTag = tr(32);
  const attestation = attestFrankingTag(nobleBackend, ephemeralSeed, messageTag);
  const moderatorKey = nobleBackend.ed25519PublicKey(moderatorSeed);
  const tokenCase = (over: { token?: Uint8Array; acceptedAt?: number; frankingTag?: Uint8Array; moderatorKey?: Uint8Array }) => ({
    moderatorKey: toHex(over.moderatorKey ?? moderatorKey),
    token: toHex(over.token ?? encodeModeratorToken(token)),
    acceptedAt: over.acceptedAt ?? acceptedAt,
    frankingTag: toHex(over.frankingTag ?? messageTag),
    attestation: toHex(attestation),
  });
  const tokens = [
    {
      tcId: tcId++,
      comment: 'issued for a holder, attesting one message, accepted an hour after issue',
      moderatorSeed: toHex(moderatorSeed),
      tokenKey: toHex(tokenKey),
      ephemeralSeed: toHex(ephemeralSeed),
      holder: { accountKey: toHex(holder.accountKey), deviceId: holder.deviceId },
      keyId: token.keyId,
      expiresAt: issuedAt + MODERATOR_TOKEN_LIFETIME_MS,
      ...tokenCase({}),
      tokenRef: toHex(tokenRef(nobleBackend, token)),
      result: 'valid',
    },
  ];
  const badSignature = encodeModeratorToken({ ...token, signature: token.signature.map((x, i) => (i === 0 ? x ^ 1 : x)) });
  const tokenInvalid = [
    { comment: 'the token signed by another moderator key', ...tokenCase({ moderatorKey: nobleBackend.ed25519PublicKey(tr(32)) }) },
    { comment: 'a flipped bit in the signature', ...tokenCase({ token: badSignature }) },
    { comment: 'the envelope accepted after the token expired', ...tokenCase({ acceptedAt: issuedAt + MODERATOR_TOKEN_LIFETIME_MS + 1 }) },
    { comment: 'the attestation is over another franking tag', ...tokenCase({ frankingTag: tr(32) }) },
  ].map((t) => {
    const check = checkModeratorToken(
      nobleBackend,
      fromHexBytes(t.moderatorKey),
      decodeModeratorToken(fromHexBytes(t.token)),
      t.acceptedAt,
      fromHexBytes(t.frankingTag),
      fromHexBytes(t.attestation),
    );
    return { tcId: tcId++, ...t, result: 'invalid', check, error: 'ATTESTATION_INVALID' };
  });

  const file = {
    description:
      'Franking (v2): franking tags (HMAC-SHA256 under the per-message franking key over the labelled sender and plaintext) and relay franks.',
    spec: 'spec/design/formats-v2.md §6.1, §6.2',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      tag: 'tag = HMAC-SHA256(frankingKey, CBOR(["Parley v2 franking tag", senderAccount, senderDeviceId, plaintext])).',
      frank:
        'frank = HMAC-SHA256(frankKey, CBOR(["Parley v2 relay frank", keyId, frankingTag, recipientAccount, recipientDevice, acceptedAt as 8 bytes big-endian ms, envelopeId, sender as [accountKey, deviceId] or null])); keyId = floor(acceptedAt / 86400000); a key is destroyed 90 days after its period ends.',
      token:
        'ModeratorToken = [keyId, expiresAt (8 bytes, ms BE), ephemeralKey, sealedSender, signature]; sealedSender = ChaCha20-Poly1305(tokenKey, SHA-256(ephemeralKey)[0..12], accountKey || uint32be(deviceId), aad = uint32be(keyId) || expiresAt || ephemeralKey); signature = Ed25519(moderator, CBOR(["Parley v2 moderator token", keyId, expiresAt, ephemeralKey, sealedSender])); attestation = Ed25519(ephemeral, CBOR(["Parley v2 franking signature", frankingTag])); tokenRef = SHA-256(CBOR(token))[0..8]. The receiver checks the signature, expiresAt >= acceptedAt, then the attestation.',
      invalid:
        'Each invalid case gives the inputs a receiver holds and the tag it was handed (the tag of the first valid case): recomputing gives another value, so the message is refused with FRANKING_TAG_MISMATCH.',
    },
    testGroups: [
      { type: 'FrankingTag', description: 'inputs -> tag', tests: valid },
      { type: 'FrankingTagMismatch', description: 'the recomputed tag differs from the given one', tests: invalid },
      { type: 'RelayFrank', description: 'frank key and delivery fields -> frank', tests: franks },
      { type: 'RelayFrankInvalid', description: 'one field differs from what was franked: FRANK_INVALID', tests: frankInvalid },
      { type: 'FrankKeyExpiry', description: 'whether the key of period keyId is destroyed at time now (ms)', tests: expiry },
      { type: 'ModeratorToken', description: 'issue a token, attest a tag; the receiver check passes', tests: tokens },
      {
        type: 'ModeratorTokenInvalid',
        description: 'the receiver refuses the message (ATTESTATION_INVALID); check names the failing step',
        tests: tokenInvalid,
      },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(FRANKING_FILE, buildFranking());
