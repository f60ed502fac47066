/**
 * Parley group scenarios (sender keys, @parley/core's GroupSession) at 10,
 * 100 and 1,000 member devices. Issue 5 §2: encrypt+decrypt per message;
 * adding and removing a member, sender side and per receiving member.
 *
 * What each membership row contains, because sender keys spread the work
 * differently from MLS:
 *  - add, sender side: addMembers + my chain sealed to the newcomer (one
 *    one-to-one encryption). Every existing member does the same for the
 *    newcomer, so "per existing member" is the same work, measured on Bob.
 *  - add, the joiner: create its group state and accept one distribution
 *    from each of the N members (N one-to-one decryptions).
 *  - remove, sender side: removeMembers (epoch + 1, new chain) + the new
 *    chain sealed to the N-2 remaining devices.
 *  - remove, per remaining member: the same for its own chain, plus
 *    accepting the N-2 new chains of the others (the remover's included):
 *    O(N) per member, O(N²) for the group.
 *  - rotation (every 1,000 messages by default): a new chain sealed to N-1.
 * One-to-one sessions with every member are assumed to exist (they are set
 * up untimed); a device without one first pays a session setup.
 *
 * Scenario order matters: sessions are shared, and a scenario that seals
 * messages nobody reads must come after any scenario that delivers on the
 * same session, or the receiver would pay for skipped keys.
 */
import { type CryptoProvider, GroupSession, sealDistribution } from '@parley/core';
import type { MeasureOptions } from '../harness.ts';
import type { Entry, Runner } from '../runner.ts';
import { BACKENDS, payload, providerFor } from './fixtures.ts';
import { type Device, type GroupWorld, buildGroupWorld, distributionOf, messageOnlyGroup } from './group-world.ts';
import type { Scenario } from './one-to-one.ts';

function expectLength(actual: number, expected: number, what: string): void {
  if (actual !== expected) throw new Error(`${what}: got ${actual}, expected ${expected}`);
}

function copies(bytes: Uint8Array, n: number, provider: CryptoProvider): GroupSession[] {
  return Array.from({ length: n }, () => GroupSession.deserialize(bytes, provider));
}

/** Encrypt one message for the whole group and decrypt it as one member. */
export function groupMessageScenario(
  size: number,
  states: { aliceGroup: Uint8Array; bobGroup: Uint8Array },
  provider: CryptoProvider,
): Scenario {
  const alice = GroupSession.deserialize(states.aliceGroup, provider);
  const bob = GroupSession.deserialize(states.bobGroup, provider);
  const small = payload(100);
  return {
    meta: {
      op: `group-message@${size}`,
      label: `group message encrypt + one member decrypt, 100 B, N=${size}`,
      note: 'one AEAD + one Ed25519 signature per message, verified by each member; rotation every 1,000 messages not included (see the rotation row)',
    },
    task: {
      run() {
        expectLength(bob.decrypt(alice.encrypt(small).message).plaintext.length, 100, 'group round trip');
      },
    },
  };
}

