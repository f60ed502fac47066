/**
 * Sender-key groups as spec/08-groups.md describes them: the chain step
 * (§3), distributions (§4), group messages (§5), membership and epochs (§6)
 * and the stored record (§8). One device's state is a GroupState; every
 * operation works on a copy and replaces the caller's state only on success.
 */
import { decode, encode, readArray, readBytes, readOptional, readTag, readUint, readVersion } from './cbor.mjs';
import { ChainConstant, Label, Limits, Sizes, VERSION } from './constants.mjs';
import { ProtocolError, fail } from './errors.mjs';
import { concat, equal, toHex, utf8 } from './hex.mjs';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, hmac, open, seal } from './primitives.mjs';
import { pad, unpad } from './ratchet.mjs';

export const GroupLimits = {
  GROUP_ID_BYTES: 32,
  MAX_MEMBER_DEVICES: 5000,
  MAX_FORWARD_JUMP: 2000,
  MAX_SKIPPED_KEYS: 5000,
  MAX_CHAINS_PER_SENDER: 5,
  EPOCH_GRACE_EPOCHS: 1,
  EPOCH_GRACE_MESSAGES: 1000,
  DEFAULT_ROTATE_AFTER: 1000,
  MAX_ROTATE_AFTER: 2 ** 24,
  MAX_COUNTER: 2 ** 32 - 2,
  MAX_DISTRIBUTION_BYTES: 256,
  MAX_HEADER_BYTES: 128,
};
const TYPE_GROUP = 3;
const TYPE_DISTRIBUTION = 4;
const RECORD_TAG = 'parley/group-session';

// ---- the chain step (§3) ---------------------------------------------------------

const L = utf8(Label.groupChain);

export function groupStep(chainKey) {
  return {
    messageKey: hmac(chainKey, concat(L, ChainConstant.messageKey)),
    nonce: hmac(chainKey, concat(L, ChainConstant.messageNonce)).slice(0, 12),
    nextChainKey: hmac(chainKey, concat(L, ChainConstant.nextChainKey)),
  };
}

// ---- members (§2.1) ----------------------------------------------------------------

export const memberKey = (m) => `${toHex(m.accountKey)}.${m.deviceId}`;
export const memberArray = (m) => [m.accountKey, m.deviceId];

function memberFrom(v, what) {
  const f = readArray(v, what, 2);
  const accountKey = readBytes(f[0], `${what}.accountKey`, 32);
  const deviceId = readUint(f[1], `${what}.deviceId`, Limits.MAX_DEVICE_ID);
  if (deviceId === 0) fail('MALFORMED', `${what}.deviceId 0`);
  return { accountKey, deviceId };
}

const counter = (v, field) => readUint(v, field, GroupLimits.MAX_COUNTER);

// ---- distributions (§4.1) --------------------------------------------------------

export function encodeDistribution(d) {
  return encode([
    VERSION,
    TYPE_DISTRIBUTION,
    d.groupId,
    d.epoch,
    memberArray(d.sender),
    d.generation,
    d.iteration,
    d.chainKey,
    d.signingKey,
  ]);
}

/** A versioned, typed item: version and type are checked before the field count. */
function readTyped(v, what, type, fields) {
  if (!Array.isArray(v) || v.length < 2) fail('MALFORMED', `${what}: no version and type`);
  readVersion(v[0], what);
  if (v[1] !== type) fail('MALFORMED', `${what}: type ${v[1]}`);
  return readArray(v, what, fields);
}

export function decodeDistribution(bytes) {
  const f = readTyped(
    decode(bytes, 'SenderKeyDistribution', GroupLimits.MAX_DISTRIBUTION_BYTES),
    'SenderKeyDistribution',
    TYPE_DISTRIBUTION,
    9,
  );
  return {
    groupId: readBytes(f[2], 'groupId', GroupLimits.GROUP_ID_BYTES),
    epoch: counter(f[3], 'epoch'),
    sender: memberFrom(f[4], 'sender'),
    generation: counter(f[5], 'generation'),
    iteration: counter(f[6], 'iteration'),
    chainKey: readBytes(f[7], 'chainKey', 32),
    signingKey: readBytes(f[8], 'signingKey', 32),
  };
}

// ---- messages (§5.1) ---------------------------------------------------------------

