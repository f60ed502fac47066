/**
 * groups.json: sender-key groups. The group chain KDF; a scripted history
 * run through core's GroupSession (creation, distributions, out-of-order and
 * late messages, a rotation, two removals with their epochs, an addition)
 * with every key and byte written out; then messages, distributions and
 * records that must be refused. Pins spec/08-groups.md.
 */
import {
  type CborValue,
  type DeviceIdentity,
  GroupSession,
  Label,
  MessageType,
  PROTOCOL_VERSION,
  concatBytes,
  decodeCbor,
  encodeCbor,
  encodeCertificate,
  fromUtf8,
  limits,
  pad,
  utf8,
} from '@parley/core';
import { ChainConstant } from '../../../packages/core/src/labels.ts';
import { type GroupState, groupStateFromCbor } from '../../../packages/core/src/group/state.ts';
import { type Cast, deviceJson } from '../lib/cast.ts';
import { appendField, dropLastField, editField, flipInField, getField, setField, truncate } from '../lib/mutate.ts';
import { type Json, type TestCase, type TestGroup, type VectorFile, finish, hex } from '../lib/vector-file.ts';

type Who = 'alice' | 'bob' | 'alice2' | 'carol';
const LABELS: Record<Who, string> = { alice: 'alice.device1', bob: 'bob.device1', alice2: 'alice.device2', carol: 'carol.device1' };
const SCENARIO = 'four-devices';

function deviceOf(cast: Cast, who: Who): DeviceIdentity {
  return { alice: cast.aliceDevice1, bob: cast.bobDevice1, alice2: cast.aliceDevice2, carol: cast.carolDevice1 }[who];
}

const memberOf = (d: DeviceIdentity) => ({ accountKey: d.certificate.accountKey, deviceId: d.deviceId });
const memberJson = (d: DeviceIdentity) => ({ accountKey: hex(d.certificate.accountKey), deviceId: d.deviceId });
const memberCbor = (d: DeviceIdentity): CborValue => [d.certificate.accountKey, d.deviceId];

// ---- the group chain KDF, spelled out (spec/08-groups.md §3) ----------------

const L = utf8(Label.groupChain);

function groupStep(cast: Cast, chainKey: Uint8Array) {
  const b = cast.backend;
  return {
    messageKey: b.hmacSha256(chainKey, concatBytes(L, ChainConstant.messageKey)),
    nonce: b.hmacSha256(chainKey, concatBytes(L, ChainConstant.messageNonce)).slice(0, 12),
    nextChainKey: b.hmacSha256(chainKey, concatBytes(L, ChainConstant.nextChainKey)),
  };
}

function chainKeyAt(cast: Cast, first: Uint8Array, iteration: number): Uint8Array {
  let ck = first;
  for (let i = 0; i < iteration; i++) ck = groupStep(cast, ck).nextChainKey;
  return ck;
}

function stateOf(cast: Cast, session: GroupSession): GroupState {
  return groupStateFromCbor(decodeCbor(session.serialize(), 'GroupRecord', limits.MAX_RECORD_BYTES), cast.provider);
}

/** Encodes and signs a group message from explicit parts (the sender's chain key and signing seed). */
function sealExplicit(
  cast: Cast,
  header: { groupId: Uint8Array; epoch: number; sender: DeviceIdentity; generation: number; iteration: number },
  chainKey: Uint8Array,
  padded: Uint8Array,
  signingSeed: Uint8Array,
) {
  const headerBytes = encodeCbor([header.groupId, header.epoch, memberCbor(header.sender), header.generation, header.iteration]);
  const k = groupStep(cast, chainKey);
  const ciphertext = cast.backend.aeadSeal(k.messageKey, k.nonce, padded, headerBytes);
  const signedBytes = encodeCbor([Label.groupMessage, headerBytes, ciphertext]);
  const signature = cast.backend.ed25519Sign(signingSeed, signedBytes);
  const message = encodeCbor([PROTOCOL_VERSION, MessageType.group, headerBytes, ciphertext, signature]);
  return { headerBytes, keys: k, ciphertext, signedBytes, signature, message };
}

// ---- the scripted history -------------------------------------------------------

