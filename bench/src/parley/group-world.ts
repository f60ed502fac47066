/**
 * A group of N member devices for the group benchmarks, built through
 * @parley/core's public API. Issue 5 §2 (groups at 10, 100 and 1,000 member
 * devices).
 *
 * Two members are measured: Alice (who sends and who changes membership)
 * and Bob (a receiving member). The other N-2 devices exist for real (each
 * with its own identity and one-to-one sessions), because a sender-key
 * membership change costs one one-to-one encryption per recipient and a
 * fake recipient would make that cost vanish. A newcomer device with
 * sessions to every member is ready for the add-member scenarios.
 *
 * Sessions are set up once per world with the node backend (setup is not
 * what these rows measure) and can be loaded on either backend: records are
 * backend-independent bytes.
 */
import {
  type CryptoProvider,
  type DecryptResult,
  type GroupMember,
  GroupSession,
  PreKeyStore,
  SessionRecord,
  memberOf,
} from '@parley/core';
import { type Party, party, payload } from './fixtures.ts';

export interface Device extends Party {
  readonly member: GroupMember;
  readonly prekeys: PreKeyStore;
}

const key = (m: GroupMember) => `${Buffer.from(m.accountKey).toString('hex')}.${m.deviceId}`;

function device(provider: CryptoProvider, id: number): Device {
  const p = party(provider, id);
  // No one-time prekeys: these devices only ever receive a handful of sessions; the last-resort KEM prekey serves.
  const prekeys = PreKeyStore.generate(p.device, { oneTimePreKeys: 0, kemPreKeys: 0 }, provider);
  return { ...p, member: memberOf(p.device.certificate), prekeys };
}

/** One-to-one records, by (holder, peer). */
export class Sessions {
  readonly #records = new Map<string, SessionRecord>();

  get(holder: Device, peer: GroupMember): SessionRecord {
    const r = this.#records.get(`${key(holder.member)}>${key(peer)}`);
    if (!r) throw new Error('bench: no session between these devices');
    return r;
  }

  /** Both directions past the PreKey stage: A initiates, B answers. */
  connect(a: Device, b: Device, provider: CryptoProvider): void {
    const ab = SessionRecord.initiate(a.device, b.prekeys.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false }), { provider });
    const ba = new SessionRecord(provider);
    ba.decrypt(ab.encrypt(payload(8)), { device: b.device, prekeys: b.prekeys });
    ab.decrypt(ba.encrypt(payload(8)));
    this.#records.set(`${key(a.member)}>${key(b.member)}`, ab);
    this.#records.set(`${key(b.member)}>${key(a.member)}`, ba);
  }

  /** A view of `holder`'s records, for `sealDistribution`. */
  of(holder: Device): (m: GroupMember) => SessionRecord | undefined {
    return (m) => this.#records.get(`${key(holder.member)}>${key(m)}`);
  }
}

export interface GroupWorld {
  readonly size: number;
  readonly alice: Device;
  readonly bob: Device;
  /** The N-2 other members; the last one is the device removed in the removal scenarios. */
  readonly others: readonly Device[];
  /** A device that is not a member yet, with sessions to every member. */
  readonly newcomer: Device;
  readonly sessions: Sessions;
  /** Every member (Alice, Bob, the others). */
  readonly members: readonly GroupMember[];
  readonly groupId: Uint8Array;
  /** Alice's and Bob's group states at epoch 0, Bob holding Alice's chain (serialized, so each scenario loads its own copy). */
  readonly aliceGroup: Uint8Array;
  readonly bobGroup: Uint8Array;
}

/** Builds a group of `size` member devices (at least 3). Costs about three one-to-one setups per member. */
export function buildGroupWorld(size: number, provider: CryptoProvider, onProgress?: (done: number) => void): GroupWorld {
  if (size < 3) throw new RangeError('"size" expected at least 3 (Alice, Bob and the device removed)');
  const alice = device(provider, 1);
  const bob = device(provider, 2);
  const newcomer = device(provider, 3);
  const sessions = new Sessions();
  sessions.connect(alice, bob, provider);
  sessions.connect(newcomer, alice, provider);
  sessions.connect(newcomer, bob, provider);
  const others: Device[] = [];
  for (let i = 0; i < size - 2; i++) {
    const d = device(provider, 10 + i);
    sessions.connect(alice, d, provider);
    sessions.connect(bob, d, provider);
    sessions.connect(newcomer, d, provider);
    others.push(d);
    if (onProgress && (i + 1) % 100 === 0) onProgress(i + 1);
  }
  const members = [alice.member, bob.member, ...others.map((d) => d.member)];
  const a = GroupSession.create(alice.device, members, { provider, rotateAfter: 1 << 24 });
  const b = GroupSession.create(bob.device, members, { provider, groupId: a.groupId, epoch: a.epoch, rotateAfter: 1 << 24 });
  deliver(sessions, alice, bob, a.distribution([bob.member]).bytes, b);
  return { size, alice, bob, others, newcomer, sessions, members, groupId: a.groupId, aliceGroup: a.serialize(), bobGroup: b.serialize() };
}

/** Sends distribution `bytes` from `from` to `to` over their session and has `to` accept it; returns the decrypt result. */
export function deliver(sessions: Sessions, from: Device, to: Device, bytes: Uint8Array, toGroup: GroupSession): DecryptResult {
  const received = sessions.get(to, from.member).decrypt(sessions.get(from, to.member).encrypt(bytes));
  toGroup.processDistribution(received.plaintext, received.sender);
  return received;
}

/** A device's distribution of a fresh chain in group `groupId` at `epoch`, as that device would send it (bytes only). */
export function distributionOf(
  d: Device,
  groupId: Uint8Array,
  epoch: number,
  recipient: GroupMember,
  provider: CryptoProvider,
): Uint8Array {
  return GroupSession.create(d.device, [recipient], { provider, groupId, epoch }).distribution([recipient]).bytes;
}

/**
 * Alice's and Bob's group states in a group of `size` members whose other
 * members are only names (no devices, no sessions): enough for the message
 * scenario, whose cost does not involve the other members' sessions.
 */
export function messageOnlyGroup(size: number, provider: CryptoProvider): { aliceGroup: Uint8Array; bobGroup: Uint8Array } {
  const alice = party(provider, 1);
  const bob = party(provider, 2);
  const members: GroupMember[] = [memberOf(alice.device.certificate), memberOf(bob.device.certificate)];
  for (let i = 0; i < size - 2; i++) members.push({ accountKey: provider.random(32), deviceId: 1 });
  const a = GroupSession.create(alice.device, members, { provider, rotateAfter: 1 << 24 });
  const b = GroupSession.create(bob.device, members, { provider, groupId: a.groupId, epoch: a.epoch, rotateAfter: 1 << 24 });
  b.processDistribution(a.distribution([memberOf(bob.device.certificate)]).bytes, alice.device.certificate);
  return { aliceGroup: a.serialize(), bobGroup: b.serialize() };
}