export const encodeGroupHeader = (h) => encode([h.groupId, h.epoch, memberArray(h.sender), h.generation, h.iteration]);
export const groupSignedBytes = (headerBytes, ciphertext) => encode([Label.groupMessage, headerBytes, ciphertext]);

export function decodeGroupMessage(bytes) {
  const f = readTyped(decode(bytes, 'GroupMessage', Limits.MAX_MESSAGE_BYTES), 'GroupMessage', TYPE_GROUP, 5);
  const headerBytes = readBytes(f[2], 'header', { max: GroupLimits.MAX_HEADER_BYTES });
  const ciphertext = readBytes(f[3], 'ciphertext', { min: Sizes.tag, max: Limits.MAX_MESSAGE_BYTES });
  const signature = readBytes(f[4], 'signature', 64);
  const h = readArray(decode(headerBytes, 'GroupHeader', GroupLimits.MAX_HEADER_BYTES), 'GroupHeader', 5);
  const header = {
    groupId: readBytes(h[0], 'header.groupId', GroupLimits.GROUP_ID_BYTES),
    epoch: counter(h[1], 'header.epoch'),
    sender: memberFrom(h[2], 'header.sender'),
    generation: counter(h[3], 'header.generation'),
    iteration: counter(h[4], 'header.iteration'),
  };
  return { header, headerBytes, ciphertext, signature };
}

// ---- state ------------------------------------------------------------------------
// GroupState = { groupId, epoch, rotateAfter, self, members: Map(key -> member) in joining order,
//   sending: { generation, epoch, iteration, chainKey, signingSeed },
//   receiving: Map(key -> { member, floor, chains: [{ generation, epoch, iteration, chainKey, signingKey, graceEnd }] newest first }),
//   skipped: Map("key/generation/iteration" -> { member, generation, iteration, key, nonce }) oldest first }

const skippedId = (key, generation, iteration) => `${key}/${generation}/${iteration}`;
const graceEndFrom = (iteration) => Math.min(iteration + GroupLimits.EPOCH_GRACE_MESSAGES, 2 ** 32 - 1);

const copyState = (s) => ({
  ...s,
  members: new Map(s.members),
  receiving: new Map([...s.receiving].map(([k, e]) => [k, { ...e, chains: [...e.chains] }])),
  skipped: new Map(s.skipped),
});

/** `random` = { chainKey, signingSeed } for the new chain. */
function newChain(generation, epoch, random) {
  if (generation > GroupLimits.MAX_COUNTER) fail('INVALID_STATE', 'no generations left');
  return { generation, epoch, iteration: 0, chainKey: random.chainKey, signingSeed: random.signingSeed };
}

/**
 * §6.1: this device first, then the other members in the order given (the
 * reference code's order; the record keeps it).
 */
export function createGroup(self, others, groupId, epoch, random) {
  const members = new Map([[memberKey(self), self]]);
  for (const m of others) if (memberKey(m) !== memberKey(self)) members.set(memberKey(m), m);
  return {
    groupId,
    epoch,
    rotateAfter: GroupLimits.DEFAULT_ROTATE_AFTER,
    self,
    members,
    sending: newChain(0, epoch, random),
    receiving: new Map(),
    skipped: new Map(),
  };
}

const othersOf = (s) => [...s.members.values()].filter((m) => memberKey(m) !== memberKey(s.self));

/** My current chain at its current iteration (§4.1). */
export function myDistribution(s) {
  const c = s.sending;
  return encodeDistribution({
    groupId: s.groupId,
    epoch: c.epoch,
    sender: s.self,
    generation: c.generation,
    iteration: c.iteration,
    chainKey: c.chainKey,
    signingKey: ed25519PublicKey(c.signingSeed),
  });
}

/** §6.5: a new chain in the same epoch, for every other member. */
export function rotate(s, random) {
  const next = { ...copyState(s), sending: newChain(s.sending.generation + 1, s.epoch, random) };
  return { state: next, distribution: myDistribution(next), recipients: othersOf(next) };
}

/** §6.2: newcomers get my current chain at its current iteration; nothing rotates. */
export function addMembers(s, added) {
  const next = copyState(s);
  for (const m of added) next.members.set(memberKey(m), m);
  return { state: next, distribution: myDistribution(next), recipients: added };
}

