// The client on v2 sessions through the real relay (with the malicious-relay
// proxy in front): franking tags on every send and checked on receive,
// franked rows for received v2 messages, interop with v1-only clients and
// old stores (upgrade), loss and reorder, groups v2, and expiry.
// spec/10-client.md §4.1.2, §4.2.3, §7.6; spec/design/formats-v2.md §3.3, §6, §10.
import { checkFrankingTag, checkRelayFrank, defaultProvider } from '@parley/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ParleyClient } from '../src/client.ts';
import { decodeContent } from '../src/content/content.ts';
import { type FrankedMessage, findFranked, listFranked } from '../src/franking/store.ts';
import { parseAccountId } from '../src/state/ids.ts';
import { MemoryStore } from '../src/store/memory.ts';
import { TEST_OPTIONS, next, record, until } from './support/harness.ts';
import { type EnvelopeFrame, deviceTag } from './support/malicious-relay.ts';
import { type World, bundleFetches, talking, texts, world } from './adversarial/support.ts';

let w: World;
const extra: ParleyClient[] = [];
beforeEach(async () => {
  w = await world();
});
afterEach(async () => {
  for (const c of extra.splice(0)) await c.close().catch(() => undefined);
  await w.close();
});

const backend = defaultProvider().backend;
/** The relay's frank keys (the moderator's side of a report). */
const frankKeys = () =>
  (w.relay.app as unknown as { relay: { frankKeys: { forVerify(id: number, now: number): Promise<Uint8Array | null> } } }).relay.frankKeys;
const textOf = (m: FrankedMessage) => {
  const body = decodeContent(m.plaintext).body;
  return body.type === 'text' ? body.text : null;
};
/** The relay franked exactly this tag, and the tag commits to this plaintext from this sender. */
const commits = (m: FrankedMessage) => checkFrankingTag(backend, m.frankingKey, m.sender, m.plaintext, m.delivery.frankingTag);

