// ratchet.json through core: the KDFs, the whole conversation replayed with
// the vector's random values (byte-exact), and every refused delivery.
import { DeviceIdentity, PreKeyStore, SessionRecord, cryptoProvider } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { kdfRoot, messageKeys, nextChainKey } from '../../packages/core/src/ratchet/kdf.ts';
import { type Replay, backends, bytes, expectRefusal, hexOf, loadVectors, replayConversation, testsOf } from './support.ts';

const file = loadVectors('ratchet.json');

describe.each(backends.map((b) => [b.name, b] as const))('ratchet.json (%s backend)', (_name, backend) => {
  it('KDF_RK and KDF_CK', () => {
    for (const { test } of testsOf(file, 'KDF_RK')) {
      const out = kdfRoot(backend, bytes(test.rootKey), bytes(test.dhOutput));
      expect([hexOf(out.rootKey), hexOf(out.chainKey)]).toEqual([test.nextRootKey, test.chainKey]);
    }
    for (const { test } of testsOf(file, 'KDF_CK')) {
      const mk = messageKeys(backend, bytes(test.chainKey));
      expect([hexOf(mk.key), hexOf(mk.nonce), hexOf(nextChainKey(backend, bytes(test.chainKey)))]).toEqual([
        test.messageKey,
        test.nonce,
        test.nextChainKey,
      ]);
    }
  });

  const conversations = new Map<string, Replay>();

  it('replays every conversation byte for byte', () => {
    for (const { group, test } of testsOf(file, 'Conversation')) conversations.set(test.name, replayConversation(group, test, backend));
  });

  it('refuses every invalid delivery with its code and leaves record and prekey store unchanged', () => {
    const p = cryptoProvider(backend);
    for (const { test } of testsOf(file, 'ConversationDelivery')) {
      const replay = conversations.get(test.conversation);
      if (!replay) throw new Error('the conversation replay failed or did not run');
      const snapshot = replay.snapshots[test.afterStep];
      const saved = snapshot?.[test.recipient as 'initiator' | 'responder'];
      if (!snapshot || !saved) throw new Error(`no record for ${test.recipient} after step ${test.afterStep}`);
      // Counts the recipient's random draws (04 §4.6), for the cases that pin them.
      let draws = 0;
      const counting = cryptoProvider(backend, (n) => {
        draws++;
        return backend.randomBytes(n);
      });
      const record = SessionRecord.deserialize(bytes(saved), counting);
      const device = DeviceIdentity.deserialize(replay.responder.serialize(), p);
      const prekeys = PreKeyStore.deserialize(bytes(snapshot.prekeys), device, p);
      const context = test.withDeviceAndPrekeys ? { device, prekeys } : {};
      if (!expectRefusal(() => record.decrypt(bytes(test.message), context), test, backend)) continue; // a known deviation: accepted
      expect(hexOf(record.serialize()), test.comment).toBe(saved);
      expect(hexOf(prekeys.serialize()), test.comment).toBe(snapshot.prekeys);
      if (test.randomDraws !== undefined) expect(draws, test.comment).toBe(test.randomDraws);
    }
  });
});