/** §6.3: epoch + 1, the removed devices' chains gone, older epochs dropped or given a grace end, a new chain for the rest. */
export function removeMembers(s, removed, random) {
  const next = copyState(s);
  const gone = new Set(removed.map(memberKey));
  for (const k of gone) next.members.delete(k);
  const epoch = s.epoch + 1;
  const oldest = epoch - GroupLimits.EPOCH_GRACE_EPOCHS;
  const receiving = new Map();
  for (const [key, entry] of s.receiving) {
    if (gone.has(key)) continue;
    let floor = entry.floor;
    for (const c of entry.chains) if (c.epoch < oldest) floor = Math.max(floor, c.generation + 1);
    const chains = entry.chains
      .filter((c) => c.generation >= floor)
      .map((c) => (c.epoch < epoch && c.graceEnd === null ? { ...c, graceEnd: graceEndFrom(c.iteration) } : c));
    receiving.set(key, { member: entry.member, floor, chains });
  }
  const skipped = new Map();
  for (const [id, k] of s.skipped) {
    if (receiving.get(memberKey(k.member))?.chains.some((c) => c.generation === k.generation)) skipped.set(id, k);
  }
  Object.assign(next, { epoch, receiving, skipped, sending: newChain(s.sending.generation + 1, epoch, random) });
  return { state: next, distribution: myDistribution(next), recipients: othersOf(next) };
}

/** §4.2: accepts a distribution that arrived in a session whose peer is `certificate`. */
export function acceptDistribution(s, bytes, certificate) {
  const d = decodeDistribution(bytes);
  if (!equal(d.groupId, s.groupId)) fail('UNKNOWN_GROUP', 'another group');
  if (d.sender.deviceId !== certificate.deviceId || !equal(d.sender.accountKey, certificate.accountKey)) {
    fail('FORGED_DISTRIBUTION', 'names another device than its session');
  }
  const key = memberKey(d.sender);
  if (key === memberKey(s.self)) fail('FORGED_DISTRIBUTION', 'names this device');
  const member = s.members.get(key);
  if (!member) fail('UNKNOWN_SENDER', 'not a member');
  if (d.epoch + GroupLimits.EPOCH_GRACE_EPOCHS < s.epoch) fail('STALE_EPOCH', 'more than one epoch old');
  const entry = s.receiving.get(key) ?? { member, floor: 0, chains: [] };
  const held = entry.chains.find((c) => c.generation === d.generation);
  if (held) {
    if (held.epoch === d.epoch && equal(held.signingKey, d.signingKey)) fail('DUPLICATE_MESSAGE', 'chain already held');
    fail('FORGED_DISTRIBUTION', 'conflicts with a held chain');
  }
  if (d.generation < entry.floor) fail('UNKNOWN_CHAIN', 'below the floor');
  const chain = {
    generation: d.generation,
    epoch: d.epoch,
    iteration: d.iteration,
    chainKey: d.chainKey,
    signingKey: d.signingKey,
    graceEnd: d.epoch < s.epoch ? graceEndFrom(d.iteration) : null,
  };
  const chains = [...entry.chains, chain].sort((a, b) => b.generation - a.generation);
  const next = copyState(s);
  let floor = entry.floor;
  if (chains.length > GroupLimits.MAX_CHAINS_PER_SENDER) {
    const evicted = chains.pop();
    if (evicted === chain) fail('UNKNOWN_CHAIN', 'older than every chain kept');
    floor = evicted.generation + 1;
    for (const id of [...next.skipped.keys()]) if (id.startsWith(`${key}/${evicted.generation}/`)) next.skipped.delete(id);
  }
  next.receiving.set(key, { member, floor, chains });
  return { state: next, accepted: { generation: d.generation, epoch: d.epoch, iteration: d.iteration, graceEnd: chain.graceEnd } };
}

/** §5.2 (without rotation by count, which the vectors never reach). */
export function encryptGroup(s, plaintext) {
  const c = s.sending;
  if (c.iteration > GroupLimits.MAX_COUNTER) fail('INVALID_STATE', 'chain exhausted');
  const headerBytes = encodeGroupHeader({
    groupId: s.groupId,
    epoch: c.epoch,
    sender: s.self,
    generation: c.generation,
    iteration: c.iteration,
  });
  const keys = groupStep(c.chainKey);
  const padded = pad(plaintext);
  const ciphertext = seal(keys.messageKey, keys.nonce, padded, headerBytes);
  const signedBytes = groupSignedBytes(headerBytes, ciphertext);
  const signature = ed25519Sign(c.signingSeed, signedBytes);
  const message = encode([VERSION, TYPE_GROUP, headerBytes, ciphertext, signature]);
  const next = { ...copyState(s), sending: { ...c, iteration: c.iteration + 1, chainKey: keys.nextChainKey } };
  return { state: next, message, trace: { chain: c, keys, headerBytes, padded, ciphertext, signedBytes, signature } };
}