class GroupScript {
  readonly steps: Json[] = [];
  readonly sessions = new Map<Who, GroupSession>();
  readonly distributions = new Map<string, { bytes: Uint8Array; from: Who }>();
  readonly messages = new Map<string, { bytes: Uint8Array; from: Who; plaintext: string }>();
  /** Serialized sessions after step i (index 0: before any step). */
  readonly snapshots: Partial<Record<Who, Uint8Array>>[] = [{}];
  readonly stepOf = new Map<string, number>();
  readonly #generation: Record<Who, number> = { alice: 0, bob: 0, alice2: 0, carol: 0 };
  readonly #cast: Cast;
  groupId: Uint8Array = new Uint8Array(0);

  constructor(cast: Cast) {
    this.#cast = cast;
  }

  #push(step: { [k: string]: Json }, key?: string): void {
    const n = this.steps.length + 1;
    this.steps.push({ step: n, ...step });
    if (key) this.stepOf.set(key, n);
    const snap: Partial<Record<Who, Uint8Array>> = {};
    for (const [who, s] of this.sessions) snap[who] = s.serialize();
    this.snapshots.push(snap);
  }

  #session(who: Who): GroupSession {
    const s = this.sessions.get(who);
    if (!s) throw new Error(`${who} has no group session`);
    return s;
  }

  /** The labels of the chain `who` starts next. */
  #chainDraws(who: Who): [string, number][] {
    const g = this.#generation[who];
    return [
      [`group.${who}.chain${g}.chainKey`, 32],
      [`group.${who}.chain${g}.signingSeed`, 32],
    ];
  }

  #newChainJson(who: Who): { [k: string]: Json } {
    const g = this.#generation[who]++;
    const rng = this.#cast.rng;
    const seed = rng.drawn(`group.${who}.chain${g}.signingSeed`);
    return {
      generation: g,
      chainKey: hex(rng.drawn(`group.${who}.chain${g}.chainKey`)),
      signingSeed: hex(seed),
      signingKey: hex(this.#cast.backend.ed25519PublicKey(seed)),
    };
  }

  create(who: Who, others: Who[], joining: { epoch: number } | null): void {
    const cast = this.#cast;
    const device = deviceOf(cast, who);
    const draws: [string, number][] = [...(joining ? [] : [['group.groupId', 32] as [string, number]]), ...this.#chainDraws(who)];
    const session = cast.rng.run(draws, () =>
      GroupSession.create(
        device,
        others.map((o) => memberOf(deviceOf(cast, o))),
        joining ? { groupId: this.groupId, epoch: joining.epoch } : {},
      ),
    );
    if (!joining) this.groupId = cast.rng.drawn('group.groupId');
    this.sessions.set(who, session);
    this.#push({
      action: 'create',
      party: who,
      members: others.map((o) => memberJson(deviceOf(cast, o))),
      groupId: hex(this.groupId),
      groupIdDrawn: !joining,
      epoch: joining?.epoch ?? 0,
      chain: this.#newChainJson(who),
    });
  }

  /** Sends `who`'s chain: its current one, or a new one after a rotation or a membership change. */
  distribute(who: Who, name: string, change: { rotate: true } | { add: Who[] } | { remove: Who[] } | null): void {
    const cast = this.#cast;
    const session = this.#session(who);
    const startsChain = change !== null && ('rotate' in change || 'remove' in change);
    const d = cast.rng.run(startsChain ? this.#chainDraws(who) : [], () => {
      if (change === null) return session.distribution();
      if ('rotate' in change) return session.rotate();
      if ('add' in change) return session.addMembers(change.add.map((o) => memberOf(deviceOf(cast, o))));
      return session.removeMembers(change.remove.map((o) => memberOf(deviceOf(cast, o))));
    });
    const state = stateOf(cast, session);
    const c = state.sending;
    const fields = {
      groupId: this.groupId,
      epoch: c.epoch,
      sender: deviceOf(cast, who),
      generation: c.generation,
      iteration: c.iteration,
      chainKey: c.chainKey,
      signingKey: c.signing.publicKey,
    };
    const expected = encodeCbor([
      PROTOCOL_VERSION,
      MessageType.distribution,
      fields.groupId,
      fields.epoch,
      memberCbor(fields.sender),
      fields.generation,
      fields.iteration,
      fields.chainKey,
      fields.signingKey,
    ]);
    if (hex(expected) !== hex(d.bytes)) throw new Error(`distribution ${name}: core's bytes differ from the fields`);
    this.distributions.set(name, { bytes: d.bytes, from: who });
    const changeJson: Json =
      change === null
        ? null
        : 'rotate' in change
          ? { kind: 'rotate' }
          : 'add' in change
            ? { kind: 'add', members: change.add.map((o) => memberJson(deviceOf(cast, o))) }
            : { kind: 'remove', members: change.remove.map((o) => memberJson(deviceOf(cast, o))) };
    this.#push(
      {
        action: 'distribute',
        party: who,
        name,
        change: changeJson,
        ...(startsChain ? { newChain: this.#newChainJson(who) } : {}),
        epochAfter: state.epoch,
        recipients: d.recipients.map((m) => ({ accountKey: hex(m.accountKey), deviceId: m.deviceId })),
        epoch: fields.epoch,
        sender: memberJson(fields.sender),
        generation: fields.generation,
        iteration: fields.iteration,
        chainKey: hex(fields.chainKey),
        signingKey: hex(fields.signingKey),
        distribution: hex(d.bytes),
      },
      `${who}:${name}`,
    );
  }

  /** `who` accepts a distribution, as it arrives in the one-to-one session of its sender. */
  accept(who: Who, name: string): void {
    const cast = this.#cast;
    const d = this.distributions.get(name);
    if (!d) throw new Error(`no distribution ${name}`);
    const out = this.#session(who).processDistribution(d.bytes, deviceOf(cast, d.from).certificate);
    const state = stateOf(cast, this.#session(who));
    const chain = state.receiving
      .get(`${hex(deviceOf(cast, d.from).certificate.accountKey)}.${deviceOf(cast, d.from).deviceId}`)
      ?.chains.find((c) => c.generation === out.generation);
    this.#push(
      {
        action: 'accept',
        party: who,
        name,
        from: d.from,
        senderCertificate: hex(encodeCertificate(deviceOf(cast, d.from).certificate)),
        generation: out.generation,
        epoch: out.epoch,
        iteration: out.iteration,
        graceEnd: chain?.graceEnd ?? null,
      },
      `${who}:${name}`,
    );
  }

  encrypt(who: Who, name: string, plaintext: string): void {
    const cast = this.#cast;
    const session = this.#session(who);
    const before = stateOf(cast, session).sending;
    const out = session.encrypt(utf8(plaintext));
    if (out.distribution) throw new Error('unexpected rotation');
    const padded = pad(utf8(plaintext));
    const x = sealExplicit(
      cast,
      {
        groupId: this.groupId,
        epoch: before.epoch,
        sender: deviceOf(cast, who),
        generation: before.generation,
        iteration: before.iteration,
      },
      before.chainKey,
      padded,
      before.signing.seed,
    );
    if (hex(x.message) !== hex(out.message)) throw new Error(`encrypt ${name}: core's message differs from the derivation`);
    this.messages.set(name, { bytes: out.message, from: who, plaintext });
    this.#push({
      action: 'encrypt',
      party: who,
      name,
      plaintext: hex(utf8(plaintext)),
      epoch: before.epoch,
      generation: before.generation,
      iteration: before.iteration,
      chainKey: hex(before.chainKey),
      messageKey: hex(x.keys.messageKey),
      nonce: hex(x.keys.nonce),
      nextChainKey: hex(x.keys.nextChainKey),
      headerBytes: hex(x.headerBytes),
      paddedPlaintext: hex(padded),
      ciphertext: hex(x.ciphertext),
      signedBytes: hex(x.signedBytes),
      signature: hex(x.signature),
      message: hex(x.message),
    });
  }

  decrypt(who: Who, name: string): void {
    const cast = this.#cast;
    const m = this.messages.get(name);
    if (!m) throw new Error(`no message ${name}`);
    const session = this.#session(who);
    const state = stateOf(cast, session);
    const sender = deviceOf(cast, m.from);
    const senderKey = `${hex(sender.certificate.accountKey)}.${sender.deviceId}`;
    const header = decodeCbor(getField(m.bytes, [2]) as Uint8Array, 'GroupHeader', 128) as [Uint8Array, number, CborValue, number, number];
    const [, , , generation, iteration] = header;
    const chain = state.receiving.get(senderKey)?.chains.find((c) => c.generation === generation);
    if (!chain) throw new Error(`decrypt ${name}: no chain`);
    const stored: Json[] = [];
    let used: { messageKey: Uint8Array; nonce: Uint8Array };
    let path: string;
    if (iteration < chain.iteration) {
      const k = state.skipped.get(`${senderKey}/${generation}/${iteration}`);
      if (!k) throw new Error(`decrypt ${name}: no stored key`);
      used = { messageKey: k.keys.key, nonce: k.keys.nonce };
      path = 'storedKey';
    } else {
      let ck = chain.chainKey;
      for (let i = chain.iteration; i < iteration; i++) {
        const st = groupStep(cast, ck);
        stored.push({ sender: memberJson(sender), generation, iteration: i, messageKey: hex(st.messageKey), nonce: hex(st.nonce) });
        ck = st.nextChainKey;
      }
      used = groupStep(cast, ck);
      path = 'chain';
    }
    const out = session.decrypt(m.bytes);
    if (fromUtf8(out.plaintext) !== m.plaintext) throw new Error(`decrypt ${name}: wrong plaintext`);
    this.#push(
      {
        action: 'decrypt',
        party: who,
        name,
        path,
        keysStored: stored,
        messageKey: hex(used.messageKey),
        nonce: hex(used.nonce),
        plaintext: hex(out.plaintext),
      },
      `${who}:${name}`,
    );
  }
}

