// Group sessions (sender keys): one rule per test, on both backends. spec/08-groups.md.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  Account,
  type CryptoProvider,
  type DeviceIdentity,
  type GroupDistribution,
  type GroupMember,
  GroupSession,
  ParleyError,
  cryptoProvider,
  decodeCbor,
  fromUtf8,
  groupLimits,
  memberOf,
  nobleBackend,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { expectCode, expectUnchanged } from './support/errors.ts';

const backends = [nodeBackend, nobleBackend] as const;

interface Device {
  readonly device: DeviceIdentity;
  readonly member: GroupMember;
  session: GroupSession;
}

function newDevice(p: CryptoProvider, account = Account.generate(p), deviceId = 1): DeviceIdentity {
  return account.createDevice(deviceId, p);
}

/** n devices (one account each) in one group, every distribution delivered. */
function makeGroup(p: CryptoProvider, n: number, rotateAfter?: number): Device[] {
  const devices = Array.from({ length: n }, () => newDevice(p));
  const members = devices.map((d) => memberOf(d.certificate));
  const first = GroupSession.create(devices[0] as DeviceIdentity, members, { rotateAfter, provider: p });
  const group = devices.map((device, i) => ({
    device,
    member: members[i] as GroupMember,
    session: i === 0 ? first : GroupSession.create(device, members, { groupId: first.groupId, rotateAfter, provider: p }),
  }));
  for (const d of group) deliver(d, d.session.distribution(), group);
  return group;
}

/** Delivers a distribution from `from` to its recipients, as if through their one-to-one sessions. */
function deliver(from: Device, distribution: GroupDistribution, group: readonly Device[]) {
  for (const r of distribution.recipients) {
    const to = group.find((d) => toHex(d.member.accountKey) === toHex(r.accountKey) && d.member.deviceId === r.deviceId);
    to?.session.processDistribution(distribution.bytes, from.device.certificate);
  }
}

const read = (d: Device, message: Uint8Array) => fromUtf8(d.session.decrypt(message).plaintext);

describe.each(backends.map((b) => [b.name, b] as const))('group sessions (%s backend)', (_name, backend) => {
  const p = cryptoProvider(backend);

  it('every member decrypts every message once, from the same bytes, and learns who sent it', () => {
    const g = makeGroup(p, 4);
    for (const [i, sender] of g.entries()) {
      const { message, distribution } = sender.session.encrypt(utf8(`from ${i}`));
      expect(distribution).toBeNull();
      for (const r of g) {
        if (r === sender) continue;
        const out = r.session.decrypt(message);
        expect(fromUtf8(out.plaintext)).toBe(`from ${i}`);
        expect(toHex(out.sender.accountKey)).toBe(toHex(sender.member.accountKey));
        expect(out.iteration).toBe(0);
        expectUnchanged(r.session, () => r.session.decrypt(message), 'DUPLICATE_MESSAGE');
      }
    }
  });

  it('reads out-of-order messages, each exactly once, and deletes each skipped key on use', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const msgs = Array.from({ length: 8 }, (_, i) => a.session.encrypt(utf8(`m${i}`)).message);
    const skippedIn = () => (decodeCbor(b.session.serialize(), 'r', 1 << 20) as unknown[][])[9]?.length;
    expect(read(b, msgs[5] as Uint8Array)).toBe('m5');
    expect(skippedIn()).toBe(5);
    for (const i of [2, 0, 7, 1, 4, 3, 6]) expect(read(b, msgs[i] as Uint8Array)).toBe(`m${i}`);
    expect(skippedIn()).toBe(0);
    for (const m of msgs) expectUnchanged(b.session, () => b.session.decrypt(m), 'DUPLICATE_MESSAGE');
  });

  it('the cost of a message does not depend on the group size: one ciphertext, one signature', () => {
    const small = makeGroup(p, 2);
    const large = makeGroup(p, 12);
    const a = (small[0] as Device).session.encrypt(utf8('same text')).message;
    const b = (large[0] as Device).session.encrypt(utf8('same text')).message;
    expect(a.length).toBe(b.length);
  });
});

