/**
 * Hostile inputs for the client's receive path, drawn from a seed: what the
 * property test (receive-property.test.ts) and the fuzz script
 * (scripts/fuzz-receive.ts) throw at a victim. Each input is one thing an
 * account can make the relay deliver: raw envelope bytes, a real session
 * message with flipped bits, any plaintext on a real session, a Content with
 * any field out of range, a group state with extreme integers and lists, any
 * plaintext on a real group chain, a replayed first-contact handshake.
 *
 * Deterministic for a seed, so a failure names the seed that reproduces it.
 */
import { type CborValue, encodeCbor } from '@parley/core';
import { ContentType, type MaliciousPeer, rawContent, rawGroupState } from './malicious-peer.ts';

/** A small fast PRNG (mulberry32): deterministic inputs from a 32-bit seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Target {
  /** The victim's account id. */
  readonly account: string;
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
  /** A group conversation the attacker and the victim share (the victim holds the attacker's chain), if any. */
  readonly group: { readonly conversation: string; readonly groupId: Uint8Array } | null;
}

export const HOSTILE_KINDS = [
  'envelope-bytes',
  'mutated-envelope',
  'plaintext-bytes',
  'content',
  'group-state',
  'group-plaintext',
  'group-content',
  'first-contact-replay',
] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/** Edge values inside the range core's CBOR decoder accepts (unsigned 32-bit): they reach the code that uses them. */
const EDGE_INTS = [0, 1, 2, 255, 256, 65535, 0xfffffffe, 0xffffffff];
/** And outside it (refused by the decoder itself). */
const WILD_INTS = [2 ** 32, 2 ** 53 - 1, -1, -(2 ** 31), 1.5];

