// ratchet.json through core: the KDFs, the whole conversation replayed with
// the vector's random values (byte-exact), and every refused delivery.
import { SessionRecord, cryptoProvider } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { kdfRoot, messageKeys, nextChainKey } from '../../packages/core/src/ratchet/kdf.ts';
import { type Replay, backends, bytes, expectParleyError, hexOf, loadVectors, replayConversation, testsOf, codeFor } from './support.ts';

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

  const conversations = new Map(
    testsOf(file, 'Conversation').map(({ group, test }) => [test.name, replayConversation(group, test, backend)]),
  );

  it('replays the conversation byte for byte', () => {
    expect(conversations.size).toBeGreaterThan(0);
  });

  it('refuses every invalid delivery with its code and leaves the record unchanged', () => {
    const p = cryptoProvider(backend);
    for (const { test } of testsOf(file, 'ConversationDelivery')) {
      if (!conversations.has(test.conversation)) throw new Error('the conversation replay failed or did not run');
      const saved = conversations.get(test.conversation)?.snapshots[test.afterStep]?.[test.recipient as 'initiator' | 'responder'];
      if (!saved) throw new Error(`no record for ${test.recipient} after step ${test.afterStep}`);
      const record = SessionRecord.deserialize(bytes(saved), p);
      expectParleyError(() => record.decrypt(bytes(test.message)), codeFor(test));
      expect(hexOf(record.serialize()), test.comment).toBe(saved);
    }
  });
});