describe('group sessions: chains and bounds', () => {
  const p = cryptoProvider(nodeBackend);

  it('refuses a jump past MAX_GROUP_FORWARD_JUMP, then accepts the message once the gap is read', () => {
    const [a, b] = makeGroup(p, 2, 1 << 20) as [Device, Device];
    const msgs = Array.from({ length: groupLimits.MAX_GROUP_FORWARD_JUMP + 2 }, (_, i) => a.session.encrypt(utf8(`${i}`)).message);
    const last = msgs[msgs.length - 1] as Uint8Array;
    expectUnchanged(b.session, () => b.session.decrypt(last), 'TOO_FAR_AHEAD');
    expect(read(b, msgs[groupLimits.MAX_GROUP_FORWARD_JUMP] as Uint8Array)).toBe(`${groupLimits.MAX_GROUP_FORWARD_JUMP}`);
    expect(read(b, last)).toBe(`${msgs.length - 1}`);
  });

  it('keeps at most MAX_GROUP_SKIPPED_KEYS skipped keys, evicting the oldest', () => {
    const [a, b] = makeGroup(p, 2, 1 << 20) as [Device, Device];
    const jump = groupLimits.MAX_GROUP_FORWARD_JUMP;
    const msgs = Array.from({ length: 3 * jump + 1 }, (_, i) => a.session.encrypt(utf8(`${i}`)).message);
    for (const i of [jump, 2 * jump, 3 * jump]) expect(read(b, msgs[i] as Uint8Array)).toBe(`${i}`);
    const kept = jump + 2 * (jump - 1); // 0..jump-1, then the gaps between the three read messages
    const evicted = kept - groupLimits.MAX_GROUP_SKIPPED_KEYS;
    expect(evicted).toBeGreaterThan(0);
    expectUnchanged(b.session, () => b.session.decrypt(msgs[evicted - 1] as Uint8Array), 'DUPLICATE_MESSAGE');
    expect(read(b, msgs[evicted] as Uint8Array)).toBe(`${evicted}`);
  });

  it('rotates after the configured number of messages; late messages on the old chain still decrypt', () => {
    const [a, b, c] = makeGroup(p, 3, 3) as [Device, Device, Device];
    const old = [0, 1, 2].map((i) => a.session.encrypt(utf8(`old${i}`)));
    expect(old.every((o) => o.distribution === null)).toBe(true);
    const fourth = a.session.encrypt(utf8('new0'));
    expect(fourth.distribution).not.toBeNull();
    expect(a.session.sendingPosition).toEqual({ generation: 1, epoch: 0, iteration: 1 });
    const distribution = fourth.distribution as GroupDistribution;
    expect(distribution.recipients.length).toBe(2);
    // Before the distribution arrives the message is refused, harmlessly.
    expectUnchanged(b.session, () => b.session.decrypt(fourth.message), 'UNKNOWN_CHAIN');
    deliver(a, distribution, [b, c]);
    expect(read(b, fourth.message)).toBe('new0');
    expect(read(b, (old[1] as { message: Uint8Array }).message)).toBe('old1');
  });

  it('rotates on request, and a re-sent current distribution is a harmless duplicate', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const before = a.session.encrypt(utf8('before')).message;
    const distribution = a.session.rotate();
    expect(a.session.sendingPosition.generation).toBe(1);
    deliver(a, distribution, [a, b]);
    expect(read(b, a.session.encrypt(utf8('after')).message)).toBe('after');
    expect(read(b, before)).toBe('before');
    expectUnchanged(b.session, () => b.session.processDistribution(distribution.bytes, a.device.certificate), 'DUPLICATE_MESSAGE');
  });

  it('keeps MAX_CHAINS_PER_SENDER chains per sender and refuses distributions of dropped ones', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const first = a.session.encrypt(utf8('gen0')).message;
    const dists: GroupDistribution[] = [];
    for (let i = 0; i < groupLimits.MAX_CHAINS_PER_SENDER; i++) dists.push(a.session.rotate());
    for (const d of dists) deliver(a, d, [b]);
    // Generation 0 was evicted when the sixth chain arrived: its late message has nowhere to go.
    expectUnchanged(b.session, () => b.session.decrypt(first), 'UNKNOWN_CHAIN');
    expect(read(b, a.session.encrypt(utf8('latest')).message)).toBe('latest');
  });

  it('accepts distributions arriving out of order for chains still within the kept window', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const d1 = a.session.rotate();
    const m1 = a.session.encrypt(utf8('gen1')).message;
    const d2 = a.session.rotate();
    const m2 = a.session.encrypt(utf8('gen2')).message;
    deliver(a, d2, [b]);
    expect(read(b, m2)).toBe('gen2');
    deliver(a, d1, [b]);
    expect(read(b, m1)).toBe('gen1');
  });
});

