// Property-based group histories. spec/08-groups.md §10 (what the tests show).
//
// fast-check generates a group of 3 to 50 member devices (some accounts with two devices) and a history of sends,
// deliveries, additions and removals of accounts and single devices, rotations and forgery attempts. A simulated
// network delivers every message and distribution in random order, sometimes twice. Membership changes are applied by
// every current member at once (the application's decision); distributions are handed over with the sender's
// certificate, as the one-to-one session would (group-fanout.test.ts runs them through real sessions).
//
// The network keeps to the documented bounds (spec/08-groups.md §7), which is what "in time" means below:
//  - before an epoch advances, it delivers what is pending from older epochs (grace: one epoch back);
//  - before a device is removed, it delivers what that device sent (a removed device's chains are deleted);
//  - before a sender rotates, it delivers what is pending on its chains about to fall out of the kept window.
//
// Checked after every step and at the end:
//  - every current member decrypts every message sent while it was a member, exactly once, with the right sender;
//  - a removed device decrypts nothing sent after its removal (every such message is offered to it);
//  - a new member decrypts nothing sent before it joined (recent earlier messages are offered to it);
//  - a member cannot impersonate another (forged and relabelled messages are refused);
//  - every failure leaves the session unchanged, and every touched session survives a serialization round trip.
import fc from 'fast-check';
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
import { groupMessageKeys, nextGroupChainKey } from '../src/group/kdf.ts';
import { decodeGroupMessage, encodeGroupHeader, encodeGroupMessage, groupSignedBytes } from '../src/group/message.ts';
import { prng } from './support/prng.ts';

type Op =
  | { t: 'send'; who: number }
  | { t: 'deliver'; count: number }
  | { t: 'addAccount'; devices: number }
  | { t: 'addDevice'; account: number }
  | { t: 'removeAccount'; account: number }
  | { t: 'removeDevice'; who: number }
  | { t: 'rotate'; who: number }
  | { t: 'forge'; who: number; victim: number; to: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('send' as const), who: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('deliver' as const), count: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('addAccount' as const), devices: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('addDevice' as const), account: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('removeAccount' as const), account: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('removeDevice' as const), who: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rotate' as const), who: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('forge' as const), who: fc.nat(), victim: fc.nat(), to: fc.nat() }) },
);

interface Dev {
  readonly id: string;
  readonly account: number;
  readonly device: DeviceIdentity;
  readonly member: GroupMember;
  session: GroupSession;
  /** Sequence number of the first message sent after it joined. */
  readonly joinedAt: number;
  removed: boolean;
  readonly decrypted: Set<number>;
}

interface Sent {
  readonly id: number;
  readonly from: string;
  readonly epoch: number;
  readonly generation: number;
  readonly bytes: Uint8Array;
  readonly text: string;
  readonly recipients: ReadonlySet<string>;
}

type Item =
  | { kind: 'message'; to: string; msg: Sent }
  | { kind: 'distribution'; to: string; from: string; epoch: number; generation: number; bytes: Uint8Array }
  /** Must never decrypt: a replay, or a message the device must not be able to read. */
  | { kind: 'probe'; to: string; msg: Sent };

const same = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const idOf = (m: GroupMember) => `${toHex(m.accountKey)}.${m.deviceId}`;

/** Reads a session's own chain, or its view of another sender's newest chain, from its stored record (test-only). */
function chainsIn(session: GroupSession) {
  const r = decodeCbor(session.serialize(), 'r', 1 << 26) as unknown[];
  const s = r[7] as [number, number, number, Uint8Array, Uint8Array];
  const receiving = new Map<string, [number, number, number, Uint8Array]>();
  for (const e of r[8] as [[Uint8Array, number], number, [number, number, number, Uint8Array][]][]) {
    const newest = e[2][0];
    if (newest) receiving.set(idOf({ accountKey: e[0][0], deviceId: e[0][1] }), newest);
  }
  return { seed: s[4], receiving };
}

/**
 * Whether a device could read `msg` from the keys it holds, ignoring the protocol's bookkeeping (generations, epochs,
 * membership): every chain key it holds for the sender, stepped forward to the message, and every skipped key.
 */