function runScript(cast: Cast): GroupScript {
  const s = new GroupScript(cast);
  s.create('alice', ['bob', 'alice2'], null);
  s.create('bob', ['alice', 'alice2'], { epoch: 0 });
  s.create('alice2', ['alice', 'bob'], { epoch: 0 });
  s.distribute('alice', 'dA0', null);
  s.distribute('bob', 'dB0', null);
  s.distribute('alice2', 'dA2', null);
  s.accept('bob', 'dA0');
  s.accept('alice2', 'dA0');
  s.accept('alice', 'dB0');
  s.accept('alice2', 'dB0');
  s.accept('alice', 'dA2');
  s.accept('bob', 'dA2');
  s.encrypt('alice', 'm0', 'hello group');
  s.encrypt('alice', 'm1', 'second');
  s.encrypt('alice', 'm2', 'third, read first by bob');
  s.decrypt('bob', 'm2'); // m0 and m1 stepped over: keys stored
  s.decrypt('bob', 'm0'); // late, from a stored key
  s.decrypt('alice2', 'm0');
  s.decrypt('alice2', 'm1');
  s.decrypt('alice2', 'm2');
  s.encrypt('bob', 'n0', 'hi all');
  s.decrypt('alice', 'n0');
  s.decrypt('alice2', 'n0');
  s.encrypt('alice2', 'p0', 'sent by my second device before it is removed');
  s.distribute('alice', 'dA1', { rotate: true });
  s.encrypt('alice', 'm3', 'first on my new chain');
  s.encrypt('alice', 'm4', 'second on my new chain, never read by bob before the epochs move on');
  s.accept('bob', 'dA1');
  s.decrypt('bob', 'm3');
  s.decrypt('bob', 'm1'); // late: from the previous chain, after the rotation
  s.accept('alice2', 'dA1');
  s.decrypt('alice2', 'm3');
  s.distribute('alice', 'dA2x', { remove: ['alice2'] }); // epoch 1, a new chain for bob only
  s.distribute('bob', 'dB1', { remove: ['alice2'] });
  s.accept('bob', 'dA2x');
  s.accept('alice', 'dB1');
  s.encrypt('alice', 'm5', 'epoch 1: alice2 cannot read this');
  s.decrypt('bob', 'm5');
  s.distribute('alice', 'dA2c', { add: ['carol'] }); // my current chain at its current iteration, for carol
  s.distribute('bob', 'dB1c', { add: ['carol'] });
  s.create('carol', ['alice', 'bob'], { epoch: 1 });
  s.distribute('carol', 'dC0', null);
  s.accept('carol', 'dA2c');
  s.accept('carol', 'dB1c');
  s.accept('alice', 'dC0');
  s.accept('bob', 'dC0');
  s.encrypt('alice', 'm6', 'welcome carol');
  s.decrypt('carol', 'm6');
  s.decrypt('bob', 'm6');
  s.encrypt('carol', 'k0', 'thanks');
  s.decrypt('alice', 'k0');
  s.decrypt('bob', 'k0');
  s.distribute('alice', 'dA3', { remove: ['carol'] }); // epoch 2
  s.distribute('bob', 'dB2', { remove: ['carol'] });
  s.accept('bob', 'dA3');
  s.accept('alice', 'dB2');
  s.encrypt('alice', 'm7', 'epoch 2');
  s.decrypt('bob', 'm7');
  return s;
}

