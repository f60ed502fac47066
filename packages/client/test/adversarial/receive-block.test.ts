/**
 * Issue 11 finding 1: no content from any account may block the victim's
 * inbox. Hostile contents that made the SDK throw an untyped error (a group
 * state naming the victim with epoch 0xffffffff made GroupSession throw a
 * RangeError) were treated as a local store failure: never acknowledged, so
 * everything behind them waited, across restarts, until the relay's TTL.
 */
import { GroupSession, bytesEqual, defaultProvider, encodeCbor, groupLimits } from '@parley/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Pending } from '../../src/engine/context.ts';
import { parseAccountId } from '../../src/state/ids.ts';
import { closedAfterEach, next, record, until } from '../support/harness.ts';
import { ContentType, rawContent, rawGroupState } from '../support/malicious-peer.ts';
import { acknowledged, addressOf, historyTexts as texts, hostileScene, reopen } from './scene.ts';

describe('receive loop: hostile contents never block the inbox', () => {
  const track = closedAfterEach();
  afterEach(() => vi.restoreAllMocks());

  it('300 group states with epoch 0xffffffff, then a legitimate message: delivered and acknowledged, before and after a restart', async () => {
    const { relay, store, victim, friend, attacker, refused, warnings } = await hostileScene(track);

    const me = parseAccountId(victim.accountId);
    const hostile = (i: number) =>
      rawContent({
        type: ContentType.groupUpdate,
        group: defaultProvider().random(32),
        body: rawGroupState({ revision: i + 1, members: [attacker.address.accountKey, me], epoch: 0xffffffff }),
      });
    // One honest-looking first contact (its signed device list), so the victim judges what follows as a known peer's.
    await attacker.introduce(victim.accountId);
    for (let i = 0; i < 300; i++) await attacker.sendContent(victim.accountId, hostile(i));

    await friend.sendText(victim.accountId, 'still reachable');
    await until(() => texts(victim, friend.accountId).includes('still reachable'), 8000, 'the legitimate message');
    await acknowledged(relay, victim);
    // Each is refused where it is decoded (the epoch is out of range), reported, and acknowledged.
    expect(warnings.filter((w) => w.code === 'OVERSIZED')).toHaveLength(300);
    expect(refused).toEqual([]);
    expect(victim.groups()).toEqual([]);

    // The same after a restart: nothing was left behind to replay.
    await victim.close();
    const again = await reopen(track, store, relay);
    for (let i = 0; i < 5; i++) await attacker.sendContent(again.accountId, hostile(i));
    const arrived = next(again, 'message', (m) => m.body.type === 'text' && m.body.text === 'after restart');
    await friend.sendText(again.accountId, 'after restart');
    await arrived;
    await acknowledged(relay, again, 'every envelope acknowledged after the restart');
  });
});

describe('receive loop: an untyped error belongs to the input, not to the store', () => {
  const track = closedAfterEach();
  afterEach(() => vi.restoreAllMocks());

  it('a RangeError from core inside the transaction is reported as INTERNAL, acknowledged, and what follows arrives', async () => {
    const { relay, victim, attacker } = await hostileScene(track);
    const group = await attacker.client.createGroup('trap', [victim.accountId]);
    await until(() => victim.group(group) !== null, 8000, 'the victim joins');
    await attacker.client.sendText(group, 'chain');
    await until(() => texts(victim, group).includes('chain'), 8000, 'the attacker chain');

    // Any untyped failure past the store (here: core's group layer) stands for the whole class.
    vi.spyOn(GroupSession.prototype, 'decrypt').mockImplementation(() => {
      throw new RangeError('"epoch" expected an integer in 0..4294967294');
    });
    const refused = record(victim, 'undecryptable');
    for (let i = 0; i < 20; i++) await attacker.client.sendText(group, `hostile ${i}`);
    await until(() => refused.length === 20, 8000, 'twenty refusals');
    vi.restoreAllMocks();
    expect(new Set(refused.map((e) => e.code))).toEqual(new Set(['INTERNAL']));
    expect(refused.every((e) => e.sender.account === attacker.accountId && !e.retryRequested)).toBe(true);
    // The message of an untyped error never reaches an event.
    expect(JSON.stringify(refused)).not.toContain('expected an integer');

    await attacker.client.sendText(group, 'after');
    await until(() => texts(victim, group).includes('after'), 8000, 'the next group message');
    await acknowledged(relay, victim);
  });
});