function keysInRecordOpen(p: CryptoProvider, session: GroupSession, msg: Sent): boolean {
  const m = decodeGroupMessage(msg.bytes);
  const r = decodeCbor(session.serialize(), 'r', 1 << 26) as unknown[];
  const tryKeys = (key: Uint8Array, nonce: Uint8Array) => p.backend.aeadOpen(key, nonce, m.ciphertext, m.headerBytes) !== null;
  for (const e of r[8] as [[Uint8Array, number], number, [number, number, number, Uint8Array][]][]) {
    if (idOf({ accountKey: e[0][0], deviceId: e[0][1] }) !== msg.from) continue;
    for (const [, , iteration, chainKey] of e[2]) {
      let ck = chainKey;
      for (let i = iteration; i <= Math.min(m.header.iteration, iteration + 200); i++) {
        const k = groupMessageKeys(p.backend, ck);
        if (tryKeys(k.key, k.nonce)) return true;
        ck = nextGroupChainKey(p.backend, ck);
      }
    }
  }
  for (const k of r[9] as [[Uint8Array, number], number, number, Uint8Array, Uint8Array][]) {
    if (idOf({ accountKey: k[0][0], deviceId: k[0][1] }) === msg.from && tryKeys(k[3], k[4])) return true;
  }
  return false;
}

class World {
  readonly devs = new Map<string, Dev>();
  readonly accounts: { account: Account; nextDeviceId: number }[] = [];
  pending: Item[] = [];
  readonly sent: Sent[] = [];
  groupId: Uint8Array | null = null;
  readonly removedProbeTargets: string[] = [];
  readonly touched = new Set<string>();

  constructor(
    readonly p: CryptoProvider,
    readonly rng: () => number,
    readonly rotateAfter: number,
  ) {}

  current(): Dev[] {
    return [...this.devs.values()].filter((d) => !d.removed);
  }
  pick<T>(list: readonly T[], n: number): T {
    return list[n % list.length] as T;
  }
  epoch(): number {
    const epochs = new Set(this.current().map((d) => d.session.epoch));
    expect(epochs.size).toBe(1);
    return [...epochs][0] as number;
  }

  newDevices(account: number, count: number): Dev[] {
    const a = this.accounts[account] as { account: Account; nextDeviceId: number };
    return Array.from({ length: count }, () => {
      const device = a.account.createDevice(a.nextDeviceId++, this.p);
      const member = memberOf(device.certificate);
      const dev: Dev = {
        id: idOf(member),
        account,
        device,
        member,
        session: null as unknown as GroupSession,
        joinedAt: this.sent.length,
        removed: false,
        decrypted: new Set(),
      };
      return dev;
    });
  }
  newAccount(): number {
    this.accounts.push({ account: Account.generate(this.p), nextDeviceId: 1 });
    return this.accounts.length - 1;
  }

  /** Creates the group with `sizes[i]` devices for account i. */
  start(sizes: number[]) {
    const devs = sizes.flatMap((n) => this.newDevices(this.newAccount(), n));
    const members = devs.map((d) => d.member);
    for (const d of devs) {
      d.session = GroupSession.create(d.device, members, {
        groupId: this.groupId ?? undefined,
        rotateAfter: this.rotateAfter,
        provider: this.p,
      });
      this.groupId ??= d.session.groupId;
      this.devs.set(d.id, d);
    }
    for (const d of devs) this.distribute(d, d.session.distribution());
  }

  distribute(from: Dev, distribution: GroupDistribution) {
    const { generation, epoch } = from.session.sendingPosition;
    for (const r of distribution.recipients) {
      this.pending.push({ kind: 'distribution', to: idOf(r), from: from.id, epoch, generation, bytes: distribution.bytes });
    }
  }

  /** The network's side of the bounds: deliver what must not wait any longer (see the file header). */
  flush(mustGo: (item: Item) => boolean) {
    for (let round = 0; this.pending.some((i) => i.kind === 'distribution' || mustGo(i)); round++) {
      expect(round, 'flush makes progress').toBeLessThan(50);
      const batch = this.pending.filter((i) => i.kind === 'distribution' || mustGo(i));
      this.pending = this.pending.filter((i) => !batch.includes(i));
      this.shuffle(batch);
      for (const item of batch) this.deliver(item, false);
    }
  }

  beforeRotation(d: Dev) {
    const g = d.session.sendingPosition.generation;
    const oldest = g - (groupLimits.MAX_CHAINS_PER_SENDER - 2);
    this.flush((i) => i.kind === 'message' && i.msg.from === d.id && i.msg.generation <= oldest);
  }

