/** ratchet-v2.json against spec/13-ratchet-v2.md, on this verifier's own ratchet v2 (lib/ratchet-v2.mjs). */
import { Mismatch, refuses, same } from '../lib/check.mjs';
import { fromHex as h } from '../lib/hex.mjs';
import { x25519PublicKey } from '../lib/primitives.mjs';
import { decryptV2, encryptV2, frankingTag, headerKeys, initiator, kdfRoot2, parseHeaderV2, responder } from '../lib/ratchet-v2.mjs';
import { decode, readArray, readBytes } from '../lib/cbor.mjs';

export function checkRatchetV2(f) {
  for (const g of f.groups('KdfRoot2')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const out = kdfRoot2(h(t.rootKey), h(t.dhOutput), h(t.pq));
        same('next root key', out.rootKey, t.nextRootKey);
        same('chain key', out.chainKey, t.chainKey);
        same('next header key', out.nextHeaderKey, t.nextHeaderKey);
      });
    }
  }
  for (const g of f.groups('HeaderKeys')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const out = headerKeys(h(t.sharedSecret));
        same('HKa', out.hka, t.hka);
        same('NHKb', out.nhkb, t.nhkb);
      });
    }
  }
  for (const g of f.groups('HeaderV2')) {
    for (const t of g.tests) {
      f.run(t, () => {
        if (t.result === 'invalid') return refuses('HeaderV2', () => parseHeaderV2(h(t.header)), t.error);
        const p = parseHeaderV2(h(t.header));
        same('ratchetKey', p.ratchetKey, t.ratchetKey);
        same('previousCounter', p.previousCounter, t.previousCounter);
        same('counter', p.counter, t.counter);
        same('pqEpoch', p.pqEpoch, t.pqEpoch);
      });
    }
  }
  for (const g of f.groups('ConversationV2')) {
    const ad = h(g.associatedData);
    const ids = {
      alice: { accountKey: h(g.alice.accountKey), deviceId: g.alice.deviceId },
      bob: { accountKey: h(g.bob.accountKey), deviceId: g.bob.deviceId },
    };
    const spkPrivate = h(g.responderSignedPreKeyPrivate);
    const state = { alice: null, bob: null };
    const sent = new Map();
    for (const t of g.tests) {
      f.run(t, () => {
        if (state.alice === null) {
          // Lazily, so a failure here is reported against the first step.
          state.alice = initiator(h(g.sharedSecret), ad, x25519PublicKey(spkPrivate), h(g.initiatorRatchetPrivateKey));
          state.bob = responder(h(g.sharedSecret), ad, spkPrivate);
        }
        if (t.action === 'send') {
          const body = h(t.body);
          const fields = readArray(decode(body, 'BodyV2', 1 << 21), 'BodyV2', 4);
          same('body frankingKey', readBytes(fields[0], 'frankingKey', 32), t.frankingKey);
          same('body plaintext', readBytes(fields[2], 'plaintext', { max: 1 << 20 }), t.plaintext);
          const tag = frankingTag(h(t.frankingKey), ids[t.from], h(t.plaintext));
          same('frankingTag', tag, t.frankingTag);
          same('header key', state[t.from].hks, t.headerKey);
          const out = encryptV2(state[t.from], body, tag);
          same('header', out.header, t.header);
          same('message key', out.messageKey.key, t.messageKey);
          same('message nonce', out.messageKey.nonce, t.messageNonce);
          same('ciphertext', out.ciphertext, t.ciphertext);
          same('encrypted header', out.encryptedHeader, t.encryptedHeader);
          state[t.from] = out.state;
          sent.set(t.name, { encryptedHeader: out.encryptedHeader, ciphertext: out.ciphertext, frankingTag: tag, from: t.from });
          return;
        }
        const to = t.to;
        const from = to === 'alice' ? 'bob' : 'alice';
        if (t.result === 'invalid') {
          const m = { encryptedHeader: h(t.encryptedHeader), ciphertext: h(t.ciphertext), frankingTag: h(t.frankingTag) };
          const before = state[to];
          // A refusal draws nothing: no random values are offered.
          refuses(t.comment, () => decryptV2(state[to], m, ids[from], null), t.error);
          if (state[to] !== before) throw new Mismatch('state changed');
          return;
        }
        const m = sent.get(t.name);
        if (!m) throw new Mismatch(`no message ${t.name}`);
        const out = decryptV2(state[to], m, ids[from], {
          newRatchetPrivateKey: t.newRatchetPrivateKey ? h(t.newRatchetPrivateKey) : null,
          pqSecretReceive: t.pqSecretReceive ? h(t.pqSecretReceive) : null,
          pqSecretSend: t.pqSecretSend ? h(t.pqSecretSend) : null,
        });
        same('opens with', out.opensWith, t.opensWith);
        same('header', out.header, t.header);
        same('plaintext', out.plaintext, t.plaintext);
        state[to] = out.state;
      });
    }
  }
}
