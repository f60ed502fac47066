/**
 * What a group message and a membership removal cost, at 10, 100 and 1,000
 * member devices, with both crypto backends. spec/08-groups.md §7.1.
 *
 *   node --import tsx packages/core/scripts/group-cost.ts [--sizes 10,100,1000] [--backends node,noble] [--repeats 5]
 *
 * Measured (medians over repeats, CPU time of this process, one thread):
 *  - per message: one `GroupSession.encrypt` (sender) and one `decrypt` (a
 *    receiver that holds a chain for every other member);
 *  - a removal, sender side: `removeMembers` (epoch + 1, new chain) plus
 *    `sealDistribution` of the new chain to the N-2 remaining devices through
 *    real, established one-to-one sessions;
 *  - a removal, receiver side: one remaining member decrypting the N-2
 *    distributions of the others from its one-to-one sessions and accepting
 *    them (`SessionRecord.decrypt` + `processDistribution`).
 * Every member does both sides once per removal, so the whole group's work
 * is about N times (sender + receiver); the bytes one member sends are
 * N-2 one-to-one messages of the size shown.
 *
 * Setup (devices, prekeys, handshakes) runs on the node backend; state is
 * then loaded into the backend being measured from its serialized records,
 * which both backends read identically. Storage writes are not included.
 */