/** The membership scenarios on `world`, in an order that keeps shared sessions in step (see the module comment). */
export function* membershipScenarios(
  world: GroupWorld,
  provider: CryptoProvider,
  quick: boolean,
): Generator<Scenario & { overrides: Partial<MeasureOptions> }> {
  const { alice, bob, newcomer, sessions, size } = world;
  const victim = world.others[world.others.length - 1] as Device;
  const remaining = world.others.filter((d) => d !== victim);
  const overrides: Partial<MeasureOptions> = { maxIterations: quick ? 2 : size >= 1000 ? 2 : 10, samples: quick ? 3 : 9 };
  const n = `N=${size}`;

  {
    // Every member's distribution for the newcomer, encoded once; sent over fresh one-to-one messages per iteration.
    const senders: Device[] = [alice, bob, ...world.others];
    const bytesFor = new Map<Device, Uint8Array>();
    bytesFor.set(alice, GroupSession.deserialize(world.aliceGroup, provider).addMembers([newcomer.member]).bytes);
    bytesFor.set(bob, GroupSession.deserialize(world.bobGroup, provider).addMembers([newcomer.member]).bytes);
    for (const d of world.others) bytesFor.set(d, distributionOf(d, world.groupId, 0, newcomer.member, provider));
    const allMembers = [...world.members, newcomer.member];
    yield {
      meta: {
        op: `group-add-joiner@${size}`,
        label: `add member: the joiner accepts N chains, ${n}`,
        note: `${size} one-to-one decryptions + distributions accepted`,
      },
      task: {
        prepare: (iterations: number) =>
          Array.from({ length: iterations }, () =>
            senders.map((d) => ({ from: d, message: sessions.get(d, newcomer.member).encrypt(bytesFor.get(d) as Uint8Array) })),
          ),
        run(batches: { from: Device; message: Uint8Array }[][], i: number) {
          const group = GroupSession.create(newcomer.device, allMembers, { provider, groupId: world.groupId, epoch: 0 });
          for (const { from, message } of batches[i] as { from: Device; message: Uint8Array }[]) {
            const received = sessions.get(newcomer, from.member).decrypt(message);
            group.processDistribution(received.plaintext, received.sender);
          }
          if (!group.hasChainFrom(alice.member)) throw new Error('joiner did not get the chains');
        },
      },
      overrides,
    };
  }

  for (const [who, base, op, label] of [
    [alice, world.aliceGroup, 'group-add-sender', 'add member: sender side (addMembers + chain to newcomer)'],
    [bob, world.bobGroup, 'group-add-member', 'add member: per existing member (same work, on Bob)'],
  ] as const) {
    yield {
      meta: { op: `${op}@${size}`, label: `${label}, ${n}`, note: '1 one-to-one encryption; assumes a session with the newcomer' },
      task: {
        prepare: (iterations: number) => copies(base, iterations, provider),
        run(groups: GroupSession[], i: number) {
          const sealed = sealDistribution((groups[i] as GroupSession).addMembers([newcomer.member]), sessions.of(who));
          expectLength(sealed.length, 1, 'distributions sealed');
        },
      },
      overrides,
    };
  }

  {
    // Bob removes the victim himself (as every member does), sends his new chain, and accepts everyone else's new chain.
    const aliceNew = GroupSession.deserialize(world.aliceGroup, provider).removeMembers([victim.member]).bytes;
    const incoming: [Device, Uint8Array][] = [
      [alice, aliceNew],
      ...remaining.map((d): [Device, Uint8Array] => [d, distributionOf(d, world.groupId, 1, bob.member, provider)]),
    ];
    yield {
      meta: {
        op: `group-remove-member@${size}`,
        label: `remove member: per remaining member, ${n}`,
        note: `own new chain sealed to ${size - 2} devices + ${size - 2} new chains accepted`,
      },
      task: {
        prepare: (iterations: number) => ({
          groups: copies(world.bobGroup, iterations, provider),
          messages: Array.from({ length: iterations }, () =>
            incoming.map(([d, bytes]) => ({ from: d, message: sessions.get(d, bob.member).encrypt(bytes) })),
          ),
        }),
        run(ctx: { groups: GroupSession[]; messages: { from: Device; message: Uint8Array }[][] }, i: number) {
          const group = ctx.groups[i] as GroupSession;
          expectLength(sealDistribution(group.removeMembers([victim.member]), sessions.of(bob)).length, size - 2, 'distributions sealed');
          for (const { from, message } of ctx.messages[i] as { from: Device; message: Uint8Array }[]) {
            const received = sessions.get(bob, from.member).decrypt(message);
            group.processDistribution(received.plaintext, received.sender);
          }
        },
      },
      overrides,
    };
  }

  yield {
    meta: { op: `group-remove-sender@${size}`, label: `remove member: sender side, ${n}`, note: `new chain sealed to ${size - 2} devices` },
    task: {
      prepare: (iterations: number) => copies(world.aliceGroup, iterations, provider),
      run(groups: GroupSession[], i: number) {
        expectLength(
          sealDistribution((groups[i] as GroupSession).removeMembers([victim.member]), sessions.of(alice)).length,
          size - 2,
          'distributions sealed',
        );
      },
    },
    overrides,
  };

  yield {
    meta: {
      op: `group-rotate-sender@${size}`,
      label: `chain rotation (every 1,000 msgs): sender side, ${n}`,
      note: `new chain sealed to ${size - 1} devices; per message: this ÷ 1,000`,
    },
    task: {
      prepare: (iterations: number) => copies(world.aliceGroup, iterations, provider),
      run(groups: GroupSession[], i: number) {
        expectLength(sealDistribution((groups[i] as GroupSession).rotate(), sessions.of(alice)).length, size - 1, 'distributions sealed');
      },
    },
    overrides,
  };
}

/**
 * Parley's group-message entries at every profile size on both backends,
 * for the interleaved comparison with the peers' group messages. The other
 * members are names only: a message's cost does not involve their sessions.
 */
export function groupMessageEntries(runner: Runner): Entry[] {
  const out: Entry[] = [];
  for (const size of runner.profile.groupSizes) {
    const states = messageOnlyGroup(size, providerFor('node'));
    for (const backend of BACKENDS) {
      const s = groupMessageScenario(size, states, providerFor(backend));
      out.push({ meta: { section: 'groups', subject: 'parley', variant: backend, groupSize: size, ...s.meta }, task: s.task });
    }
  }
  return out;
}

/** The membership scenarios (node backend) at every profile size, each on a group with real devices and sessions. */
export async function runParleyMembership(runner: Runner): Promise<void> {
  const setup = providerFor('node');
  for (const size of runner.profile.groupSizes) {
    runner.progress(`groups: building a group of ${size} member devices (3 one-to-one sessions per member, untimed)`);
    let world: GroupWorld;
    try {
      world = buildGroupWorld(size, setup, (done) => runner.progress(`groups: ${done}/${size - 2} members connected`));
    } catch (e) {
      runner.failed(
        { section: 'groups', subject: 'parley', variant: 'node', op: `group-world@${size}`, label: `group of ${size}`, groupSize: size },
        e,
      );
      continue;
    }
    for (const s of membershipScenarios(world, setup, runner.quick)) {
      await runner.time({ section: 'groups', subject: 'parley', variant: 'node', groupSize: size, ...s.meta }, s.task, s.overrides);
    }
  }
}

/** Group scenario builders for the time breakdown and the profiler: the message scenario on a group of names. */
export const groupScenarioSources: readonly ((provider: CryptoProvider, quick: boolean) => Iterable<Scenario>)[] = [
  (provider, quick) => {
    const size = quick ? 10 : 100;
    return [groupMessageScenario(size, messageOnlyGroup(size, provider), provider)];
  },
];