describe('group sessions: membership', () => {
  const p = cryptoProvider(nodeBackend);

  it('a newcomer reads what is sent after it joined and nothing sent before', () => {
    const g = makeGroup(p, 3);
    const [a, b] = g as [Device, Device];
    const history = [a.session.encrypt(utf8('h0')).message, b.session.encrypt(utf8('h1')).message];
    const n = newDevice(p);
    const nm = memberOf(n.certificate);
    const dists = g.map((d) => ({ from: d, distribution: d.session.addMembers([nm]) }));
    for (const { distribution } of dists) expect(distribution.recipients.map((r) => r.deviceId)).toEqual([nm.deviceId]);
    const newcomer: Device = {
      device: n,
      member: nm,
      session: GroupSession.create(n, a.session.members, { groupId: a.session.groupId, epoch: a.session.epoch, provider: p }),
    };
    const all = [...g, newcomer];
    for (const { from, distribution } of dists) deliver(from, distribution, all);
    deliver(newcomer, newcomer.session.distribution(), all);
    // History: the newcomer holds the chains only from their current iteration on.
    for (const h of history) expectUnchanged(newcomer.session, () => newcomer.session.decrypt(h), 'DUPLICATE_MESSAGE');
    const now = a.session.encrypt(utf8('welcome')).message;
    for (const d of all.slice(1)) expect(read(d, now)).toBe('welcome');
    expect(read(a, newcomer.session.encrypt(utf8('thanks')).message)).toBe('thanks');
  });

  it('a removed device reads nothing sent after its removal, and its own messages are refused', () => {
    const g = makeGroup(p, 4);
    const [a, b, c, gone] = g as [Device, Device, Device, Device];
    const inFlight = gone.session.encrypt(utf8('sent just before removal')).message;
    const remaining = [a, b, c];
    const dists = remaining.map((d) => ({ from: d, distribution: d.session.removeMembers([gone.member]) }));
    for (const { from, distribution } of dists) {
      expect(from.session.epoch).toBe(1);
      expect(distribution.recipients.length).toBe(2);
      expect(
        distribution.recipients.some((r) => r.deviceId === gone.member.deviceId && toHex(r.accountKey) === toHex(gone.member.accountKey)),
      ).toBe(false);
      deliver(from, distribution, remaining);
    }
    for (const sender of remaining) {
      const m = sender.session.encrypt(utf8('after removal')).message;
      for (const r of remaining) if (r !== sender) expect(read(r, m)).toBe('after removal');
      expectUnchanged(gone.session, () => gone.session.decrypt(m), 'UNKNOWN_CHAIN');
    }
    // Even a removal distribution sent to it by mistake is refused: it comes from epoch 1 for a chain it would then hold,
    // but the remaining members never send one, and the removed device's messages no longer count.
    expectUnchanged(a.session, () => a.session.decrypt(inFlight), 'UNKNOWN_SENDER');
    expectUnchanged(a.session, () => a.session.decrypt(gone.session.encrypt(utf8('still here?')).message), 'UNKNOWN_SENDER');
  });

  it('handles a device added to and one removed from an account in one change', () => {
    const account = Account.generate(p);
    const phone = newDevice(p, account, 1);
    const others = [newDevice(p), newDevice(p)];
    const devices = [phone, ...others];
    const members = devices.map((d) => memberOf(d.certificate));
    const first = GroupSession.create(phone, members, { provider: p });
    const g: Device[] = devices.map((device, i) => ({
      device,
      member: members[i] as GroupMember,
      session: i === 0 ? first : GroupSession.create(device, members, { groupId: first.groupId, provider: p }),
    }));
    for (const d of g) deliver(d, d.session.distribution(), g);
    // The phone is replaced by a laptop of the same account.
    const laptop = newDevice(p, account, 2);
    const lm = memberOf(laptop.certificate);
    const stay = g.slice(1);
    const dists = stay.map((d) => ({
      from: d,
      distribution: d.session.changeMembers({ add: [lm], remove: [memberOf(phone.certificate)] }),
    }));
    const newcomer: Device = {
      device: laptop,
      member: lm,
      session: GroupSession.create(laptop, (stay[0] as Device).session.members, { groupId: first.groupId, epoch: 1, provider: p }),
    };
    const now = [...stay, newcomer];
    for (const { from, distribution } of dists) {
      expect(distribution.recipients.length).toBe(2);
      deliver(from, distribution, now);
    }
    deliver(newcomer, newcomer.session.distribution(), now);
    const m = (stay[0] as Device).session.encrypt(utf8('hi laptop')).message;
    expect(read(newcomer, m)).toBe('hi laptop');
    expect(read(stay[1] as Device, newcomer.session.encrypt(utf8('hi all')).message)).toBe('hi all');
    expectCode(() => (g[0] as Device).session.decrypt(m), 'UNKNOWN_CHAIN');
  });

  it('refuses misuse of the membership API with TypeError/RangeError and changes nothing', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const before = toHex(a.session.serialize());
    expect(() => a.session.addMembers([b.member])).toThrow(RangeError);
    expect(() => a.session.removeMembers([a.member])).toThrow(RangeError);
    expect(() => a.session.removeMembers([memberOf(newDevice(p).certificate)])).toThrow(RangeError);
    const n = memberOf(newDevice(p).certificate);
    expect(() => a.session.addMembers([n, n])).toThrow(RangeError);
    expect(() => a.session.addMembers([{ accountKey: new Uint8Array(31), deviceId: 1 }])).toThrow(RangeError);
    expect(() => a.session.addMembers([{ accountKey: new Uint8Array(32), deviceId: 0 }])).toThrow(RangeError);
    expect(() => a.session.distribution([n])).toThrow(RangeError);
    expect(() => a.session.distribution([a.member])).toThrow(RangeError);
    expect(a.session.distribution([b.member]).recipients.length).toBe(1);
    expect(toHex(a.session.serialize())).toBe(before);
  });
});