import { parseArgs } from 'node:util';
import {
  Account,
  type CryptoProvider,
  type DeviceIdentity,
  type GroupMember,
  GroupSession,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  memberOf,
  nobleBackend,
  sealDistribution,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,100,1000' },
    backends: { type: 'string', default: 'node,noble' },
    repeats: { type: 'string', default: '5' },
    messages: { type: 'string', default: '101' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const backends = values.backends.split(',').map((name) => {
  if (name === 'node') return nodeBackend;
  if (name === 'noble') return nobleBackend;
  throw new Error(`unknown backend ${name}`);
});
const repeats = Number(values.repeats);
const messageCount = Number(values.messages);

const setupProvider = cryptoProvider(nodeBackend);
const key = (m: GroupMember) => `${toHex(m.accountKey)}.${m.deviceId}`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Runs `fn` and returns its result and the CPU time it took (user + system, in ms). CPU time rather
 * than wall-clock time, so that other processes on a shared machine do not inflate the numbers.
 */
function timed<T>(fn: () => T): [T, number] {
  const start = process.cpuUsage();
  const out = fn();
  const used = process.cpuUsage(start);
  return [out, (used.user + used.system) / 1000];
}

/** Two one-to-one records, established and answered (no longer PreKeyMessages). */
function connect(from: DeviceIdentity, to: DeviceIdentity, toPrekeys: PreKeyStore): [SessionRecord, SessionRecord] {
  const p = setupProvider;
  const a = SessionRecord.initiate(from, toPrekeys.bundle({ oneTimePreKey: false, oneTimeKemPreKey: false }), { provider: p });
  const b = new SessionRecord(p);
  b.decrypt(a.encrypt(utf8('hi')), { device: to, prekeys: toPrekeys });
  a.decrypt(b.encrypt(utf8('hello')));
  return [a, b];
}

interface Inbox {
  readonly sessions: Map<string, Uint8Array>;
  readonly messages: { from: string; message: Uint8Array }[];
}

interface Scenario {
  readonly n: number;
  readonly members: GroupMember[];
  /** The sender S (index 0) and a receiver X (index 1), each holding every other member's chain. */
  readonly senderGroup: Uint8Array;
  readonly receiverGroup: Uint8Array;
  /** S's one-to-one records with the N-2 devices that remain after the removal of the last one. */
  readonly senderSessions: Map<string, Uint8Array>;
  /**
   * X's one-to-one records with every other remaining device, and each one's removal distribution to X, sealed.
   * `cold`: X spoke last in each session, so each distribution starts a new sending chain there and costs X a DH
   * ratchet step. `warm`: the other device spoke last (no DH step). Real sessions are a mix of the two.
   */
  readonly receiver: Record<'cold' | 'warm', Inbox>;
}

function setup(n: number): Scenario {
  const p = setupProvider;
  const devices = Array.from({ length: n }, () => Account.generate(p).createDevice(1, p));
  const members = devices.map((d) => memberOf(d.certificate));
  const removed = members[n - 1] as GroupMember;
  const [sDevice, xDevice] = devices as [DeviceIdentity, DeviceIdentity];
  const s = GroupSession.create(sDevice, members, { provider: p });
  const x = GroupSession.create(xDevice, members, { groupId: s.groupId, provider: p });
  // Every other member's chain, as it would be after the group was set up.
  const others = devices
    .slice(2)
    .map((d) =>
      GroupSession.create(d, [members[0] as GroupMember, members[1] as GroupMember, removed], { groupId: s.groupId, provider: p }),
    );
  for (const [i, g] of others.entries()) {
    const d = g.distribution([members[0] as GroupMember, members[1] as GroupMember]);
    s.processDistribution(d.bytes, (devices[i + 2] as DeviceIdentity).certificate);
    x.processDistribution(d.bytes, (devices[i + 2] as DeviceIdentity).certificate);
  }
  x.processDistribution(s.distribution([members[1] as GroupMember]).bytes, sDevice.certificate);
  s.processDistribution(x.distribution([members[0] as GroupMember]).bytes, xDevice.certificate);

  const remaining = devices.slice(1, n - 1);
  const senderSessions = new Map<string, Uint8Array>();
  for (const d of remaining) {
    const prekeys = PreKeyStore.generate(d, { oneTimePreKeys: 0, kemPreKeys: 0 }, p);
    senderSessions.set(key(memberOf(d.certificate)), connect(sDevice, d, prekeys)[0].serialize());
  }
  const xPrekeys = PreKeyStore.generate(xDevice, { oneTimePreKeys: 0, kemPreKeys: 0 }, p);
  const receiver: Scenario['receiver'] = { cold: { sessions: new Map(), messages: [] }, warm: { sessions: new Map(), messages: [] } };
  const senders = [sDevice, ...devices.slice(2, n - 1)];
  const senderGroups = [GroupSession.deserialize(s.serialize(), p), ...others.slice(0, n - 3)];
  for (const [i, d] of senders.entries()) {
    const [toX, atX] = connect(d, xDevice, xPrekeys);
    const distribution = (senderGroups[i] as GroupSession).removeMembers([removed]);
    const from = key(memberOf(d.certificate));
    const seal = (record: SessionRecord) =>
      (sealDistribution({ bytes: distribution.bytes, recipients: [members[1] as GroupMember] }, () => record)[0] as { message: Uint8Array })
        .message;
    receiver.cold.sessions.set(from, atX.serialize());
    receiver.cold.messages.push({ from, message: seal(SessionRecord.deserialize(toX.serialize(), p)) });
    atX.decrypt(toX.encrypt(utf8('one more')));
    receiver.warm.sessions.set(from, atX.serialize());
    receiver.warm.messages.push({ from, message: seal(toX) });
  }
  return { n, members, senderGroup: s.serialize(), receiverGroup: x.serialize(), senderSessions, receiver };
}

interface Row {
  backend: string;
  n: number;
  encryptMs: number;
  decryptMs: number;
  messageBytes: number;
  removalSenderMs: number;
  removalReceiverColdMs: number;
  removalReceiverWarmMs: number;
  /** The group layer's share of the receiver side (`processDistribution` only). */
  acceptMs: number;
  distributionMessageBytes: number;
}

function measure(sc: Scenario, p: CryptoProvider): Row {
  // Per message.
  const s = GroupSession.deserialize(sc.senderGroup, p);
  const x = GroupSession.deserialize(sc.receiverGroup, p);
  const plaintext = utf8(
    'A typical chat message, about a hundred and forty characters long, which is what most group traffic looks like in practice.',
  );
  const enc: number[] = [];
  const msgs: Uint8Array[] = [];
  for (let i = 0; i < messageCount; i++) {
    const [out, ms] = timed(() => s.encrypt(plaintext));
    msgs.push(out.message);
    enc.push(ms);
  }
  const dec = msgs.map((m) => timed(() => x.decrypt(m))[1]);

  // A removal, sender side.
  const removed = sc.members[sc.n - 1] as GroupMember;
  const senderRuns: number[] = [];
  let distributionMessageBytes = 0;
  for (let r = 0; r < repeats; r++) {
    const group = GroupSession.deserialize(sc.senderGroup, p);
    const records = new Map([...sc.senderSessions].map(([k, b]) => [k, SessionRecord.deserialize(b, p)]));
    const [sealed, ms] = timed(() => sealDistribution(group.removeMembers([removed]), (m) => records.get(key(m))));
    if (sealed.length !== sc.n - 2) throw new Error('removal did not reach every remaining device');
    distributionMessageBytes = (sealed[0] as { message: Uint8Array }).message.length;
    senderRuns.push(ms);
  }

  // A removal, receiver side.
  const receiverSide = (inbox: Inbox) => {
    const total: number[] = [];
    const accept: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const group = GroupSession.deserialize(sc.receiverGroup, p);
      const records = new Map([...inbox.sessions].map(([k, b]) => [k, SessionRecord.deserialize(b, p)]));
      let acceptMs = 0;
      const [, ms] = timed(() => {
        for (const item of inbox.messages) {
          const out = (records.get(item.from) as SessionRecord).decrypt(item.message);
          acceptMs += timed(() => group.processDistribution(out.plaintext, out.sender))[1];
        }
      });
      total.push(ms);
      accept.push(acceptMs);
    }
    return { total: median(total), accept: median(accept) };
  };
  const cold = receiverSide(sc.receiver.cold);
  const warm = receiverSide(sc.receiver.warm);

  return {
    backend: p.backend.name,
    n: sc.n,
    encryptMs: median(enc),
    decryptMs: median(dec),
    messageBytes: (msgs[0] as Uint8Array).length,
    removalSenderMs: median(senderRuns),
    removalReceiverColdMs: cold.total,
    removalReceiverWarmMs: warm.total,
    acceptMs: warm.accept,
    distributionMessageBytes,
  };
}

const rows: Row[] = [];
for (const n of sizes) {
  const [sc, setupMs] = timed(() => setup(n));
  console.error(`setup for ${n} member devices: ${(setupMs / 1000).toFixed(1)} s`);
  for (const backend of backends) rows.push(measure(sc, cryptoProvider(backend)));
}

const f = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`);
console.log(`Group costs, CPU-time medians (${messageCount} messages; ${repeats} removals), Node ${process.version}`);
console.log('');
console.log(
  '| backend | member devices | encrypt | decrypt | message bytes | removal, sender: rotate + N-2 sealed | removal, one receiver: N-2 opened (DH step each / none) | of which processDistribution | sealed distribution bytes |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.backend} | ${r.n} | ${f(r.encryptMs)} | ${f(r.decryptMs)} | ${r.messageBytes} | ${f(r.removalSenderMs)} | ${f(r.removalReceiverColdMs)} / ${f(r.removalReceiverWarmMs)} | ${f(r.acceptMs)} | ${r.distributionMessageBytes} |`,
  );
}
