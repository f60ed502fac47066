// Group records saved by an earlier release must load and keep working (storage stability), and damaged records must
// be refused as a whole. spec/08-groups.md §8.
//
// fixtures/group-records-v1.json was generated once, with a deterministic provider, by running this file with
// PARLEY_WRITE_GROUP_FIXTURE=1; it is never regenerated for format version 1.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  Account,
  DeviceIdentity,
  GroupSession,
  ParleyError,
  cryptoProvider,
  decodeCbor,
  encodeCbor,
  fromHex,
  fromUtf8,
  memberOf,
  nobleBackend,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { deterministicProvider } from '../src/testing.ts';

const FIXTURE = new URL('./fixtures/group-records-v1.json', import.meta.url);

/** The history behind the fixture: three devices, skipped keys, a removal (epoch 1), messages sent after the save. */
function makeFixture() {
  const p = deterministicProvider(nobleBackend, 'parley group records v1');
  const [alice, bob, carol] = [0, 1, 2].map(() => Account.generate(p).createDevice(1, p)) as [
    DeviceIdentity,
    DeviceIdentity,
    DeviceIdentity,
  ];
  const members = [alice, bob, carol].map((d) => memberOf(d.certificate));
  const a = GroupSession.create(alice, members, { provider: p, rotateAfter: 50 });
  const b = GroupSession.create(bob, members, { groupId: a.groupId, provider: p, rotateAfter: 50 });
  const c = GroupSession.create(carol, members, { groupId: a.groupId, provider: p, rotateAfter: 50 });
  for (const [from, sess] of [
    [alice, a],
    [bob, b],
    [carol, c],
  ] as const) {
    const d = sess.distribution();
    for (const [to, s] of [
      [alice, a],
      [bob, b],
      [carol, c],
    ] as const) {
      if (to !== from) s.processDistribution(d.bytes, from.certificate);
    }
  }
  const early = a.encrypt(utf8('epoch 0, read late')).message;
  b.decrypt(a.encrypt(utf8('epoch 0, read first')).message); // bob keeps a skipped key for `early`
  a.decrypt(b.encrypt(utf8('from bob')).message);
  const removeCarol = [memberOf(carol.certificate)];
  const da = a.removeMembers(removeCarol);
  const db = b.removeMembers(removeCarol);
  b.processDistribution(da.bytes, alice.certificate);
  a.processDistribution(db.bytes, bob.certificate);
  const saved = { alice: toHex(a.serialize()), bob: toHex(b.serialize()) };
  const next = a.encrypt(utf8('epoch 1, after the save')).message;
  return {
    description: 'GroupSession records (format version 1) of alice and bob after a removal; messages sent after the save',
    alice: { device: toHex(alice.serialize()), group: saved.alice },
    bob: { device: toHex(bob.serialize()), group: saved.bob },
    toBob: [
      { message: toHex(early), plaintext: 'epoch 0, read late' },
      { message: toHex(next), plaintext: 'epoch 1, after the save' },
    ],
  };
}

if (process.env.PARLEY_WRITE_GROUP_FIXTURE === '1') writeFileSync(FIXTURE, `${JSON.stringify(makeFixture(), null, 2)}\n`);
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ReturnType<typeof makeFixture>;

describe.each([nodeBackend, nobleBackend].map((b) => [b.name, b] as const))('group records v1 (%s backend)', (_n, backend) => {
  const p = cryptoProvider(backend);

  it('load, re-serialize to the same bytes, decrypt messages sent after the save, and encrypt the same bytes again', () => {
    const alice = GroupSession.deserialize(fromHex(fixture.alice.group), p);
    const bob = GroupSession.deserialize(fromHex(fixture.bob.group), p);
    expect(toHex(alice.serialize())).toBe(fixture.alice.group);
    expect(toHex(bob.serialize())).toBe(fixture.bob.group);
    expect([alice.epoch, bob.epoch, alice.members.length]).toEqual([1, 1, 2]);
    for (const m of fixture.toBob) expect(fromUtf8(bob.decrypt(fromHex(m.message)).plaintext)).toBe(m.plaintext);
    // Encryption from a saved state is deterministic: the same state, KDF, padding, header and signature give the same bytes.
    const again = alice.encrypt(utf8('epoch 1, after the save')).message;
    expect(toHex(again)).toBe((fixture.toBob[1] as { message: string }).message);
    const aliceDevice = DeviceIdentity.deserialize(fromHex(fixture.alice.device), p);
    expect(bob.isMember(memberOf(aliceDevice.certificate))).toBe(true);
    expect(bob.hasChainFrom(memberOf(aliceDevice.certificate))).toBe(true);
  });

  it('a message written today is read by a record saved by v1', () => {
    const alice = GroupSession.deserialize(fromHex(fixture.alice.group), p);
    const bob = GroupSession.deserialize(fromHex(fixture.bob.group), p);
    alice.encrypt(utf8('skip one'));
    expect(fromUtf8(bob.decrypt(alice.encrypt(utf8('today')).message).plaintext)).toBe('today');
  });
});

describe('damaged group records', () => {
  const p = cryptoProvider(nodeBackend);
  const bytes = fromHex(fixture.bob.group);
  const fields = decodeCbor(bytes, 'r', 1 << 20) as unknown[];
  const withField = (i: number, v: unknown) => encodeCbor(fields.map((f, j) => (j === i ? v : f)) as never);
  const code = (b: Uint8Array) => {
    try {
      GroupSession.deserialize(b, p);
    } catch (e) {
      expect(e).toBeInstanceOf(ParleyError);
      return (e as ParleyError).code;
    }
    return 'loaded';
  };

  it('is BAD_RECORD when truncated, mistagged or inconsistent, UNSUPPORTED_VERSION for another version', () => {
    for (const n of [0, 1, 10, bytes.length - 1]) expect(code(bytes.subarray(0, n))).toBe('BAD_RECORD');
    expect(code(withField(0, 'parley/session-record'))).toBe('BAD_RECORD');
    expect(code(withField(1, 2))).toBe('UNSUPPORTED_VERSION');
    expect(code(encodeCbor(['parley/group-session', 2, 'a future layout']))).toBe('UNSUPPORTED_VERSION');
    expect(code(withField(4, 0))).toBe('BAD_RECORD');
    const members = fields[6] as unknown[];
    expect(code(withField(6, [members[0], members[0]]))).toBe('BAD_RECORD');
    expect(
      code(
        withField(
          6,
          members.filter((m) => toHex((m as [Uint8Array])[0]) !== toHex((fields[5] as [Uint8Array])[0])),
        ),
      ),
    ).toBe('BAD_RECORD');
    const receiving = fields[8] as [unknown, number, unknown[]][];
    const entry = receiving[0] as [unknown, number, unknown[]];
    expect(code(withField(8, [entry, entry]))).toBe('BAD_RECORD');
    expect(code(withField(8, [[entry[0], 99, entry[2]]]))).toBe('BAD_RECORD');
    expect(code(withField(8, [[fields[5], 0, entry[2]]]))).toBe('BAD_RECORD');
    const skipped = fields[9] as unknown[][];
    expect(skipped.length).toBeGreaterThan(0);
    const k = skipped[0] as unknown[];
    expect(code(withField(9, [[k[0], k[1], 9999, k[3], k[4]]]))).toBe('BAD_RECORD');
    expect(code(withField(9, [k, k]))).toBe('BAD_RECORD');
    expect(code(withField(7, [0, 0, 0, new Uint8Array(32), new Uint8Array(31)]))).toBe('BAD_RECORD');
    expect(code(bytes)).toBe('loaded');
  });
});