// ---- refusals -----------------------------------------------------------------------

function messageGroup(cast: Cast, s: GroupScript): TestGroup {
  const msg = (name: string) => (s.messages.get(name) as { bytes: Uint8Array }).bytes;
  const at = (key: string) => s.stepOf.get(key) as number;
  const last = s.steps.length;
  const deliver = (comment: string, afterStep: number, party: Who, message: Uint8Array, error: string): TestCase => ({
    comment,
    scenario: SCENARIO,
    afterStep,
    party,
    message: hex(message),
    result: 'invalid',
    error,
  });
  // Alice's first chain, as only she holds it: its signing seed and its chain key at any iteration.
  const seed0 = cast.rng.drawn('group.alice.chain0.signingSeed');
  const ck0 = cast.rng.drawn('group.alice.chain0.chainKey');
  const alice = cast.aliceDevice1;
  const header = (over: Partial<{ groupId: Uint8Array; epoch: number; iteration: number }> = {}) => ({
    groupId: over.groupId ?? s.groupId,
    epoch: over.epoch ?? 0,
    sender: alice,
    generation: 0,
    iteration: over.iteration ?? 3,
  });
  const padded = pad(utf8('forged'));
  const bobRead = at('bob:m0'); // bob holds alice's chain 0 at iteration 3 from here
  const byAlice = (over: Parameters<typeof header>[0], body = padded, iteration = over?.iteration ?? 3) =>
    sealExplicit(cast, header(over), chainKeyAt(cast, ck0, iteration), body, seed0).message;
  const junk = (over: Parameters<typeof header>[0]) => {
    const h = header(over);
    const headerBytes = encodeCbor([h.groupId, h.epoch, memberCbor(h.sender), h.generation, h.iteration]);
    const ciphertext = new Uint8Array(176).fill(0x5a);
    const signature = cast.backend.ed25519Sign(seed0, encodeCbor([Label.groupMessage, headerBytes, ciphertext]));
    return encodeCbor([PROTOCOL_VERSION, MessageType.group, headerBytes, ciphertext, signature]);
  };
  // Bob knows alice's chain key (from her distribution) but not her signing key.
  const bobSeed = cast.rng.drawn('group.bob.chain0.signingSeed');
  const impersonation = sealExplicit(cast, header({}), chainKeyAt(cast, ck0, 3), padded, bobSeed).message;
  const otherGroup = new Uint8Array(32).fill(0x42);
  const m0 = msg('m0');
  return {
    type: 'GroupMessageDelivery',
    spec: 'spec/08-groups.md §5.1, §5.3',
    description:
      "Each message is delivered to the party's GroupSession as it stood after step afterStep of the named scenario. Decrypting it must fail with the error and leave the session unchanged.",
    tests: [
      deliver('m0 again after bob read it', bobRead, 'bob', m0, 'DUPLICATE_MESSAGE'),
      deliver(
        'signature with one bit flipped',
        at('bob:m2') - 1,
        'bob',
        editField(m0, [4], (x) => flipInField(x, 0)),
        'BAD_SIGNATURE',
      ),
      deliver(
        'ciphertext with one bit flipped (the signature covers it)',
        at('bob:m2') - 1,
        'bob',
        editField(m0, [3], (x) => flipInField(x, 0)),
        'BAD_SIGNATURE',
      ),
      deliver(
        'bob impersonates alice: her chain key (which he holds) and his own signing key',
        bobRead,
        'alice2',
        impersonation,
        'BAD_SIGNATURE',
      ),
      deliver(
        'another group id in the header',
        bobRead,
        'bob',
        editField(m0, [2], (h) => setField(h as Uint8Array, [0], otherGroup)),
        'UNKNOWN_GROUP',
      ),
      deliver("bob's own message delivered back to him", at('alice:n0'), 'bob', msg('n0'), 'UNKNOWN_SENDER'),
      deliver('a message from alice2 after bob removed her (sent before the removal)', at('bob:dA2x'), 'bob', msg('p0'), 'UNKNOWN_SENDER'),
      deliver("alice's m3 before bob has her new chain's distribution", at('bob:dA1') - 1, 'bob', msg('m3'), 'UNKNOWN_CHAIN'),
      deliver(
        'm6 to carol is fine, but m5 (sent before she joined) is not hers to read',
        at('carol:m6'),
        'carol',
        msg('m5'),
        'DUPLICATE_MESSAGE',
      ),
      deliver('an epoch-0 message (m4, never read) after bob reached epoch 2', last, 'bob', msg('m4'), 'STALE_EPOCH'),
      deliver(
        "signed by alice's chain key holder, but the header's epoch (1) is not the chain's (0)",
        bobRead,
        'bob',
        byAlice({ epoch: 1 }),
        'STALE_EPOCH',
      ),
      deliver('signed by alice, ciphertext not made with the message key', bobRead, 'bob', junk({}), 'DECRYPT_FAILED'),
      deliver(
        `signed by alice, ${limits.MAX_FORWARD_JUMP} iterations ahead: allowed, then fails authentication`,
        bobRead,
        'bob',
        junk({ iteration: 3 + limits.MAX_FORWARD_JUMP }),
        'DECRYPT_FAILED',
      ),
      deliver(
        `signed by alice, ${limits.MAX_FORWARD_JUMP + 1} iterations ahead`,
        bobRead,
        'bob',
        junk({ iteration: 4 + limits.MAX_FORWARD_JUMP }),
        'TOO_FAR_AHEAD',
      ),
      deliver('authentic, but the padded plaintext has no 0x80 marker', bobRead, 'bob', byAlice({}, new Uint8Array(160)), 'BAD_PADDING'),
      deliver('version 3 (2 is GroupMessageV2, formats-v2 §8.1)', bobRead, 'bob', setField(m0, [0], 3), 'UNSUPPORTED_VERSION'),
      deliver('message type 2 (a one-to-one RatchetMessage type)', bobRead, 'bob', setField(m0, [1], 2), 'MALFORMED'),
      deliver('four fields', bobRead, 'bob', dropLastField(m0), 'MALFORMED'),
      deliver(
        'signature of 63 bytes',
        bobRead,
        'bob',
        editField(m0, [4], (x) => (x as Uint8Array).slice(1)),
        'MALFORMED',
      ),
      deliver('ciphertext of 15 bytes', bobRead, 'bob', setField(m0, [3], new Uint8Array(15)), 'MALFORMED'),
      deliver(
        'header longer than 128 bytes',
        bobRead,
        'bob',
        editField(m0, [2], (h) => appendField(h as Uint8Array, [], new Uint8Array(100))),
        'OVERSIZED',
      ),
      deliver(
        'header of six fields',
        bobRead,
        'bob',
        editField(m0, [2], (h) => appendField(h as Uint8Array, [], 0)),
        'MALFORMED',
      ),
      deliver(
        'header sender device id 0',
        bobRead,
        'bob',
        editField(m0, [2], (h) => setField(h as Uint8Array, [2, 1], 0)),
        'MALFORMED',
      ),
      deliver(
        'header iteration 2^32-1 (above 2^32-2)',
        bobRead,
        'bob',
        editField(m0, [2], (h) => setField(h as Uint8Array, [4], 0xffffffff)),
        'OVERSIZED',
      ),
      deliver('last byte cut off', bobRead, 'bob', truncate(m0), 'MALFORMED'),
    ],
  };
}

