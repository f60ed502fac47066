/** franking.json against spec/design/formats-v2.md §6.1: HMAC-SHA256 over the labelled CBOR, recomputed here. */
import { Mismatch, same } from '../lib/check.mjs';
import { encode } from '../lib/cbor.mjs';
import { equal, fromHex as h } from '../lib/hex.mjs';
import { hmac } from '../lib/primitives.mjs';

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

export function checkFranking(f) {
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
