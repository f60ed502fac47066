/**
 * Issue 11 finding 8, the flood item: each first-contact PreKeyMessage makes
 * the receiver run a whole PQXDH handshake (about 1.4 ms with node:crypto,
 * 6.8 ms with noble) before anything about it can be judged, and one that
 * fails afterwards leaves nothing behind, so the same bytes can be sent again
 * and again. A per-sender-account budget (MAX_FIRST_CONTACTS_PER_HOUR) bounds
 * the handshakes one account can cause; the rest are refused unopened,
 * acknowledged, and reported. Handshakes are counted by the ML-KEM
 * decapsulations the victim performs, not by time.
 */
import { defaultProvider, encodeCbor } from '@parley/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_FIRST_CONTACTS_PER_HOUR } from '../../src/engine/first-contact.ts';
import { loadSession } from '../../src/state/sessions.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { FakeRelay } from '../support/fake-relay.ts';
import { closedAfterEach, newClient, record, until } from '../support/harness.ts';
import { ContentType, MaliciousPeer, rawContent } from '../support/malicious-peer.ts';
import { acknowledged, addressOf, historyTexts as texts, hostileScene } from './scene.ts';

describe('first-contact flood from one account', () => {
  const track = closedAfterEach();
  afterEach(() => vi.restoreAllMocks());

  it('replaying one failing PreKeyMessage costs at most MAX_FIRST_CONTACTS_PER_HOUR handshakes; the rest are refused and acknowledged', async () => {
    const { relay, victim, friend, attacker, refused } = await hostileScene(track);

    // A real handshake whose inner message fails its tag: the handshake runs, then the decrypt fails and rolls back.
    const { recipient, envelope } = await attacker.firstContact(
      victim.accountId,
      encodeCbor(rawContent({ type: ContentType.text, body: ['hi'] })),
    );
    const tampered = envelope.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    // The attacker's own receive loop would decapsulate the victim's retry requests: count only the victim's work.
    await attacker.client.close();

    const backend = defaultProvider().backend;
    const decapsulate = vi.spyOn(backend, 'mlkemDecapsulate');
    const extra = 16;
    // With the original's franking tag, as a v2 sender sends it: the tampering is in the ciphertext only.
    const tag = attacker.tagOf(envelope);
    for (let i = 0; i < MAX_FIRST_CONTACTS_PER_HOUR + extra; i++) await attacker.sendEnvelope(recipient, tampered, undefined, tag);
    await until(() => refused.length === MAX_FIRST_CONTACTS_PER_HOUR + extra, 15_000, 'every replay refused');
    await acknowledged(relay, victim, 'every replay acknowledged');

    expect(decapsulate.mock.calls.length).toBe(MAX_FIRST_CONTACTS_PER_HOUR);
    const limited = refused.filter((e) => e.code === 'RATE_LIMITED');
    expect(limited).toHaveLength(extra);
    expect(limited.every((e) => e.sender.account === attacker.accountId && !e.retryRequested)).toBe(true);

    // Another account is not held back by the attacker's budget.
    await friend.sendText(victim.accountId, 'hello');
    await until(() => texts(victim, friend.accountId).includes('hello'), 8000, 'the friend first contact');
  });

  it('a contact that keeps sending before hearing back (repeats of one handshake, also after we archived its session) spends nothing', async () => {
    const relay = new FakeRelay();
    const store = new MemoryStore();
    const victim = track(await newClient(relay, store));
    // A peer that never reads its mailbox: every message it sends repeats its first handshake.
    const peer = await MaliciousPeer.create(relay.connector);
    await peer.client.close();
    const decapsulate = vi.spyOn(defaultProvider().backend, 'mlkemDecapsulate');
    const text = (t: string) => rawContent({ type: ContentType.text, body: [t] });
    const n = MAX_FIRST_CONTACTS_PER_HOUR + 6;
    for (let i = 0; i < n; i++) await peer.sendContent(victim.accountId, text(`a${i}`));
    await until(() => texts(victim, peer.accountId).length === n, 15_000, 'the first run');
    expect(decapsulate.mock.calls.length).toBe(1);

    // A broken message makes the victim start a fresh session with the peer (a retry request): the peer's
    // session is archived on the victim's side, and the peer, still deaf, keeps using it.
    const refused = record(victim, 'undecryptable');
    const broken = await peer.encryptFor(victim.accountId, encodeCbor(text('broken')));
    broken[broken.length - 1] = (broken[broken.length - 1] as number) ^ 1;
    await peer.sendEnvelope(addressOf(victim), broken);
    await until(() => refused.some((e) => e.retryRequested), 8000, 'a retry request');
    const archived = () => loadSession(store, peer.address, defaultProvider()).record.archivedCount;
    await until(() => archived() === 1, 8000, 'the fresh session, with the peer session archived');
    for (let i = 0; i < n; i++) await peer.sendContent(victim.accountId, text(`b${i}`));
    await until(() => texts(victim, peer.accountId).length === 2 * n, 15_000, 'the second run');
    expect(refused.filter((e) => e.code === 'RATE_LIMITED')).toEqual([]);
    expect(decapsulate.mock.calls.length).toBe(1);
    expect(archived()).toBe(1);
  });
});