/** §5.3, checks in order. */
export function decryptGroup(s, bytes) {
  const m = decodeGroupMessage(bytes);
  const h = m.header;
  if (!equal(h.groupId, s.groupId)) fail('UNKNOWN_GROUP', 'another group');
  if (h.epoch + GroupLimits.EPOCH_GRACE_EPOCHS < s.epoch) fail('STALE_EPOCH', 'more than one epoch old');
  const key = memberKey(h.sender);
  if (key === memberKey(s.self)) fail('UNKNOWN_SENDER', 'from this device');
  const member = s.members.get(key);
  if (!member) fail('UNKNOWN_SENDER', 'not a member');
  const entry = s.receiving.get(key);
  const index = entry ? entry.chains.findIndex((c) => c.generation === h.generation) : -1;
  if (index < 0) fail('UNKNOWN_CHAIN', 'no chain of that generation');
  const chain = entry.chains[index];
  if (!ed25519Verify(chain.signingKey, groupSignedBytes(m.headerBytes, m.ciphertext), m.signature)) fail('BAD_SIGNATURE', 'signature');
  if (h.epoch !== chain.epoch) fail('STALE_EPOCH', "not the chain's epoch");
  if (chain.graceEnd !== null && h.iteration >= chain.graceEnd) fail('STALE_EPOCH', 'past the grace window');
  const next = copyState(s);
  const openWith = (k) => {
    const padded = open(k.key, k.nonce, m.ciphertext, m.headerBytes);
    if (!padded) fail('DECRYPT_FAILED', 'authentication');
    return unpad(padded);
  };
  if (h.iteration < chain.iteration) {
    const id = skippedId(key, h.generation, h.iteration);
    const kept = s.skipped.get(id);
    if (!kept) fail('DUPLICATE_MESSAGE', 'already read');
    const plaintext = openWith(kept);
    next.skipped.delete(id);
    return { state: next, plaintext, trace: { path: 'storedKey', keys: kept, stored: [] } };
  }
  if (h.iteration - chain.iteration > GroupLimits.MAX_FORWARD_JUMP) fail('TOO_FAR_AHEAD', `${h.iteration - chain.iteration} ahead`);
  const stored = [];
  let ck = chain.chainKey;
  for (let i = chain.iteration; i < h.iteration; i++) {
    const k = groupStep(ck);
    stored.push({ member, generation: h.generation, iteration: i, key: k.messageKey, nonce: k.nonce });
    ck = k.nextChainKey;
  }
  const last = groupStep(ck);
  const keys = { key: last.messageKey, nonce: last.nonce };
  const plaintext = openWith(keys);
  const chains = [...entry.chains];
  chains[index] = { ...chain, iteration: h.iteration + 1, chainKey: last.nextChainKey };
  next.receiving.set(key, { ...entry, chains });
  for (const k of stored) next.skipped.set(skippedId(key, k.generation, k.iteration), k);
  for (const id of next.skipped.keys()) {
    if (next.skipped.size <= GroupLimits.MAX_SKIPPED_KEYS) break;
    next.skipped.delete(id);
  }
  return { state: next, plaintext, trace: { path: 'chain', keys, stored } };
}

// ---- the record (§8) ---------------------------------------------------------------

export function encodeGroupRecord(s) {
  const c = s.sending;
  return encode([
    RECORD_TAG,
    VERSION,
    s.groupId,
    s.epoch,
    s.rotateAfter,
    memberArray(s.self),
    [...s.members.values()].map(memberArray),
    [c.generation, c.epoch, c.iteration, c.chainKey, c.signingSeed],
    [...s.receiving.values()].map((e) => [
      memberArray(e.member),
      e.floor,
      e.chains.map((x) => [x.generation, x.epoch, x.iteration, x.chainKey, x.signingKey, x.graceEnd]),
    ]),
    [...s.skipped.values()].map((k) => [memberArray(k.member), k.generation, k.iteration, k.key, k.nonce]),
  ]);
}

const position = (v, field) => readUint(v, field, GroupLimits.MAX_COUNTER + 1);