function distributionGroup(cast: Cast, s: GroupScript): TestGroup {
  const dist = (name: string) => (s.distributions.get(name) as { bytes: Uint8Array }).bytes;
  const at = (key: string) => s.stepOf.get(key) as number;
  const last = s.steps.length;
  const cert = (who: Who) => hex(encodeCertificate(deviceOf(cast, who).certificate));
  const deliver = (comment: string, afterStep: number, party: Who, distribution: Uint8Array, from: Who, error: string): TestCase => ({
    comment,
    scenario: SCENARIO,
    afterStep,
    party,
    distribution: hex(distribution),
    senderCertificate: cert(from),
    result: 'invalid',
    error,
  });
  const dA0 = dist('dA0');
  const bobHasA0 = at('bob:dA0');
  // SenderKeyDistribution = [1, 4, groupId, epoch, sender, generation, iteration, chainKey, signingKey].
  return {
    type: 'DistributionDelivery',
    spec: 'spec/08-groups.md §4.1-§4.2',
    description:
      "Each distribution is handed to the party's GroupSession as it stood after step afterStep, as if it arrived in a one-to-one session whose peer is senderCertificate. It must be refused with the error and leave the session unchanged.",
    tests: [
      deliver("alice's distribution again", bobHasA0, 'bob', dA0, 'alice', 'DUPLICATE_MESSAGE'),
      deliver(
        "alice's distribution arriving in alice2's session (a forwarded chain)",
        bobHasA0 - 1,
        'bob',
        dA0,
        'alice2',
        'FORGED_DISTRIBUTION',
      ),
      deliver("bob's own distribution handed back to bob", bobHasA0, 'bob', dist('dB0'), 'bob', 'FORGED_DISTRIBUTION'),
      deliver(
        "a second chain for alice's generation 0 with another signing key",
        bobHasA0,
        'bob',
        setField(dA0, [8], cast.backend.ed25519PublicKey(new Uint8Array(32).fill(3))),
        'alice',
        'FORGED_DISTRIBUTION',
      ),
      deliver('another group id', bobHasA0 - 1, 'bob', setField(dA0, [2], new Uint8Array(32).fill(0x42)), 'alice', 'UNKNOWN_GROUP'),
      deliver("carol's distribution before bob added her", at('bob:dB1c') - 1, 'bob', dist('dC0'), 'carol', 'UNKNOWN_SENDER'),
      deliver("alice's epoch-0 chain (generation 1) after bob reached epoch 2", last, 'bob', dist('dA1'), 'alice', 'STALE_EPOCH'),
      deliver(
        "a chain of alice's generation 1 at epoch 1, below the floor bob set when epoch 2 dropped her older chains",
        last,
        'bob',
        setField(dist('dA1'), [3], 1),
        'alice',
        'UNKNOWN_CHAIN',
      ),
      deliver('version 2', bobHasA0 - 1, 'bob', setField(dA0, [0], 2), 'alice', 'UNSUPPORTED_VERSION'),
      deliver('message type 3 instead of 4', bobHasA0 - 1, 'bob', setField(dA0, [1], 3), 'alice', 'MALFORMED'),
      deliver('eight fields', bobHasA0 - 1, 'bob', dropLastField(dA0), 'alice', 'MALFORMED'),
      deliver(
        'chainKey of 31 bytes',
        bobHasA0 - 1,
        'bob',
        editField(dA0, [7], (k) => (k as Uint8Array).slice(1)),
        'alice',
        'MALFORMED',
      ),
      deliver('sender device id 0', bobHasA0 - 1, 'bob', setField(dA0, [4, 1], 0), 'alice', 'MALFORMED'),
      deliver('longer than 256 bytes', bobHasA0 - 1, 'bob', appendField(dA0, [], new Uint8Array(120)), 'alice', 'OVERSIZED'),
    ],
  };
}