  send(d: Dev) {
    if (d.session.sendingPosition.iteration >= this.rotateAfter) this.beforeRotation(d);
    const id = this.sent.length;
    const text = `m${id} from ${d.id.slice(0, 8)}`;
    const before = d.session.sendingPosition;
    const out = d.session.encrypt(utf8(text));
    if (out.distribution) this.distribute(d, out.distribution);
    const pos = d.session.sendingPosition;
    expect(pos.generation).toBe(out.distribution ? before.generation + 1 : before.generation);
    const recipients = new Set(
      this.current()
        .filter((r) => r !== d)
        .map((r) => r.id),
    );
    const msg: Sent = { id, from: d.id, epoch: pos.epoch, generation: pos.generation, bytes: out.message, text, recipients };
    this.sent.push(msg);
    for (const r of recipients) this.pending.push({ kind: 'message', to: r, msg });
    // A removed device is offered every later message.
    for (const r of this.removedProbeTargets.slice(-4)) this.pending.push({ kind: 'probe', to: r, msg });
    this.touched.add(d.id);
  }

  add(newcomers: Dev[]) {
    const epoch = this.epoch();
    const members = (this.current()[0] as Dev).session.members;
    for (const d of this.current()) {
      this.distribute(d, d.session.addMembers(newcomers.map((n) => n.member)));
      this.touched.add(d.id);
    }
    for (const n of newcomers) {
      n.session = GroupSession.create(n.device, [...members, ...newcomers.map((x) => x.member)], {
        groupId: this.groupId as Uint8Array,
        epoch,
        rotateAfter: this.rotateAfter,
        provider: this.p,
      });
      this.devs.set(n.id, n);
    }
    for (const n of newcomers) {
      this.distribute(n, n.session.distribution());
      // A newcomer is offered recent messages sent before it joined.
      for (const msg of this.sent.slice(-6)) this.pending.push({ kind: 'probe', to: n.id, msg });
    }
  }

  remove(gone: Dev[]) {
    if (this.current().length - gone.length < 3) return;
    const goneIds = new Set(gone.map((g) => g.id));
    const epoch = this.epoch();
    this.flush((i) => i.kind === 'message' && (goneIds.has(i.msg.from) || i.msg.epoch < epoch));
    // What was on its way to the removed devices no longer matters to them; what they sent has been delivered.
    this.pending = this.pending.filter((i) => i.kind === 'probe' || !goneIds.has(i.to));
    for (const g of gone) g.removed = true;
    for (const d of this.current()) {
      this.beforeRotation(d);
      this.distribute(d, d.session.removeMembers(gone.map((g) => g.member)));
      this.touched.add(d.id);
    }
    this.removedProbeTargets.push(...goneIds);
  }

  rotate(d: Dev) {
    this.beforeRotation(d);
    this.distribute(d, d.session.rotate());
    this.touched.add(d.id);
  }

  /** The attacker knows the victim's chain key (as a receiver) but signs with its own key; and relabels its own message. */
  forge(attacker: Dev, victim: Dev, target: Dev) {
    const { seed, receiving } = chainsIn(attacker.session);
    const chain = receiving.get(victim.id);
    const attempts: Uint8Array[] = [];
    if (chain) {
      const [generation, epoch, iteration, chainKey] = chain;
      const headerBytes = encodeGroupHeader({ groupId: this.groupId as Uint8Array, epoch, sender: victim.member, generation, iteration });
      const mk = groupMessageKeys(this.p.backend, chainKey);
      const padded = new Uint8Array(160);
      padded[0] = 0x80;
      const ciphertext = this.p.backend.aeadSeal(mk.key, mk.nonce, padded, headerBytes);
      attempts.push(
        encodeGroupMessage(headerBytes, ciphertext, this.p.backend.ed25519Sign(seed, groupSignedBytes(headerBytes, ciphertext))),
      );
    }
    // Encrypting may rotate the attacker's chain (rotateAfter); its distribution must still reach the group, or the
    // attacker's later messages could never be read.
    if (attacker.session.sendingPosition.iteration >= this.rotateAfter) this.beforeRotation(attacker);
    const genuine = attacker.session.encrypt(utf8('mine'));
    if (genuine.distribution) this.distribute(attacker, genuine.distribution);
    this.touched.add(attacker.id);
    const own = decodeGroupMessage(genuine.message);
    attempts.push(encodeGroupMessage(encodeGroupHeader({ ...own.header, sender: victim.member }), own.ciphertext, own.signature));
    for (const bytes of attempts) {
      const before = target.session.serialize();
      let error: unknown = null;
      try {
        target.session.decrypt(bytes);
      } catch (e) {
        error = e;
      }
      expect(error, 'a forged message must be refused').toBeInstanceOf(ParleyError);
      expect(['BAD_SIGNATURE', 'UNKNOWN_CHAIN', 'DUPLICATE_MESSAGE']).toContain((error as ParleyError).code);
      expect(same(target.session.serialize(), before)).toBe(true);
    }
    // The attacker's own genuine message (consumed above) is simply never delivered: it was never recorded as sent.
  }

