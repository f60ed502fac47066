// handshake.json through core: the initiator, fed the vector's random values,
// must produce the exact PreKeyMessage; the responder must read it; every
// invalid PreKeyMessage or bundle is refused with its code and changes nothing.
import { SessionRecord, concatBytes, cryptoProvider, decodeBundle, decodeMessage, encodeCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { messageKeys } from '../../packages/core/src/ratchet/kdf.ts';
import { pad } from '../../packages/core/src/ratchet/padding.ts';
import { VectorRandom, backends, bytes, deviceFrom, expectRefusal, hexOf, loadVectors, prekeyStoreFrom, testsOf } from './support.ts';

const file = loadVectors('handshake.json');

describe.each(backends.map((b) => [b.name, b] as const))('handshake.json (%s backend)', (_name, backend) => {
  it('the initiator produces the exact PreKeyMessage and the responder reads it', () => {
    for (const { group, test } of testsOf(file, 'PQXDH')) {
      const rng = new VectorRandom(backend).push(
        test.ephemeralPrivateKey,
        test.kemEncapsulationRandomness,
        test.initiatorRatchetPrivateKey,
      );
      const alice = deviceFrom(group.initiator, rng.provider);
      const record = SessionRecord.initiate(alice, decodeBundle(bytes(test.bundle)), {
        expectedAccountKey: bytes(group.responder.accountKey),
        provider: rng.provider,
      });
      rng.expectUsed();
      expect(hexOf(record.sessionId!)).toBe(test.baseKey);
      expect(hexOf(record.encrypt(bytes(test.plaintext)))).toBe(test.preKeyMessage);

      const bobRng = new VectorRandom(backend).push(test.responderRatchetPrivateKey);
      const bob = deviceFrom(group.responder, bobRng.provider);
      const prekeys = prekeyStoreFrom(group.responder, bob, bobRng.provider);
      const bobRecord = new SessionRecord(bobRng.provider);
      const out = bobRecord.decrypt(bytes(test.preKeyMessage), {
        device: bob,
        prekeys,
        expectedAccountKey: bytes(group.initiator.accountKey),
      });
      bobRng.expectUsed();
      expect(hexOf(out.plaintext)).toBe(test.plaintext);
      expect(out.usedPreKeys?.oneTimePreKeyId ?? null).toBe(test.oneTimePreKeyId);

      // The responder's first reply uses the listed ratchet key and sending chain.
      const reply = decodeMessage(bobRecord.encrypt(bytes(test.plaintext)));
      if (reply.type !== 'ratchet') throw new Error('the reply must be a RatchetMessage');
      expect(hexOf(reply.header.ratchetKey)).toBe(test.responderRatchetKey);
      const mk = messageKeys(backend, bytes(test.responderSendingChainKey));
      const ad = concatBytes(bytes(test.associatedData), encodeCbor([reply.header.ratchetKey, 0, 0]));
      expect(hexOf(reply.ciphertext)).toBe(hexOf(backend.aeadSeal(mk.key, mk.nonce, pad(bytes(test.plaintext)), ad)));
    }
  });

  it('refuses every invalid PreKeyMessage with its code, leaving record and prekey store unchanged', () => {
    const p = cryptoProvider(backend);
    for (const { group, test } of testsOf(file, 'PreKeyMessage')) {
      const bob = deviceFrom(group.responder, p);
      const prekeys = prekeyStoreFrom(group.responder, bob, p);
      for (const m of test.acceptedBefore) new SessionRecord(p).decrypt(bytes(m), { device: bob, prekeys });
      // Counts the responder's random draws (04 §4.6), for the cases that pin them.
      let draws = 0;
      const counting = cryptoProvider(backend, (n) => {
        draws++;
        return backend.randomBytes(n);
      });
      const record = new SessionRecord(counting);
      const before = [hexOf(record.serialize()), hexOf(prekeys.serialize())];
      expectRefusal(
        () => record.decrypt(bytes(test.message), { device: bob, prekeys, expectedAccountKey: bytes(test.expectedAccountKey) }),
        test,
        backend,
      );
      expect([hexOf(record.serialize()), hexOf(prekeys.serialize())], test.comment).toEqual(before);
      if (test.randomDraws !== undefined) expect(draws, test.comment).toBe(test.randomDraws);
    }
  });

  it('refuses every invalid bundle at the initiator with its code', () => {
    const p = cryptoProvider(backend);
    for (const { group, test } of testsOf(file, 'InitiatorBundle')) {
      const alice = deviceFrom(group.initiator, p);
      expectRefusal(
        () =>
          SessionRecord.initiate(alice, decodeBundle(bytes(test.bundle)), {
            expectedAccountKey: bytes(test.expectedAccountKey),
            provider: p,
          }),
        test,
        backend,
      );
    }
  });
});