describe('v2 one-to-one through the real relay', () => {
  it('both sides run v2 by default; every received text has a franked row that commits to it', async () => {
    const { alice, bob, bobStore } = await talking(w);
    expect(alice.sessionVersion(bob.accountId, bob.deviceId)).toBe(2);
    expect(bob.sessionVersion(alice.accountId, alice.deviceId)).toBe(2);

    const rows = listFranked(bobStore, alice.accountId);
    expect(rows.map(textOf)).toEqual(['one', 'three']);
    for (const m of rows) {
      expect(commits(m)).toBe(true);
      expect(m.sender).toEqual({ accountKey: parseAccountId(alice.accountId), deviceId: alice.deviceId });
      expect(m.recipientDevice).toBe(bob.deviceId);
      expect(m.sealed).toBe(false);
      expect(m.group).toBeNull();
      expect(m.delivery.envelopeId.length).toBe(16);
      expect(m.delivery.frank.length).toBe(32);
      // Found by the message id the app knows, through the history's index.
      expect(findFranked(bobStore, m.sender.accountKey, m.messageId)?.messageKey).toBe(m.messageKey);
      // And the record is the relay's own: its frank checks under the relay's key for Bob's device and Alice's
      // (identified) device, which is what a report proves (spec/14 §4.2).
      const key = await frankKeys().forVerify(m.delivery.frankKeyId, Date.now());
      const input = {
        keyId: m.delivery.frankKeyId,
        frankingTag: m.delivery.frankingTag,
        recipient: { accountKey: parseAccountId(bob.accountId), deviceId: m.recipientDevice },
        acceptedAt: m.delivery.acceptedAt,
        envelopeId: m.delivery.envelopeId,
        sender: m.sender,
      };
      expect(checkRelayFrank(backend, key as Uint8Array, input, m.delivery.frank)).toBe(true);
    }
    // The relay received the tag beside each v2 envelope (and franked it): every frame to Bob came with a record.
    const toBob = w.evil.pushed.filter((p) => p.to === deviceTag(bob.accountId, bob.deviceId));
    expect(toBob.length).toBeGreaterThan(0);
    expect(toBob.every((p) => p.frame.delivery?.frankingTag)).toBe(true);
  });

  it('a tag the relay swapped, and one it dropped, are refused and never shown; the next message is', async () => {
    const { alice, bob, bobStore } = await talking(w);
    const fetches = bundleFetches(w, alice);
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    const refused = record(bob, 'undecryptable');
    const shown = record(bob, 'message');
    let n = 0;
    // The first deliveries of Alice's next two messages (not re-sends, whose ids end in .rN).
    w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId || frame.id.includes('.r') || !frame.delivery) return undefined;
      n += 1;
      if (n === 1) {
        const swapped = Buffer.from(frame.delivery.frankingTag, 'base64url');
        swapped[0] = (swapped[0] as number) ^ 1;
        return [{ ...frame, delivery: { ...frame.delivery, frankingTag: swapped.toString('base64url') } }];
      }
      if (n === 2) {
        const { delivery: _dropped, ...bare } = frame;
        return [bare as EnvelopeFrame];
      }
      return undefined;
    });
    await alice.sendText(bob.accountId, 'swapped tag');
    await until(() => refused.length >= 1, 10_000, 'the swapped tag refused');
    await alice.sendText(bob.accountId, 'dropped tag');
    await until(() => refused.length >= 2, 10_000, 'the dropped tag refused');
    await alice.sendText(bob.accountId, 'after');
    await until(() => texts(bob, alice.accountId).includes('after'), 10_000, 'the next message');

    // The tag is the 1:1 message's associated data: a changed one fails decryption; a missing one is refused before.
    expect(refused.map((r) => r.code)).toEqual(['DECRYPT_FAILED', 'FRANKING_TAG_MISMATCH']);
    expect(refused.every((r) => r.sender.account === alice.accountId)).toBe(true);
    // The header opened, so the session is in step: the swapped one is asked for again on it (no working
    // session replaced on the relay's word); a missing tag is not asked for at all.
    expect(refused.map((r) => r.retryRequested)).toEqual([true, false]);
    await until(() => texts(bob, alice.accountId).includes('swapped tag'), 10_000, 'the re-send of the swapped one');
    await bob.flush();
    expect(bundleFetches(w, alice)).toBe(fetches);
    // Never shown from the tampered deliveries: no message event from them, no franked row for the dropped one.
    expect(texts(bob, alice.accountId)).not.toContain('dropped tag');
    expect(shown.filter((m) => m.body.type === 'text' && m.body.text === 'dropped tag')).toEqual([]);
    // The swapped one may arrive again as a re-send on request (a fresh envelope, with its own correct tag): then it is franked.
    for (const m of listFranked(bobStore, alice.accountId)) expect(commits(m)).toBe(true);
    expect(listFranked(bobStore, alice.accountId).map(textOf)).not.toContain('dropped tag');
  }, 40_000);

  it('loss and reorder on a v2 session: what arrives shows, in any order, each once', async () => {
    const { alice, bob } = await talking(w);
    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    const held: EnvelopeFrame[] = [];
    let n = 0;
    const stop = w.evil.onEnvelope((frame, to) => {
      if (to !== bobTag || frame.sender.account !== alice.accountId) return undefined;
      n += 1;
      if (n <= 2) {
        held.push(frame);
        return [];
      }
      if (n === 3) return []; // lost (until a reconnect)
      return undefined;
    });
    for (const t of ['r1', 'r2', 'lost', 'r4']) await alice.sendText(bob.accountId, t);
    await until(() => texts(bob, alice.accountId).includes('r4'), 10_000, 'r4 past the gap');
    stop();
    // The held ones, newest first.
    for (const f of held.reverse()) w.evil.deliver(bobTag, f);
    await until(() => texts(bob, alice.accountId).includes('r1') && texts(bob, alice.accountId).includes('r2'), 10_000, 'reordered');
    const got = texts(bob, alice.accountId);
    expect(got.filter((t) => ['r1', 'r2', 'r4'].includes(t)).sort()).toEqual(['r1', 'r2', 'r4']);
    expect(got).not.toContain('lost');
    expect(bob.sessionVersion(alice.accountId, alice.deviceId)).toBe(2);
  }, 40_000);

  it('a disappearing message takes its franked row with it', async () => {
    const { alice, bob, bobStore } = await talking(w);
    await alice.setExpireTimer(bob.accountId, 1);
    await until(() => bob.expireTimer(alice.accountId) === 1, 10_000, 'the timer');
    let rowAtArrival: FrankedMessage | null = null;
    bob.on('message', (m) => {
      if (m.body.type === 'text' && m.body.text === 'gone soon')
        rowAtArrival = listFranked(bobStore, alice.accountId).find((r) => textOf(r) === 'gone soon') ?? null;
    });
    await alice.sendText(bob.accountId, 'gone soon');
    await until(() => rowAtArrival !== null, 10_000, 'the franked row at arrival');
    expect((rowAtArrival as unknown as FrankedMessage).expiresAt).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1100));
    expect(listFranked(bobStore, alice.accountId).map(textOf)).not.toContain('gone soon');
    bobStore.sweep(Date.now());
    expect(
      bobStore
        .list('franked', 'm/')
        .map((e) => e.key)
        .filter((k) => k.includes('gone')),
    ).toEqual([]);
    expect(listFranked(bobStore, alice.accountId).every((m) => m.expiresAt === null)).toBe(true);
  }, 30_000);
});