  shuffle<T>(list: T[]) {
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [list[i], list[j]] = [list[j] as T, list[i] as T];
    }
  }

  deliverSome(count: number) {
    for (let n = 0; n < count && this.pending.length > 0; n++) {
      const [item] = this.pending.splice(Math.floor(this.rng() * this.pending.length), 1);
      this.deliver(item as Item, false);
    }
  }

  /** Delivers one item; items that cannot be processed yet go back to the network. */
  deliver(item: Item, final: boolean) {
    const to = this.devs.get(item.to) as Dev;
    // Unchanged-on-failure is checked on every probe and on a sample of the rest (serializing costs more than decrypting).
    const before = item.kind === 'probe' || this.rng() < 0.1 ? to.session.serialize() : null;
    try {
      if (item.kind === 'distribution') {
        const from = this.devs.get(item.from) as Dev;
        to.session.processDistribution(item.bytes, from.device.certificate);
      } else {
        const out = to.session.decrypt(item.msg.bytes);
        expect(item.kind, `${item.kind === 'probe' ? 'a device decrypted a message it must not read' : ''}`).toBe('message');
        expect(fromUtf8(out.plaintext)).toBe(item.msg.text);
        expect(idOf(out.sender)).toBe(item.msg.from);
        expect(item.msg.recipients.has(to.id)).toBe(true);
        expect(to.decrypted.has(item.msg.id), 'decrypted twice').toBe(false);
        to.decrypted.add(item.msg.id);
        // Sometimes the network delivers it again.
        if (this.rng() < 0.15) this.pending.push({ kind: 'probe', to: to.id, msg: item.msg });
      }
      this.touched.add(to.id);
    } catch (e) {
      if (!(e instanceof ParleyError)) throw e;
      if (before !== null) expect(same(to.session.serialize(), before), 'a failed call changed the session').toBe(true);
      if (item.kind === 'probe') {
        // A message not yet decryptable for lack of a chain may become so later: offer it again until the end.
        if (e.code === 'UNKNOWN_CHAIN' && !final) this.pending.push(item);
        else if (!item.msg.recipients.has(to.id)) {
          // Last offer: not even the raw keys it holds may open the message.
          expect(keysInRecordOpen(this.p, to.session, item.msg), 'a device holds keys for a message it must not read').toBe(false);
        }
        return;
      }
      // Only "the distribution has not arrived yet" is expected; anything else is a bug.
      expect(e.code, `${item.kind} to a member failed: ${e.message}`).toBe('UNKNOWN_CHAIN');
      expect(item.kind).toBe('message');
      this.pending.push(item);
    }
  }

  /** Serialization round trip of every session touched since the last call; the rest of the history runs on the copies. */
  roundTrip() {
    for (const id of this.touched) {
      const d = this.devs.get(id) as Dev;
      const bytes = d.session.serialize();
      d.session = GroupSession.deserialize(bytes, this.p);
      expect(same(d.session.serialize(), bytes), 'a record changed in a serialization round trip').toBe(true);
    }
    this.touched.clear();
  }

  run(op: Op) {
    const cur = this.current();
    switch (op.t) {
      case 'send':
        return this.send(this.pick(cur, op.who));
      case 'deliver':
        return this.deliverSome(op.count);
      case 'addAccount':
        if (cur.length + op.devices > 50) return;
        return this.add(this.newDevices(this.newAccount(), op.devices));
      case 'addDevice': {
        if (cur.length >= 50) return;
        return this.add(this.newDevices(this.pick(cur, op.account).account, 1));
      }
      case 'removeAccount': {
        const account = this.pick(cur, op.account).account;
        return this.remove(cur.filter((d) => d.account === account));
      }
      case 'removeDevice':
        return this.remove([this.pick(cur, op.who)]);
      case 'rotate':
        return this.rotate(this.pick(cur, op.who));
      case 'forge': {
        const attacker = this.pick(cur, op.who);
        const others = cur.filter((d) => d !== attacker);
        const victim = this.pick(others, op.victim);
        const target = this.pick(
          others.filter((d) => d !== victim),
          op.to,
        );
        return this.forge(attacker, victim, target);
      }
    }
  }

  /** Delivers everything; then checks the exactly-once property for every current member. */
  finish() {
    for (let round = 0; this.pending.some((i) => i.kind !== 'probe'); round++) {
      expect(round, 'every message eventually decrypts').toBeLessThan(100);
      const batch = this.pending;
      this.pending = [];
      this.shuffle(batch);
      for (const item of batch) this.deliver(item, false);
    }
    const probes = this.pending;
    this.pending = [];
    for (const item of probes) this.deliver(item, true);
    this.roundTrip();
    for (const d of this.current()) {
      for (const msg of this.sent) {
        if (msg.recipients.has(d.id)) expect(d.decrypted.has(msg.id), `member missed message ${msg.id}`).toBe(true);
        else expect(d.decrypted.has(msg.id)).toBe(false);
      }
    }
    this.epoch();
  }
}