describe('group sessions: epochs and the grace window', () => {
  const p = cryptoProvider(nodeBackend);

  it('refuses more than MAX_GROUP_MEMBER_DEVICES member devices with OVERSIZED (typed, state unchanged)', () => {
    const device = newDevice(p);
    const account = new Uint8Array(32).fill(9);
    const others = Array.from({ length: groupLimits.MAX_GROUP_MEMBER_DEVICES - 1 }, (_, i) => ({ accountKey: account, deviceId: i + 1 }));
    const full = GroupSession.create(device, others, { provider: p });
    const before = toHex(full.serialize());
    const extra = { accountKey: account, deviceId: groupLimits.MAX_GROUP_MEMBER_DEVICES };
    expectCode(() => full.addMembers([extra]), 'OVERSIZED');
    expect(toHex(full.serialize())).toBe(before);
    expectCode(() => GroupSession.create(device, [...others, extra], { provider: p }), 'OVERSIZED');
    // Replacing one device by another in one change stays within the bound.
    full.changeMembers({ remove: [others[0] as GroupMember], add: [extra] });
    expect(full.members.length).toBe(groupLimits.MAX_GROUP_MEMBER_DEVICES);
  });

  it('refuses a joining epoch that would leave too few removals (INVALID_STATE, not RangeError), and keeps 2^31-1 of headroom', () => {
    const device = newDevice(p);
    // The joining epoch is the inviter's word (spec/08-groups.md §6.1): 0xfffffffe would make every removal fail.
    expectCode(() => GroupSession.create(device, [], { epoch: 0xfffffffe, provider: p }), 'INVALID_STATE');
    expectCode(() => GroupSession.create(device, [], { epoch: groupLimits.MAX_GROUP_JOIN_EPOCH + 1, provider: p }), 'INVALID_STATE');
    expect(() => GroupSession.create(device, [], { epoch: -1, provider: p })).toThrow(RangeError);
    const [other] = makeGroup(p, 1) as [Device];
    const joined = GroupSession.create(device, [other.member], { epoch: groupLimits.MAX_GROUP_JOIN_EPOCH, provider: p });
    joined.removeMembers([other.member]);
    expect(joined.epoch).toBe(groupLimits.MAX_GROUP_JOIN_EPOCH + 1);
    expect(groupLimits.MAX_GROUP_COUNTER - groupLimits.MAX_GROUP_JOIN_EPOCH).toBeGreaterThanOrEqual(2 ** 31 - 1);
  });

  it('accepts in-flight messages of the previous epoch, from a sender that has not yet rotated', () => {
    const [a, b, c] = makeGroup(p, 3) as [Device, Device, Device];
    const before = a.session.encrypt(utf8('sent in epoch 0')).message;
    // b applies the removal of c first; a has not yet, and keeps sending on its epoch-0 chain.
    deliver(b, b.session.removeMembers([c.member]), [a]);
    const lagging = a.session.encrypt(utf8('a still in epoch 0')).message;
    expect(b.session.epoch).toBe(1);
    expect(read(b, lagging)).toBe('a still in epoch 0');
    expect(read(b, before)).toBe('sent in epoch 0');
    // a catches up: its new chain is for epoch 1.
    deliver(a, a.session.removeMembers([c.member]), [b]);
    expect(b.session.decrypt(a.session.encrypt(utf8('epoch 1')).message).epoch).toBe(1);
  });

  it('stops accepting a previous-epoch chain EPOCH_GRACE_MESSAGES past where the receiver was', () => {
    const [a, b, c] = makeGroup(p, 3, 1 << 20) as [Device, Device, Device];
    b.session.removeMembers([c.member]);
    const msgs = Array.from({ length: groupLimits.EPOCH_GRACE_MESSAGES + 1 }, (_, i) => a.session.encrypt(utf8(`${i}`)).message);
    const last = msgs[groupLimits.EPOCH_GRACE_MESSAGES] as Uint8Array;
    expectUnchanged(b.session, () => b.session.decrypt(last), 'STALE_EPOCH');
    expect(read(b, msgs[groupLimits.EPOCH_GRACE_MESSAGES - 1] as Uint8Array)).toBe(`${groupLimits.EPOCH_GRACE_MESSAGES - 1}`);
  });

  it('refuses messages and distributions two epochs old, and drops those chains', () => {
    const [a, b, c, d] = makeGroup(p, 4) as [Device, Device, Device, Device];
    const epoch0 = a.session.encrypt(utf8('epoch 0')).message;
    const staleDistribution = a.session.distribution([b.member]);
    b.session.removeMembers([c.member]);
    b.session.removeMembers([d.member]);
    expect(b.session.epoch).toBe(2);
    const e = expectUnchanged(b.session, () => b.session.decrypt(epoch0), 'STALE_EPOCH');
    expect(e.details).toMatchObject({ epoch: 0, current: 2 });
    expectUnchanged(b.session, () => b.session.processDistribution(staleDistribution.bytes, a.device.certificate), 'STALE_EPOCH');
    expect(b.session.hasChainFrom(a.member)).toBe(false);
  });

  it('installs a late distribution of the previous epoch within the grace window', () => {
    const [a, b, c] = makeGroup(p, 3) as [Device, Device, Device];
    a.session.rotate(); // generation 1, epoch 0: not yet delivered
    const late = a.session.distribution([b.member]);
    const m = a.session.encrypt(utf8('gen 1, epoch 0')).message;
    b.session.removeMembers([c.member]);
    b.session.processDistribution(late.bytes, a.device.certificate);
    expect(read(b, m)).toBe('gen 1, epoch 0');
  });

  it('accepts a chain from a sender already in a later epoch (the receiver applies the change later)', () => {
    const [a, b, c] = makeGroup(p, 3) as [Device, Device, Device];
    deliver(a, a.session.removeMembers([c.member]), [b]);
    const m = a.session.encrypt(utf8('from epoch 1')).message;
    expect(b.session.epoch).toBe(0);
    expect(b.session.decrypt(m).epoch).toBe(1);
    b.session.removeMembers([c.member]);
    expect(read(b, a.session.encrypt(utf8('both in epoch 1')).message)).toBe('both in epoch 1');
  });
});