describe('interop with v1', () => {
  it('a v2 client and a v1-only client talk both ways on a v1 session; nothing is franked', async () => {
    const aliceStore = new MemoryStore();
    const carolStore = new MemoryStore();
    const alice = await w.create(aliceStore);
    const carol = await w.create(carolStore, { sessionVersions: [1] });
    await alice.sendText(carol.accountId, 'hello v1');
    await until(() => texts(carol, alice.accountId).includes('hello v1'), 10_000, 'to the v1 client');
    await carol.sendText(alice.accountId, 'hello v2');
    await until(() => texts(alice, carol.accountId).includes('hello v2'), 10_000, 'from the v1 client');
    expect(alice.sessionVersion(carol.accountId, carol.deviceId)).toBe(1);
    expect(carol.sessionVersion(alice.accountId, alice.deviceId)).toBe(1);
    expect(listFranked(aliceStore, carol.accountId)).toEqual([]);
    expect(listFranked(carolStore, alice.accountId)).toEqual([]);
  }, 30_000);

  it('old v1 stores keep working after the update, then upgrade to v2; a late v1 message still decrypts', async () => {
    const aliceStore = new MemoryStore();
    const bobStore = new MemoryStore();
    const v1 = { sessionVersions: [1] };
    const alice = await w.create(aliceStore, v1);
    const bob = await w.create(bobStore, v1);
    await alice.sendText(bob.accountId, 'v1 one');
    await until(() => texts(bob, alice.accountId).includes('v1 one'), 10_000, 'v1 one');
    await bob.sendText(alice.accountId, 'v1 two');
    await until(() => texts(alice, bob.accountId).includes('v1 two'), 10_000, 'v1 two');
    expect(alice.sessionVersion(bob.accountId, bob.deviceId)).toBe(1);

    // Bob's next v1 message is held by the relay until after the upgrade (a late message on the old session).
    const aliceTag = deviceTag(alice.accountId, alice.deviceId);
    const held: EnvelopeFrame[] = [];
    const stop = w.evil.onEnvelope((frame, to) => {
      if (to !== aliceTag || frame.sender.account !== bob.accountId || held.length > 0) return undefined;
      held.push(frame);
      return [];
    });
    await bob.sendText(alice.accountId, 'late v1');
    await until(() => held.length === 1, 10_000, 'the late v1 message held');
    stop();

    // Both update: the same stores, the new release's defaults.
    await alice.close();
    await bob.close();
    const alice2 = await ParleyClient.open({ store: aliceStore, relay: w.connector, options: TEST_OPTIONS });
    const bob2 = await ParleyClient.open({ store: bobStore, relay: w.connector, options: TEST_OPTIONS });
    extra.push(alice2, bob2);
    const upgradedA = next(alice2, 'session-upgraded');
    const upgradedB = next(bob2, 'session-upgraded');
    await bob2.start();
    await alice2.start();
    // Both publish their v2 signed prekey now (upkeep).
    await bob2.maintain();
    await alice2.maintain();
    await alice2.sendText(bob.accountId, 'first on v2');
    await until(() => texts(bob2, alice.accountId).includes('first on v2'), 10_000, 'first on v2');
    expect(await upgradedA).toEqual({ account: bob.accountId, deviceId: bob.deviceId, version: 2, previousVersion: 1 });
    expect(await upgradedB).toEqual({ account: alice.accountId, deviceId: alice.deviceId, version: 2, previousVersion: 1 });
    expect(alice2.sessionVersion(bob.accountId, bob.deviceId)).toBe(2);
    expect(bob2.sessionVersion(alice.accountId, alice.deviceId)).toBe(2);
    expect(listFranked(bobStore, alice.accountId).map(textOf)).toEqual(['first on v2']);

    // The late v1 message, on the archived v1 session.
    w.evil.deliver(aliceTag, held[0] as EnvelopeFrame);
    await until(() => texts(alice2, bob.accountId).includes('late v1'), 10_000, 'the late v1 message');
    await bob2.sendText(alice.accountId, 'reply on v2');
    await until(() => texts(alice2, bob.accountId).includes('reply on v2'), 10_000, 'reply on v2');
    expect(listFranked(aliceStore, bob.accountId).map(textOf)).toEqual(['reply on v2']);
  }, 60_000);
});

