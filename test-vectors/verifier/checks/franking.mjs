/** franking.json against spec/design/formats-v2.md §6.1: HMAC-SHA256 over the labelled CBOR, recomputed here. */
import { Mismatch, same } from '../lib/check.mjs';
import { encode } from '../lib/cbor.mjs';
import { concat, equal, fromHex as h } from '../lib/hex.mjs';
import { decode } from '../lib/cbor.mjs';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, hmac, open, seal, sha256 } from '../lib/primitives.mjs';

const LABEL = 'Parley v2 franking tag';

const tagOf = (t) => hmac(h(t.frankingKey), encode([LABEL, h(t.senderAccount), t.senderDeviceId, h(t.plaintext)]));

const PERIOD = 86_400_000;
const RETENTION = 90 * PERIOD;

function frankOf(t) {
  const at = new Uint8Array(8);
  new DataView(at.buffer).setBigUint64(0, BigInt(t.acceptedAt));
  const sender = t.sender === null ? null : [h(t.sender.accountKey), t.sender.deviceId];
  const input = encode([
    'Parley v2 relay frank',
    t.keyId,
    h(t.frankingTag),
    h(t.recipientAccount),
    t.recipientDevice,
    at,
    h(t.envelopeId),
    sender,
  ]);
  return hmac(h(t.frankKey), input);
}

/** The verifier's check of a reported frank: the key period of the acceptance time, then the MAC. */
const frankValid = (t) => t.keyId === Math.floor(t.acceptedAt / PERIOD) && equal(frankOf(t), h(t.frank));

const be32 = (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const be64 = (n) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};

/** The receiver's token check (§6.3): signature, expiry against acceptance, attestation. */
function tokenCheck(t) {
  const [keyId, expiresAt, eph, sealed, sig] = decode(h(t.token), 'ModeratorToken', 200);
  if (!ed25519Verify(h(t.moderatorKey), encode(['Parley v2 moderator token', keyId, expiresAt, eph, sealed]), sig)) return 'TOKEN_INVALID';
  if (Number(new DataView(expiresAt.buffer, expiresAt.byteOffset, 8).getBigUint64(0)) < t.acceptedAt) return 'TOKEN_EXPIRED';
  if (!ed25519Verify(eph, encode(['Parley v2 franking signature', h(t.frankingTag)]), h(t.attestation))) return 'ATTESTATION_INVALID';
  return 'ok';
}

export function checkFranking(f) {
  for (const g of f.groups('ModeratorToken')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const eph = ed25519PublicKey(h(t.ephemeralSeed));
        const exp = be64(t.expiresAt);
        const aad = concat(be32(t.keyId), exp, eph);
        const who = concat(h(t.holder.accountKey), be32(t.holder.deviceId));
        const sealed = seal(h(t.tokenKey), sha256(eph).slice(0, 12), who, aad);
        const sig = ed25519Sign(h(t.moderatorSeed), encode(['Parley v2 moderator token', t.keyId, exp, eph, sealed]));
        const token = encode([t.keyId, exp, eph, sealed, sig]);
        same('token', token, t.token);
        same('tokenRef', sha256(token).slice(0, 8), t.tokenRef);
        same('attestation', ed25519Sign(h(t.ephemeralSeed), encode(['Parley v2 franking signature', h(t.frankingTag)])), t.attestation);
        same('check', tokenCheck(t), 'ok');
        same('holder', open(h(t.tokenKey), sha256(eph).slice(0, 12), sealed, aad), who);
      });
    }
  }
  for (const g of f.groups('ModeratorTokenInvalid')) {
    for (const t of g.tests) f.run(t, () => same('check', tokenCheck(t), t.check));
  }
  for (const g of f.groups('RelayFrank')) {
    for (const t of g.tests) {
      f.run(t, () => {
        same('frank', frankOf(t), t.frank);
        same('key period', Math.floor(t.acceptedAt / PERIOD), t.keyId);
      });
    }
  }
  for (const g of f.groups('RelayFrankInvalid')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (frankValid(t)) throw new Mismatch('the frank verifies: the vector expects FRANK_INVALID');
        same('error', t.error, 'FRANK_INVALID');
      });
    }
  }
  for (const g of f.groups('FrankKeyExpiry')) {
    for (const t of g.tests) f.run(t, () => same('expired', t.now >= (t.keyId + 1) * PERIOD + RETENTION, t.expired));
  }
  for (const g of f.groups('FrankingTag')) {
    for (const t of g.tests) f.run(t, () => same('tag', tagOf(t), t.tag));
  }
  for (const g of f.groups('FrankingTagMismatch')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (equal(tagOf(t), h(t.tag))) throw new Mismatch('the recomputed tag equals the given one: the vector expects a mismatch');
        same('error', t.error, 'FRANKING_TAG_MISMATCH');
      });
    }
  }
}