function recordGroups(cast: Cast, s: GroupScript): TestGroup[] {
  const at = (key: string) => s.stepOf.get(key) as number;
  // The party's next decryptions, up to its next change of state other than a decryption or an encryption.
  const later = (who: Who, afterStep: number, count: number) => {
    const out: Json[] = [];
    for (const st of s.steps.slice(afterStep) as { action: string; party: string; name: string }[]) {
      if (st.party !== who || st.action === 'encrypt') continue;
      if (st.action !== 'decrypt' || out.length === count) break;
      const m = s.messages.get(st.name) as { bytes: Uint8Array; plaintext: string };
      out.push({ name: st.name, message: hex(m.bytes), plaintext: hex(utf8(m.plaintext)) });
    }
    if (out.length !== count) throw new Error(`${who} has ${out.length} decryptions after step ${afterStep}, not ${count}`);
    return out;
  };
  const record = (who: Who, afterStep: number, count: number, comment: string): TestCase => ({
    comment,
    scenario: SCENARIO,
    afterStep,
    party: who,
    record: hex(s.snapshots[afterStep]?.[who] as Uint8Array),
    decrypts: later(who, afterStep, count),
    result: 'valid',
  });
  const bobRecord = s.snapshots[at('bob:m2')]?.bob as Uint8Array;
  const invalid = (comment: string, bytes: Uint8Array, error: string): TestCase => ({
    comment,
    record: hex(bytes),
    result: 'invalid',
    error,
  });
  return [
    {
      type: 'GroupRecord',
      spec: 'spec/08-groups.md §8',
      description:
        "A party's GroupSession as saved after a step of the scenario: it must load, save back to the same bytes, and decrypt the listed later messages in order.",
      tests: [
        record('bob', at('bob:m2'), 1, 'bob holding two stored keys of alice'),
        record('alice', at('alice:dA2'), 1, 'alice with every chain of the first epoch'),
        record('bob', at('bob:dA2x'), 1, 'bob after applying the removal of alice2 (epoch 1, grace window set)'),
        record('bob', s.steps.length, 0, 'bob at the end (epoch 2)'),
      ],
    },
    {
      type: 'InvalidGroupRecord',
      spec: 'spec/08-groups.md §8',
      description: 'Loading the record must fail with the error.',
      tests: [
        invalid('format tag of another record', setField(bobRecord, [0], 'parley/session-record'), 'BAD_RECORD'),
        invalid(
          'version 2 with another layout (the version is read before the field count)',
          appendField(setField(bobRecord, [1], 2), [], 0),
          'UNSUPPORTED_VERSION',
        ),
        invalid(
          'self is not among the members',
          editField(bobRecord, [6], (m) => (m as CborValue[]).slice(1)),
          'BAD_RECORD',
        ),
        invalid(
          'a skipped key at or past its chain position',
          editField(bobRecord, [9], (k) => (k as CborValue[]).map((e) => editArray(e, 2, 50))),
          'BAD_RECORD',
        ),
        invalid('rotateAfter 0', setField(bobRecord, [4], 0), 'BAD_RECORD'),
        invalid('last byte cut off', truncate(bobRecord), 'BAD_RECORD'),
      ],
    },
  ];
}