const historyArb = (minMembers: number, maxMembers: number, maxOps: number) =>
  fc.record({
    // 3..maxMembers devices in all; some accounts have two devices.
    total: fc.noBias(fc.integer({ min: minMembers, max: maxMembers })),
    twoDeviceAccounts: fc.nat({ max: 5 }),
    ops: fc.array(opArb, { minLength: Math.min(20, maxOps), maxLength: maxOps }),
    rotateAfter: fc.constantFrom(2, 3, 5, 1000),
    seed: fc.integer(),
  });

interface History {
  total: number;
  twoDeviceAccounts: number;
  ops: Op[];
  rotateAfter: number;
  seed: number;
}

function sizesOf(h: History): number[] {
  const pairs = Math.min(h.twoDeviceAccounts, Math.floor((h.total - 1) / 2));
  return [...Array.from({ length: pairs }, () => 2), ...Array.from({ length: h.total - 2 * pairs }, () => 1)];
}

function runHistory(p: CryptoProvider, h: History) {
  const w = new World(p, prng(h.seed), h.rotateAfter);
  w.start(sizesOf(h));
  w.roundTrip();
  for (const op of h.ops) {
    w.run(op);
    w.roundTrip();
  }
  w.finish();
  return w;
}

describe('random group histories', () => {
  it('node backend: 3 to 50 member devices, every property holds', () => {
    const p = cryptoProvider(nodeBackend);
    let largest = 0;
    fc.assert(
      fc.property(historyArb(3, 50, 60), (h) => {
        const w = runHistory(p, h);
        largest = Math.max(largest, w.devs.size);
      }),
      { numRuns: 6 },
    );
    expect(largest).toBeGreaterThan(10);
  });

  it('noble backend: small groups, every property holds', () => {
    const p = cryptoProvider(nobleBackend);
    fc.assert(
      fc.property(historyArb(3, 5, 16), (h) => {
        runHistory(p, h);
      }),
      { numRuns: 2 },
    );
  });

  // Found by CI (seed 291042888): a forgery attempt's genuine encrypt rotated the attacker's chain at rotateAfter = 2,
  // and the model dropped that distribution. Kept as a fixed case so the model cannot regress.
  it('regression: a rotation triggered inside a forgery attempt is distributed', () => {
    const h: History = JSON.parse(
      '{"total":3,"twoDeviceAccounts":0,"ops":[{"t":"deliver","count":1},{"t":"send","who":1165881962},{"t":"send","who":0},{"t":"send","who":17},{"t":"send","who":1543503860},{"t":"deliver","count":1},{"t":"send","who":1140850673},{"t":"deliver","count":1},{"t":"send","who":1114139477},{"t":"forge","who":210822527,"victim":0,"to":0},{"t":"forge","who":5,"victim":0,"to":0},{"t":"send","who":0},{"t":"send","who":0},{"t":"send","who":0},{"t":"send","who":5},{"t":"send","who":0}],"rotateAfter":2,"seed":0}',
    );
    const w = runHistory(cryptoProvider(nobleBackend), h);
    expect(w.sent.length).toBeGreaterThan(5);
  });
});