/** Loads a record with every invariant of §8; any failure but a version is BAD_RECORD. */
export function loadGroupRecord(bytes) {
  try {
    const v = decode(bytes, 'GroupRecord', Limits.MAX_RECORD_BYTES);
    if (!Array.isArray(v) || v.length < 2) fail('MALFORMED', 'not a record');
    readTag(v[0], 'GroupRecord', RECORD_TAG);
    readVersion(v[1], 'GroupRecord');
    const f = readArray(v, 'GroupRecord', 10);
    const groupId = readBytes(f[2], 'groupId', GroupLimits.GROUP_ID_BYTES);
    const epoch = counter(f[3], 'epoch');
    const rotateAfter = readUint(f[4], 'rotateAfter', GroupLimits.MAX_ROTATE_AFTER);
    if (rotateAfter === 0) fail('MALFORMED', 'rotateAfter 0');
    const self = memberFrom(f[5], 'self');
    const members = new Map();
    for (const x of readArray(f[6], 'members', { min: 1, max: GroupLimits.MAX_MEMBER_DEVICES })) {
      const m = memberFrom(x, 'member');
      if (members.has(memberKey(m))) fail('MALFORMED', 'duplicate member');
      members.set(memberKey(m), m);
    }
    if (!members.has(memberKey(self))) fail('MALFORMED', 'self is not a member');
    const sf = readArray(f[7], 'SendingChain', 5);
    const sending = {
      generation: counter(sf[0], 'generation'),
      epoch: counter(sf[1], 'epoch'),
      iteration: position(sf[2], 'iteration'),
      chainKey: readBytes(sf[3], 'chainKey', 32),
      signingSeed: readBytes(sf[4], 'signingSeed', 32),
    };
    const receiving = new Map();
    for (const x of readArray(f[8], 'receiving', { min: 0, max: GroupLimits.MAX_MEMBER_DEVICES })) {
      const ef = readArray(x, 'SenderChains', 3);
      const member = memberFrom(ef[0], 'SenderChains.member');
      const key = memberKey(member);
      if (!members.has(key) || key === memberKey(self) || receiving.has(key)) fail('MALFORMED', 'chains for no other member');
      const floor = counter(ef[1], 'floor');
      const chains = readArray(ef[2], 'chains', { min: 0, max: GroupLimits.MAX_CHAINS_PER_SENDER }).map((c) => {
        const cf = readArray(c, 'ReceivingChain', 6);
        return {
          generation: counter(cf[0], 'generation'),
          epoch: counter(cf[1], 'epoch'),
          iteration: position(cf[2], 'iteration'),
          chainKey: readBytes(cf[3], 'chainKey', 32),
          signingKey: readBytes(cf[4], 'signingKey', 32),
          graceEnd: readOptional(cf[5], (g) => readUint(g, 'graceEnd')),
        };
      });
      chains.forEach((c, i) => {
        if (c.generation < floor || (i > 0 && chains[i - 1].generation <= c.generation)) fail('MALFORMED', 'generations out of order');
      });
      receiving.set(key, { member: members.get(key), floor, chains });
    }
    const skipped = new Map();
    for (const x of readArray(f[9], 'skipped', { min: 0, max: GroupLimits.MAX_SKIPPED_KEYS })) {
      const kf = readArray(x, 'SkippedKey', 5);
      const key = memberKey(memberFrom(kf[0], 'SkippedKey.member'));
      const generation = counter(kf[1], 'generation');
      const iteration = counter(kf[2], 'iteration');
      const entry = receiving.get(key);
      const chain = entry?.chains.find((c) => c.generation === generation);
      if (!chain || iteration >= chain.iteration) fail('MALFORMED', 'skipped key for no held position');
      const id = skippedId(key, generation, iteration);
      if (skipped.has(id)) fail('MALFORMED', 'duplicate skipped key');
      skipped.set(id, {
        member: entry.member,
        generation,
        iteration,
        key: readBytes(kf[3], 'key', 32),
        nonce: readBytes(kf[4], 'nonce', 12),
      });
    }
    return { groupId, epoch, rotateAfter, self: members.get(memberKey(self)), members, sending, receiving, skipped };
  } catch (e) {
    if (e instanceof ProtocolError && e.code !== 'UNSUPPORTED_VERSION' && e.code !== 'BAD_RECORD') fail('BAD_RECORD', e.message);
    throw e;
  }
}