function editArray(v: CborValue, index: number, value: CborValue): CborValue {
  const out = (v as CborValue[]).slice();
  out[index] = value;
  return out;
}

export function groupsFile(cast: Cast): string {
  let ck = cast.rng.value('kdf.groupChainKey', 32);
  const kdf: TestCase[] = [];
  for (let i = 0; i < 3; i++) {
    const st = groupStep(cast, ck);
    kdf.push({
      comment: `chain step ${i}`,
      chainKey: hex(ck),
      messageKey: hex(st.messageKey),
      nonce: hex(st.nonce),
      nextChainKey: hex(st.nextChainKey),
      result: 'valid',
    });
    ck = st.nextChainKey;
  }
  const s = runScript(cast);
  const devices: { [k: string]: Json } = {};
  for (const who of ['alice', 'bob', 'alice2', 'carol'] as Who[]) devices[who] = deviceJson(cast, deviceOf(cast, who), LABELS[who]);
  const file: VectorFile = {
    description:
      'Sender-key groups: the chain KDF, a scripted history (distributions, out-of-order and late messages, a rotation, removals and epochs, an addition) with every key and byte, and the messages, distributions and records a device must refuse.',
    spec: 'spec/08-groups.md',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      kdf: 'With L = UTF-8("Parley v1 group chain"): messageKey = HMAC-SHA256(chainKey, L || 0x01), nonce = HMAC-SHA256(chainKey, L || 0x03)[0..12], nextChainKey = HMAC-SHA256(chainKey, L || 0x02).',
      message:
        'headerBytes = CBOR([groupId, epoch, [accountKey, deviceId], generation, iteration]); ciphertext = ChaCha20-Poly1305(messageKey, nonce, paddedPlaintext, aad = headerBytes); signedBytes = CBOR(["Parley v1 group message", headerBytes, ciphertext]); message = CBOR([1, 3, headerBytes, ciphertext, Ed25519(signingSeed, signedBytes)]).',
      randomness:
        "The group id (groupIdDrawn) and each chain's chainKey and signingSeed (drawn in that order when the chain starts) are the only random values.",
      transport:
        'Distributions travel inside one-to-one sessions (handshake.json, ratchet.json); here each is handed to GroupSession.processDistribution with the certificate of the session it came through (senderCertificate).',
    },
    testGroups: [
      {
        type: 'GroupChainKdf',
        spec: 'spec/08-groups.md §3',
        description: 'The group chain step, three steps along one chain.',
        tests: kdf,
      },
      {
        type: 'GroupScenario',
        spec: 'spec/08-groups.md §3-§6',
        description:
          "Four member devices (alice's two, bob's, carol's; their keys in devices). Each step is one call on one party's GroupSession: create (with the chain it starts), distribute (its current chain, or a new one after rotate or a membership change), accept (processDistribution with the sender's certificate), encrypt, or decrypt (a stored key, or the chain stepped forward with the keys stored on the way). Every step must give the listed values.",
        devices,
        tests: [
          {
            comment: 'creation, out-of-order and late messages, a rotation, two removals, an addition',
            name: SCENARIO,
            steps: s.steps,
            result: 'valid',
          },
        ],
      },
      messageGroup(cast, s),
      distributionGroup(cast, s),
      ...recordGroups(cast, s),
    ],
  };
  return finish(file);
}
