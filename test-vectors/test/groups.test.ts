// groups.json through core's GroupSession: the chain KDF, the scripted history
// replayed with the vector's random values (byte-exact), and every refused
// message, distribution and record.
import { type DeviceIdentity, GroupSession, cryptoProvider, decodeCertificate, fromHex } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { groupMessageKeys, nextGroupChainKey } from '../../packages/core/src/group/kdf.ts';
import { VectorRandom, type Vec, backends, bytes, deviceFrom, expectRefusal, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('groups.json');

const member = (m: Vec) => ({ accountKey: fromHex(m.accountKey), deviceId: m.deviceId });

/** Replays a scenario; returns the serialized sessions after each step (index 0: before any). */
function replay(group: Vec, test: Vec, backend: (typeof backends)[number]): Record<string, string>[] {
  const rng = new VectorRandom(backend);
  const devices: Record<string, DeviceIdentity> = {};
  for (const [who, d] of Object.entries(group.devices)) devices[who] = deviceFrom(d, rng.provider);
  const sessions = new Map<string, GroupSession>();
  const distributions = new Map<string, Uint8Array>();
  const messages = new Map<string, Uint8Array>();
  const snapshots: Record<string, string>[] = [{}];
  const session = (who: string) => sessions.get(who) as GroupSession;
  for (const step of test.steps) {
    const at = `step ${step.step} (${step.action} ${step.name ?? step.party})`;
    switch (step.action) {
      case 'create': {
        rng.push(step.groupIdDrawn ? step.groupId : null, step.chain.chainKey, step.chain.signingSeed);
        const options = step.groupIdDrawn ? {} : { groupId: bytes(step.groupId), epoch: step.epoch };
        const s = GroupSession.create(devices[step.party] as DeviceIdentity, step.members.map(member), options);
        expect(hexOf(s.groupId), at).toBe(step.groupId);
        sessions.set(step.party, s);
        break;
      }
      case 'distribute': {
        const s = session(step.party);
        const c = step.change;
        rng.push(step.newChain?.chainKey, step.newChain?.signingSeed);
        const d =
          c === null
            ? s.distribution()
            : c.kind === 'rotate'
              ? s.rotate()
              : c.kind === 'add'
                ? s.addMembers(c.members.map(member))
                : s.removeMembers(c.members.map(member));
        expect(hexOf(d.bytes), at).toBe(step.distribution);
        expect(
          d.recipients.map((m) => [hexOf(m.accountKey), m.deviceId]),
          at,
        ).toEqual(step.recipients.map((m: Vec) => [m.accountKey, m.deviceId]));
        expect(s.epoch, at).toBe(step.epochAfter);
        distributions.set(step.name, d.bytes);
        break;
      }
      case 'accept': {
        const out = session(step.party).processDistribution(
          distributions.get(step.name) as Uint8Array,
          decodeCertificate(bytes(step.senderCertificate)),
        );
        expect([out.generation, out.epoch, out.iteration], at).toEqual([step.generation, step.epoch, step.iteration]);
        break;
      }
      case 'encrypt': {
        const out = session(step.party).encrypt(bytes(step.plaintext));
        expect(hexOf(out.message), at).toBe(step.message);
        expect(out.distribution, at).toBeNull();
        messages.set(step.name, out.message);
        break;
      }
      case 'decrypt': {
        const out = session(step.party).decrypt(messages.get(step.name) as Uint8Array);
        expect(hexOf(out.plaintext), at).toBe(step.plaintext);
        break;
      }
      default:
        throw new Error(`unknown action ${step.action}`);
    }
    rng.expectUsed();
    const snap: Record<string, string> = {};
    for (const [who, s] of sessions) snap[who] = hexOf(s.serialize());
    snapshots.push(snap);
  }
  return snapshots;
}

describe.each(backends.map((b) => [b.name, b] as const))('groups.json (%s backend)', (_name, backend) => {
  const p = cryptoProvider(backend);
  const scenarios = new Map<string, Record<string, string>[]>();
  const saved = (test: Vec): string => {
    const s = scenarios.get(test.scenario)?.[test.afterStep]?.[test.party];
    if (!s) throw new Error(`no ${test.party} session after step ${test.afterStep} of ${test.scenario} (did the replay run?)`);
    return s;
  };

  it('the group chain KDF', () => {
    for (const { test } of testsOf(file, 'GroupChainKdf')) {
      const mk = groupMessageKeys(backend, bytes(test.chainKey));
      expect([hexOf(mk.key), hexOf(mk.nonce), hexOf(nextGroupChainKey(backend, bytes(test.chainKey)))]).toEqual([
        test.messageKey,
        test.nonce,
        test.nextChainKey,
      ]);
    }
  });

  it('replays every scenario byte for byte', () => {
    for (const { group, test } of testsOf(file, 'GroupScenario')) scenarios.set(test.name, replay(group, test, backend));
  });

  it('refuses every invalid group message with its code, leaving the session unchanged', () => {
    for (const { test } of testsOf(file, 'GroupMessageDelivery')) {
      const session = GroupSession.deserialize(bytes(saved(test)), p);
      if (expectRefusal(() => session.decrypt(bytes(test.message)), test, backend))
        expect(hexOf(session.serialize()), test.comment).toBe(saved(test));
    }
  });

  it('refuses every invalid distribution with its code, leaving the session unchanged', () => {
    for (const { test } of testsOf(file, 'DistributionDelivery')) {
      const session = GroupSession.deserialize(bytes(saved(test)), p);
      const certificate = decodeCertificate(bytes(test.senderCertificate));
      if (expectRefusal(() => session.processDistribution(bytes(test.distribution), certificate), test, backend)) {
        expect(hexOf(session.serialize()), test.comment).toBe(saved(test));
      }
    }
  });

  it('group records load, save back, and decrypt what came later; damaged ones are refused', () => {
    for (const { test } of testsOf(file, 'GroupRecord')) {
      expect(test.record).toBe(saved(test));
      const session = GroupSession.deserialize(bytes(test.record), p);
      expect(hexOf(session.serialize())).toBe(test.record);
      for (const d of test.decrypts) expect(hexOf(session.decrypt(bytes(d.message)).plaintext), d.name).toBe(d.plaintext);
    }
    for (const { test } of testsOf(file, 'InvalidGroupRecord'))
      expectRefusal(() => GroupSession.deserialize(bytes(test.record), p), test, backend);
  });
});