describe('receive loop: recording a refusal that fails', () => {
  const track = closedAfterEach();
  afterEach(() => vi.restoreAllMocks());

  it('a bug while recording a refused envelope still leaves it handled, reported as INTERNAL, and acknowledged', async () => {
    const { relay, victim, friend, attacker, refused } = await hostileScene(track);
    const broken = await attacker.encryptFor(victim.accountId, encodeCbor(rawContent({ type: ContentType.text, body: ['x'] })));
    broken[broken.length - 1] = (broken[broken.length - 1] as number) ^ 1;

    // The first 'undecryptable' recorded throws, as a bug in the failure bookkeeping would.
    const add = Pending.prototype.add;
    let thrown = false;
    vi.spyOn(Pending.prototype, 'add').mockImplementation(function (this: Pending, event, payload) {
      if (event === 'undecryptable' && !thrown) {
        thrown = true;
        throw new TypeError('bookkeeping bug');
      }
      return add.call(this, event, payload as never);
    });
    await attacker.sendEnvelope(addressOf(victim), broken);
    await friend.sendText(victim.accountId, 'after');
    await until(() => texts(victim, friend.accountId).includes('after'), 8000, 'the message after');
    await acknowledged(relay, victim);
    expect(thrown).toBe(true);
    expect(refused.map((e) => e.code)).toEqual(['INTERNAL']);
  });
});

describe('receive loop: a group at its member-device bound', () => {
  const track = closedAfterEach();
  afterEach(() => vi.restoreAllMocks());

  it('a new device joining a full group is refused with LIMIT_EXCEEDED (not a RangeError from core), and the inbox moves on', async () => {
    const { victim, friend, attacker, refused, warnings } = await hostileScene(track);
    // Every group the victim holds looks full: core's bound (5000 member devices), without building 5000 devices.
    const full = Array.from({ length: groupLimits.MAX_GROUP_MEMBER_DEVICES }, (_, i) => ({
      accountKey: new Uint8Array(32),
      deviceId: i + 1,
    }));
    const members = Object.getOwnPropertyDescriptor(GroupSession.prototype, 'members')?.get as (this: GroupSession) => unknown;
    const victimKey = parseAccountId(victim.accountId);
    vi.spyOn(GroupSession.prototype, 'members', 'get').mockImplementation(function (this: GroupSession) {
      // Only the victim's sessions look full; the attacker's own client runs unchanged in this process.
      return (bytesEqual(this.self.accountKey, victimKey) ? full : members.call(this)) as never;
    });
    const group = await attacker.client.createGroup('full', [victim.accountId]);
    await until(() => victim.group(group) !== null, 8000, 'the victim to hold the group');
    await attacker.client.sendText(group, 'one more device');
    await until(() => refused.some((e) => e.code === 'LIMIT_EXCEEDED'), 8000, 'the group message refused');
    // The distribution is refused by groups.ts's own guard (OVERSIZED), the group message by the receive path's.
    expect(warnings.some((w) => w.code === 'OVERSIZED')).toBe(true);
    expect(refused.every((e) => e.code !== 'INTERNAL')).toBe(true);
    await friend.sendText(victim.accountId, 'after');
    await until(() => texts(victim, friend.accountId).includes('after'), 8000, 'the message after');
  });
});

describe('receive loop: a lying relay', () => {
  const track = closedAfterEach();

  it('an envelope under another sender than encrypted it, and one with an unusable client id: refused, acknowledged, nothing attributed', async () => {
    const { relay, victim, friend, attacker, refused } = await hostileScene(track);
    const friendAddress = addressOf(friend);
    await friend.sendText(victim.accountId, 'hello');
    await until(() => texts(victim, friend.accountId).includes('hello'), 8000, 'the first message');

    const forged = await attacker.encryptFor(victim.accountId, encodeCbor(rawContent({ type: ContentType.text, body: ['from friend?'] })));
    // Delivered with its franking tag (v2 sessions): the relay franks whatever it forwards.
    relay.deliverRaw(friendAddress, addressOf(victim), 'spoofed-1', forged, attacker.tagOf(forged));
    const real = await attacker.encryptFor(victim.accountId, encodeCbor(rawContent({ type: ContentType.text, body: ['bad id'] })));
    relay.deliverRaw(attacker.address, addressOf(victim), 'bad\u0000id', real, attacker.tagOf(real));
    relay.deliverRaw(attacker.address, addressOf(victim), 'x'.repeat(5000), real, attacker.tagOf(real));

    await friend.sendText(victim.accountId, 'after');
    await until(() => texts(victim, friend.accountId).includes('after'), 8000, 'the message after');
    await acknowledged(relay, victim);
    expect(texts(victim, friend.accountId)).toEqual(['hello', 'after']);
    expect(texts(victim, attacker.accountId)).toEqual([]);
    // The spoofed sender is caught by core (the session's peer is not the claimed device); the ids by the receive path.
    expect(refused.map((e) => e.code)).toEqual(['IDENTITY_MISMATCH', 'RELAY_MISBEHAVED', 'RELAY_MISBEHAVED']);
    expect(refused.every((e) => e.code !== 'INTERNAL')).toBe(true);
  });
});
