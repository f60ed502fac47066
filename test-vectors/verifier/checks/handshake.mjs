/** handshake.json against spec/03-handshake.md and spec/05-wire-format.md §4.2. */
import { Mismatch, refuses, same } from '../lib/check.mjs';
import { fromHex as h } from '../lib/hex.mjs';
import { deviceFrom, prekeysFrom } from '../lib/parties.mjs';
import { x25519PublicKey } from '../lib/primitives.mjs';
import { kdfChain, pad } from '../lib/ratchet.mjs';
import { SessionRecord, startSession } from '../lib/records.mjs';
import { decodeBundle, encodeRatchetMessage } from '../lib/structures.mjs';

const ANY_KEY = () => new Uint8Array(32).fill(7);

export function checkHandshake(f) {
  for (const g of f.groups('PQXDH')) {
    const initiator = deviceFrom(g.initiator);
    const responder = deviceFrom(g.responder);
    for (const t of g.tests) {
      f.run(t, () => {
        const record = new SessionRecord();
        const started = startSession(record, initiator, decodeBundle(h(t.bundle)), h(g.responder.accountKey), {
          ephemeralPrivateKey: h(t.ephemeralPrivateKey),
          kemEncapsulationRandomness: h(t.kemEncapsulationRandomness),
          ratchetPrivateKey: h(t.initiatorRatchetPrivateKey),
        });
        const hs = started.handshake;
        for (const field of [
          'baseKey',
          'dh1',
          'dh2',
          'dh3',
          'kemCiphertext',
          'kemSharedSecret',
          'sharedSecret',
          'associatedDataInput',
          'associatedData',
        ]) {
          same(field, hs[field], t[field]);
        }
        same('dh4', hs.dh4, t.dh4);
        same('hkdfIkm', hs.ikm, t.hkdfIkm);
        same('hkdfSalt', hs.salt, t.hkdfSalt);
        same('hkdfInfo', hs.info, t.hkdfInfo);
        same('initiatorRatchetKey', x25519PublicKey(h(t.initiatorRatchetPrivateKey)), t.initiatorRatchetKey);
        same('ratchetDh', started.ratchetDh, t.ratchetDh);
        same('rootKey', record.current.ratchet.rootKey, t.rootKey);
        same('chainKey', record.current.ratchet.sendingChain.chainKey, t.chainKey);
        const k = kdfChain(h(t.chainKey));
        same('messageKey', k.messageKey, t.messageKey);
        same('nonce', k.nonce, t.nonce);
        same('nextChainKey', k.nextChainKey, t.nextChainKey);
        same('paddedPlaintext', pad(h(t.plaintext)), t.paddedPlaintext);
        const sent = record.encrypt(h(t.plaintext));
        same('headerBytes', sent.trace.headerBytes, t.headerBytes);
        same('aeadAssociatedData', sent.trace.aeadAd, t.aeadAssociatedData);
        same('ciphertext', sent.trace.ciphertext, t.ciphertext);
        same('ratchetMessage', encodeRatchetMessage(sent.trace.headerBytes, sent.trace.ciphertext), t.ratchetMessage);
        same('preKeyMessage', sent.message, t.preKeyMessage);

        const bob = new SessionRecord();
        const out = bob.decrypt(h(t.preKeyMessage), {
          device: responder,
          prekeys: prekeysFrom(g.responder),
          expectedAccountKey: h(g.initiator.accountKey),
          newRatchetPrivateKey: () => h(t.responderRatchetPrivateKey),
        });
        same('responder plaintext', out.plaintext, t.plaintext);
        const d = out.trace.dhRatchet;
        same('responder dhReceive = ratchetDh', d.dhReceive, t.ratchetDh);
        same('responder receiving chain = chainKey', d.receivingChainKey, t.chainKey);
        same('responderRatchetKey', d.newRatchetKey, t.responderRatchetKey);
        same('responderDh', d.dhSend, t.responderDh);
        same('responderRootKey', d.rootKeyAfterSend, t.responderRootKey);
        same('responderSendingChainKey', d.sendingChainKey, t.responderSendingChainKey);
      });
    }
  }

  for (const g of f.groups('PreKeyMessage')) {
    const responder = deviceFrom(g.responder);
    for (const t of g.tests) {
      f.run(t, () => {
        const prekeys = prekeysFrom(g.responder);
        for (const m of t.acceptedBefore) new SessionRecord().decrypt(h(m), { device: responder, prekeys, newRatchetPrivateKey: ANY_KEY });
        const before = prekeys.encode();
        const record = new SessionRecord();
        let draws = 0;
        const counted = () => {
          draws++;
          return ANY_KEY();
        };
        refuses(
          'PreKeyMessage',
          () =>
            record.decrypt(h(t.message), {
              device: responder,
              prekeys,
              expectedAccountKey: h(t.expectedAccountKey),
              newRatchetPrivateKey: counted,
            }),
          t.error,
        );
        if (t.randomDraws !== undefined) same('random values drawn before the refusal (04 §4.6)', draws, t.randomDraws);
        same('prekey store after the refusal', prekeys.encode(), before);
        if (record.current) throw new Mismatch('a refused message created a session');
      });
    }
  }

  for (const g of f.groups('InitiatorBundle')) {
    const initiator = deviceFrom(g.initiator);
    for (const t of g.tests) {
      f.run(t, () =>
        refuses(
          'bundle',
          () =>
            startSession(new SessionRecord(), initiator, decodeBundle(h(t.bundle)), h(t.expectedAccountKey), {
              ephemeralPrivateKey: ANY_KEY(),
              kemEncapsulationRandomness: ANY_KEY(),
              ratchetPrivateKey: ANY_KEY(),
            }),
          t.error,
        ),
      );
    }
  }
}