describe('groups v2', () => {
  it('all members on v2: the group message is v2 (franked, the group id in the row); a v1-only member makes it v1', async () => {
    const stores = [new MemoryStore(), new MemoryStore(), new MemoryStore()];
    const alice = await w.create(stores[0]);
    const bob = await w.create(stores[1]);
    const dave = await w.create(stores[2]);
    const carol = await w.create(new MemoryStore(), { sessionVersions: [1] });
    for (const [a, b] of [
      [alice, bob],
      [alice, dave],
      [alice, carol],
    ] as [ParleyClient, ParleyClient][]) {
      await a.sendText(b.accountId, 'hi');
      await until(() => texts(b, a.accountId).includes('hi'), 10_000, 'hi');
    }
    const group = await alice.createGroup('v2 only', [bob.accountId, dave.accountId]);
    await until(() => bob.group(group) !== null && dave.group(group) !== null, 10_000, 'joined');
    await alice.sendText(group, 'first');
    await until(() => texts(bob, group).includes('first') && texts(dave, group).includes('first'), 10_000, 'first');
    await alice.sendText(group, 'franked');
    await until(() => texts(bob, group).includes('franked') && texts(dave, group).includes('franked'), 10_000, 'franked');
    // Bob never talked to Dave: his first group message is v1 (no session, no pin: spec 10 §8.4); its
    // distribution starts a v2 session with Dave, so his next one is v2.
    await bob.sendText(group, 'from bob');
    await until(() => texts(alice, group).includes('from bob'), 10_000, 'from bob');
    await bob.sendText(group, 'from bob again');
    await until(() => texts(alice, group).includes('from bob again'), 10_000, 'from bob again');

    const rows = listFranked(stores[1] as MemoryStore, group);
    expect(rows.map(textOf)).toContain('franked');
    for (const m of rows) {
      expect(commits(m)).toBe(true);
      expect(m.group).toEqual(decodeContent(m.plaintext).group);
      expect(m.sender.accountKey).toEqual(parseAccountId(alice.accountId));
    }
    expect(listFranked(stores[0] as MemoryStore, group).map(textOf)).toEqual(['from bob again']);

    const mixed = await alice.createGroup('with a v1 member', [bob.accountId, carol.accountId]);
    await until(() => bob.group(mixed) !== null && carol.group(mixed) !== null, 10_000, 'joined the mixed group');
    await alice.sendText(mixed, 'to everyone');
    await until(() => texts(bob, mixed).includes('to everyone') && texts(carol, mixed).includes('to everyone'), 10_000, 'mixed');
    expect(listFranked(stores[1] as MemoryStore, mixed)).toEqual([]);
  }, 60_000);

  it('a group message whose delivered tag was swapped is refused by the member, group state unchanged, and the next one shows', async () => {
    const stores = [new MemoryStore(), new MemoryStore()];
    const alice = await w.create(stores[0]);
    const bob = await w.create(stores[1]);
    await alice.sendText(bob.accountId, 'hi');
    await until(() => texts(bob, alice.accountId).includes('hi'), 10_000, 'hi');
    await bob.sendText(alice.accountId, 'hi back');
    await until(() => texts(alice, bob.accountId).includes('hi back'), 10_000, 'hi back');
    const group = await alice.createGroup('g', [bob.accountId]);
    await until(() => bob.group(group) !== null, 10_000, 'joined');
    await alice.sendText(group, 'warm up');
    await until(() => texts(bob, group).includes('warm up'), 10_000, 'warm up');
    expect(listFranked(stores[1] as MemoryStore, group).map(textOf)).toEqual(['warm up']);

    const bobTag = deviceTag(bob.accountId, bob.deviceId);
    const refused = record(bob, 'undecryptable');
    let swapped = false;
    w.evil.onEnvelope((frame, to) => {
      if (swapped || to !== bobTag || frame.sender.account !== alice.accountId || !frame.delivery) return undefined;
      const bytes = Buffer.from(frame.envelope, 'base64url');
      // Group messages only: [2, 3, ...] (version 2, type 3).
      if (bytes[1] !== 2 || bytes[2] !== 3) return undefined;
      swapped = true;
      const tag = Buffer.from(frame.delivery.frankingTag, 'base64url');
      tag[5] = (tag[5] as number) ^ 0x80;
      return [{ ...frame, delivery: { ...frame.delivery, frankingTag: tag.toString('base64url') } }];
    });
    const groupsBefore = JSON.stringify(stores[1]?.list('groups'));
    await alice.sendText(group, 'tampered');
    await until(() => refused.length > 0, 10_000, 'refused');
    expect(refused[0]?.code).toBe('FRANKING_TAG_MISMATCH');
    expect(JSON.stringify(stores[1]?.list('groups'))).toBe(groupsBefore);
    await alice.sendText(group, 'next');
    await until(() => texts(bob, group).includes('next'), 10_000, 'next');
    expect(listFranked(stores[1] as MemoryStore, group).every(commits)).toBe(true);
  }, 40_000);
});
