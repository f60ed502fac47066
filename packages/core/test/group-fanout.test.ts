// Distributions through real one-to-one sessions, and a group of 1,000 member devices. spec/08-groups.md §4.3 and §7.
import { describe, expect, it } from 'vitest';
import {
  Account,
  type CryptoProvider,
  type DeviceIdentity,
  type GroupMember,
  GroupSession,
  ParleyError,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  decodeCbor,
  fromUtf8,
  memberOf,
  nobleBackend,
  sealDistribution,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';

interface Person {
  readonly device: DeviceIdentity;
  readonly prekeys: PreKeyStore;
  readonly member: GroupMember;
  readonly group: GroupSession;
  /** One-to-one records with other devices, by their member key. */
  readonly sessions: Map<string, SessionRecord>;
}

const key = (m: GroupMember) => `${toHex(m.accountKey)}.${m.deviceId}`;

function people(p: CryptoProvider, n: number): Person[] {
  const devices = Array.from({ length: n }, () => Account.generate(p).createDevice(1, p));
  const members = devices.map((d) => memberOf(d.certificate));
  const first = GroupSession.create(devices[0] as DeviceIdentity, members, { provider: p });
  return devices.map((device, i) => ({
    device,
    prekeys: PreKeyStore.generate(device, { oneTimePreKeys: n, kemPreKeys: n }, p),
    member: members[i] as GroupMember,
    group: i === 0 ? first : GroupSession.create(device, members, { groupId: first.groupId, provider: p }),
    sessions: new Map(),
  }));
}

/** `from` starts a one-to-one session with `to`; `to` accepts it and answers, so both sides hold it. */
function connect(p: CryptoProvider, from: Person, to: Person) {
  const a = SessionRecord.initiate(from.device, to.prekeys.bundle(), { provider: p });
  const b = new SessionRecord(p);
  b.decrypt(a.encrypt(utf8('hi')), { device: to.device, prekeys: to.prekeys });
  a.decrypt(b.encrypt(utf8('hello')));
  from.sessions.set(key(to.member), a);
  to.sessions.set(key(from.member), b);
}

function expectCode(fn: () => unknown, code: string) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    expect((e as ParleyError).code).toBe(code);
    return;
  }
  throw new Error(`expected ParleyError ${code}`);
}

describe.each([nodeBackend, nobleBackend].map((b) => [b.name, b] as const))(
  'distributions through one-to-one sessions (%s backend)',
  (_n, backend) => {
    const p = cryptoProvider(backend);

    it('travel encrypted, as the same plaintext for everyone, and are accepted with the session certificate', () => {
      const everyone = people(p, 4);
      const [a, ...rest] = everyone as [Person, ...Person[]];
      for (const r of rest) connect(p, a, r);
      const distribution = a.group.distribution();
      const sealed = sealDistribution(distribution, (m) => a.sessions.get(key(m)));
      expect(sealed.map((s) => s.recipient.deviceId)).toEqual(rest.map((r) => r.member.deviceId));
      const chainKey = toHex((decodeCbor(distribution.bytes, 'd', 256) as Uint8Array[])[7] as Uint8Array);
      for (const [i, s] of sealed.entries()) {
        expect(toHex(s.message)).not.toContain(chainKey);
        const r = rest[i] as Person;
        const out = (r.sessions.get(key(a.member)) as SessionRecord).decrypt(s.message);
        expect(toHex(out.plaintext)).toBe(toHex(distribution.bytes));
        expect(r.group.processDistribution(out.plaintext, out.sender).generation).toBe(0);
      }
      const m = a.group.encrypt(utf8('to all')).message;
      for (const r of rest) expect(fromUtf8(r.group.decrypt(m).plaintext)).toBe('to all');
    });

    it('a distribution forwarded by another member through its own session is FORGED_DISTRIBUTION', () => {
      const [a, b, c] = people(p, 3) as [Person, Person, Person];
      connect(p, a, c);
      connect(p, c, b);
      const [toC] = sealDistribution(a.group.distribution([c.member]), (m) => a.sessions.get(key(m)));
      const plain = (c.sessions.get(key(a.member)) as SessionRecord).decrypt((toC as { message: Uint8Array }).message);
      c.group.processDistribution(plain.plaintext, plain.sender);
      // c re-sends a's chain to b under its own session: b sees c's certificate.
      const relayed = (c.sessions.get(key(b.member)) as SessionRecord).encrypt(plain.plaintext);
      const atB = (b.sessions.get(key(c.member)) as SessionRecord).decrypt(relayed);
      const before = toHex(b.group.serialize());
      expectCode(() => b.group.processDistribution(atB.plaintext, atB.sender), 'FORGED_DISTRIBUTION');
      expect(toHex(b.group.serialize())).toBe(before);
    });

    it('a missing session is NO_SESSION and a session with another device IDENTITY_MISMATCH, before any record advances', () => {
      const [a, b, c] = people(p, 3) as [Person, Person, Person];
      connect(p, a, b);
      connect(p, a, c);
      const records = () => [...a.sessions.values()].map((r) => toHex(r.serialize())).join();
      const before = records();
      const withoutC = (m: GroupMember) => (key(m) === key(c.member) ? undefined : a.sessions.get(key(m)));
      expectCode(() => sealDistribution(a.group.distribution(), withoutC), 'NO_SESSION');
      const swapped = (m: GroupMember) => a.sessions.get(key(m) === key(c.member) ? key(b.member) : key(m));
      expectCode(() => sealDistribution(a.group.distribution(), swapped), 'IDENTITY_MISMATCH');
      expect(records()).toBe(before);
    });
  },
);

describe('a group of 1,000 member devices', () => {
  const p = cryptoProvider(nodeBackend);

  it('every member reads a message; a removal reaches 998 devices and locks out the removed one', () => {
    const n = 1000;
    const devices = Array.from({ length: n }, () => Account.generate(p).createDevice(1, p));
    const members = devices.map((d) => memberOf(d.certificate));
    const sender = GroupSession.create(devices[0] as DeviceIdentity, members, { provider: p });
    // Receivers know the sender (a full member list per receiver would only repeat the same work 999 times).
    const receivers = devices
      .slice(1)
      .map((d) => GroupSession.create(d, [members[0] as GroupMember], { groupId: sender.groupId, provider: p }));
    const first = sender.distribution();
    expect(first.recipients.length).toBe(n - 1);
    const cert = (devices[0] as DeviceIdentity).certificate;
    for (const r of receivers) r.processDistribution(first.bytes, cert);
    const m1 = sender.encrypt(utf8('hello, thousand')).message;
    for (const r of receivers) expect(fromUtf8(r.decrypt(m1).plaintext)).toBe('hello, thousand');

    const removed = receivers[n - 2] as GroupSession;
    const removal = sender.removeMembers([members[n - 1] as GroupMember]);
    expect(removal.recipients.length).toBe(n - 2);
    expect(sender.epoch).toBe(1);
    for (const r of receivers.slice(0, n - 2)) r.processDistribution(removal.bytes, cert);
    const m2 = sender.encrypt(utf8('after removal')).message;
    for (const r of receivers.slice(0, n - 2)) expect(fromUtf8(r.decrypt(m2).plaintext)).toBe('after removal');
    expectCode(() => removed.decrypt(m2), 'UNKNOWN_CHAIN');

    const record = sender.serialize();
    expect(record.length).toBeLessThan(200 * n);
    expect(toHex(GroupSession.deserialize(record, p).serialize())).toBe(toHex(record));
  });
});