export class Draw {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  /** Random bytes of a random length in 0..max. */
  bytes(max: number): Uint8Array {
    return this.exact(this.int(max + 1));
  }
  /** Random bytes of exactly `n` (an id or key of the right size). */
  exact(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  uint(): number {
    if (this.chance(0.1)) return this.pick(WILD_INTS);
    return this.chance(0.5) ? this.pick(EDGE_INTS) : this.int(1000);
  }
  /** Any CBOR value, shallow: what a hostile body or field may hold. Large items only at the top, so it stays under core's 1 MiB plaintext bound. */
  value(depth = 0): CborValue {
    const top = depth === 0;
    switch (this.int(depth > 2 ? 5 : 7)) {
      case 0:
        return this.uint();
      case 1:
        return this.pick(['', 'x', 'é'.repeat(this.int(40)), 'a'.repeat(top && this.chance(0.1) ? 70_000 : 10)]);
      case 2:
        return this.bytes(top && this.chance(0.1) ? 2000 : 40);
      case 3:
        return this.pick([null, true, false]);
      case 4:
        return this.exact(32);
      default:
        return Array.from({ length: this.int(top && this.chance(0.05) ? 1200 : 5) }, () => this.value(depth + 1));
    }
  }
}

/**
 * A Content (or something shaped like one): each field is valid most of the
 * time, so most inputs get past the decoder and reach what applies them
 * (groups, receipts, retries, sync, timers, device lists), with one or two
 * fields drawn to break assumptions.
 */
export function hostileContent(d: Draw, t: Target, attacker: MaliciousPeer): CborValue {
  const type = d.chance(0.9) ? 1 + d.int(10) : d.uint();
  const groupType = type === ContentType.distribution || type === ContentType.groupUpdate;
  const someGroup = (): CborValue => (t.group && d.chance(0.6) ? t.group.groupId : d.exact(32));
  const group = d.chance(0.97) ? (groupType || (t.group && d.chance(0.3)) ? someGroup() : null) : d.value();
  const counter = () => (d.chance(0.5) ? d.int(5) : d.chance(0.9) ? d.pick(EDGE_INTS) : d.pick(WILD_INTS));
  // In the group the attacker shares with the victim it never drops itself (that would end the group fuzzing for the run).
  const realGroup =
    t.group !== null && group instanceof Uint8Array && group.length === 32 && group.every((b, i) => b === t.group?.groupId[i]);
  const members = (): CborValue => {
    const pair = [attacker.address.accountKey, t.accountKey];
    if (d.chance(0.7)) return pair;
    if (realGroup)
      return d.pick<CborValue[]>([
        [...pair, t.accountKey],
        [...pair, d.exact(32)],
        [...pair, ...Array.from({ length: 999 }, () => d.exact(32))],
      ]) as CborValue;
    return d.pick<CborValue[]>([
      [t.accountKey, t.accountKey],
      [],
      Array.from({ length: 1001 }, () => d.exact(32)),
      [d.exact(31)],
      [attacker.address.accountKey],
      [t.accountKey],
    ]) as CborValue;
  };
  const id16 = () => (d.chance(0.9) ? d.exact(16) : d.bytes(20));
  const bodies: Record<number, () => CborValue> = {
    [ContentType.text]: () => [d.chance(0.9) ? 'hi' : d.value()],
    [ContentType.attachment]: () => [d.bytes(300), d.chance(0.9) ? '' : d.value()],
    [ContentType.receipt]: () => [
      d.chance(0.8) ? 1 + d.int(2) : d.pick([0, 3, 2 ** 32]),
      Array.from({ length: d.chance(0.95) ? 1 + d.int(4) : d.pick([0, 513, 600]) }, id16),
    ],
    [ContentType.typing]: () => [d.chance(0.95) ? d.chance(0.5) : d.value()],
    [ContentType.retry]: () => [
      d.pick(['', 'x'.repeat(200), 'AAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAA.r1', 'not-ours', 'BBBBBBBBBBBBBBBBBBBBBB.r99']),
    ],
    [ContentType.sync]: () => [
      d.pick<CborValue>([null, t.accountKey, d.exact(32), attacker.address.accountKey]),
      encodeCbor(rawContent({ type: 1 + d.int(10), group: d.chance(0.5) ? null : someGroup(), body: [d.chance(0.5) ? 'x' : d.value()] })),
    ],
    [ContentType.distribution]: () => [
      d.bytes(d.chance(0.5) ? 150 : 1100),
      ...rawGroupState({ revision: counter(), members: members(), epoch: counter() }),
    ],
    [ContentType.groupUpdate]: () =>
      rawGroupState({ revision: counter(), name: d.chance(0.9) ? 'g' : d.value(), members: members(), epoch: counter() }),
    [ContentType.deviceList]: () => [],
    [ContentType.timer]: () => [],
  };
  const body = d.chance(0.95) ? (bodies[type as number]?.() ?? []) : d.value();
  return rawContent({
    version: d.chance(0.97) ? 1 : d.uint(),
    type,
    messageId: d.chance(0.95) ? undefined : d.value(),
    sentAt: d.chance(0.95) ? undefined : d.value(),
    expireTimer: d.chance(0.9) ? d.int(100) : d.uint(),
    group,
    body,
    deviceList: type === ContentType.deviceList || d.chance(0.05) ? d.bytes(d.chance(0.9) ? 200 : 5000) : null,
  });
}

/** Draws one hostile input from `seed` and makes `attacker` send it to `t`. Returns the kind sent. */
export async function sendHostile(attacker: MaliciousPeer, t: Target, seed: number, firstContact: Uint8Array | null): Promise<HostileKind> {
  const d = new Draw(prng(seed));
  let kind = d.pick(HOSTILE_KINDS);
  if ((kind === 'group-plaintext' || kind === 'group-content') && !t.group) kind = 'content';
  if (kind === 'first-contact-replay' && !firstContact) kind = 'envelope-bytes';
  const recipient = { accountKey: t.accountKey, deviceId: t.deviceId };
  switch (kind) {
    case 'envelope-bytes': {
      const b = d.bytes(300);
      // Often shaped like a core message, so it reaches past the first byte.
      if (b.length >= 3 && d.chance(0.7)) {
        b[0] = d.pick([0x82, 0x83, 0x84, 0x85, 0x97]);
        b[1] = 1;
        b[2] = d.pick([1, 2, 3, 4, 0]);
      }
      await attacker.sendEnvelope(recipient, b);
      break;
    }
    case 'mutated-envelope': {
      const real = await attacker.encryptFor(t.account, encodeCbor(rawContent({ type: ContentType.text, body: ['x'] })));
      const b = d.chance(0.2) ? real.slice(0, d.int(real.length)) : real.slice();
      for (let i = 0, n = 1 + d.int(4); i < n && b.length > 0; i++) {
        const at = d.int(b.length);
        b[at] = (b[at] as number) ^ (1 << d.int(8));
      }
      await attacker.sendEnvelope(recipient, b);
      break;
    }
    case 'plaintext-bytes':
      await attacker.sendPlaintext(t.account, d.bytes(d.chance(0.1) ? 5000 : 200));
      break;
    case 'content':
      await attacker.sendContent(t.account, hostileContent(d, t, attacker));
      break;
    case 'group-state': {
      // Aimed at the counters: a new group that names the victim at the top of the epoch range is what blocked inboxes (finding 1).
      const groupId = d.chance(0.3) && t.group ? t.group.groupId : d.exact(32);
      const top = () => (d.chance(0.3) ? 0xffffffff : d.chance(0.3) ? 0xfffffffe : d.pick(EDGE_INTS));
      const state = rawGroupState({
        revision: top(),
        members:
          groupId === t.group?.groupId || d.chance(0.85)
            ? [attacker.address.accountKey, t.accountKey]
            : d.pick<CborValue>([[t.accountKey], [attacker.address.accountKey]]),
        epoch: top(),
      });
      const distribution = d.chance(0.5);
      await attacker.sendContent(
        t.account,
        rawContent({
          type: distribution ? ContentType.distribution : ContentType.groupUpdate,
          group: groupId,
          body: distribution ? [d.bytes(200), ...state] : state,
        }),
      );
      break;
    }
    case 'group-plaintext':
      await attacker.sendGroupPlaintext((t.group as { conversation: string }).conversation, [t.account], d.bytes(300));
      break;
    case 'group-content':
      await attacker.sendGroupContent((t.group as { conversation: string }).conversation, [t.account], hostileContent(d, t, attacker));
      break;
    case 'first-contact-replay':
      await attacker.sendEnvelope(recipient, firstContact as Uint8Array);
      break;
  }
  return kind;
}
