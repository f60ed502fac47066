/**
 * groups-v2.json against spec/design/formats-v2.md §8.1: signature, chain
 * step, AEAD, padding, GroupBodyV2 and the franking tag, recomputed with
 * the verifier's own primitives.
 */
import { refuses, same } from '../lib/check.mjs';
import { decode, encode, readArray, readBytes, readUint } from '../lib/cbor.mjs';
import { fail } from '../lib/errors.mjs';
import { equal, fromHex as h } from '../lib/hex.mjs';
import { groupStep } from '../lib/groups.mjs';
import { ed25519Verify, hmac, open } from '../lib/primitives.mjs';
import { unpad } from '../lib/ratchet.mjs';

/** Returns { plaintext, frankingKey, frankingTag } or throws the refusal's code. */
function openV2(chainKey, signingKey, bytes, deliveredTag) {
  const m = readArray(decode(bytes, 'GroupMessageV2', 1 << 21), 'GroupMessageV2', 5);
  if (m[0] !== 2 || m[1] !== 3) fail('MALFORMED', 'not a v2 group message');
  const headerBytes = readBytes(m[2], 'header', { max: 160 });
  const ciphertext = readBytes(m[3], 'ciphertext', { min: 16, max: 1 << 21 });
  const f = readArray(decode(headerBytes, 'GroupHeaderV2', 160), 'GroupHeaderV2', 6);
  const sender = readArray(f[2], 'sender', 2);
  const iteration = readUint(f[4], 'iteration');
  const tag = readBytes(f[5], 'frankingTag', 32);
  if (!ed25519Verify(signingKey, encode(['Parley v2 group message', headerBytes, ciphertext]), readBytes(m[4], 'signature', 64))) {
    fail('BAD_SIGNATURE', 'signature');
  }
  let step = groupStep(chainKey);
  for (let i = 0; i < iteration; i++) step = groupStep(step.nextChainKey);
  const padded = open(step.messageKey, step.nonce, ciphertext, headerBytes);
  if (!padded) fail('DECRYPT_FAILED', 'aead');
  const body = readArray(decode(unpad(padded), 'GroupBodyV2', 1 << 21), 'GroupBodyV2', 3);
  const frankingKey = readBytes(body[0], 'frankingKey', 32);
  const plaintext = readBytes(body[1], 'plaintext', { max: 1 << 20 });
  if (body[2] !== null) readBytes(body[2], 'attestation', 64);
  const recomputed = hmac(frankingKey, encode(['Parley v2 franking tag', sender[0], sender[1], plaintext]));
  if (!equal(recomputed, tag) || (deliveredTag !== null && !equal(deliveredTag, tag))) fail('FRANKING_TAG_MISMATCH', 'tag');
  return { plaintext, frankingKey, frankingTag: tag };
}

export function checkGroupsV2(f) {
  for (const g of f.groups('GroupMessageV2')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const r = openV2(h(t.chainKey), h(t.signingPublicKey), h(t.message), h(t.deliveredTag));
        same('plaintext', r.plaintext, t.plaintext);
        same('frankingKey', r.frankingKey, t.frankingKey);
        same('frankingTag', r.frankingTag, t.frankingTag);
      });
    }
  }
  for (const type of ['GroupMessageV2Invalid', 'TwoKeyCollision']) {
    for (const g of f.groups(type)) {
      for (const t of g.tests) {
        const delivered = t.deliveredTag === null ? null : h(t.deliveredTag);
        f.run(t, () => refuses('open', () => openV2(h(t.chainKey), h(t.signingPublicKey), h(t.message), delivered), t.error));
      }
    }
  }
}
