// Group bad input: every kind is a typed error with a stable code, and the session is left byte for byte as it was.
// spec/08-groups.md §4.2, §5.3 and §9.
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Account,
  type CryptoProvider,
  type DeviceIdentity,
  type GroupMember,
  GroupSession,
  ParleyError,
  cryptoProvider,
  decodeCbor,
  encodeCbor,
  groupLimits,
  memberOf,
  nobleBackend,
  toHex,
  utf8,
} from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { encodeDistribution } from '../src/group/distribution.ts';
import { groupMessageKeys } from '../src/group/kdf.ts';
import { decodeGroupMessage, encodeGroupHeader, encodeGroupMessage, groupSignedBytes } from '../src/group/message.ts';

interface Device {
  readonly device: DeviceIdentity;
  readonly member: GroupMember;
  readonly session: GroupSession;
}

function makeGroup(p: CryptoProvider, n: number, groupId?: Uint8Array): Device[] {
  const devices = Array.from({ length: n }, () => Account.generate(p).createDevice(1, p));
  const members = devices.map((d) => memberOf(d.certificate));
  const first = GroupSession.create(devices[0] as DeviceIdentity, members, { groupId, provider: p });
  const group = devices.map((device, i) => ({
    device,
    member: members[i] as GroupMember,
    session: i === 0 ? first : GroupSession.create(device, members, { groupId: first.groupId, provider: p }),
  }));
  for (const from of group) {
    const d = from.session.distribution();
    for (const to of group) if (to !== from) to.session.processDistribution(d.bytes, from.device.certificate);
  }
  return group;
}

function expectUnchanged(session: GroupSession, fn: () => unknown, code: string | null): ParleyError {
  const before = toHex(session.serialize());
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ParleyError);
  if (code) expect((error as ParleyError).code).toBe(code);
  expect(toHex(session.serialize())).toBe(before);
  return error as ParleyError;
}

/** A device's current sending chain as stored in its record: [generation, epoch, iteration, chainKey, signingSeed]. */
function sendingChainOf(session: GroupSession) {
  const f = (decodeCbor(session.serialize(), 'r', 1 << 24) as unknown[])[7] as [number, number, number, Uint8Array, Uint8Array];
  return { generation: f[0], epoch: f[1], iteration: f[2], chainKey: f[3], seed: f[4] };
}

/** A message made with the given chain key and signed with the given seed, as only the chain's owner could (or a forger tries). */
function craft(
  p: CryptoProvider,
  groupId: Uint8Array,
  sender: GroupMember,
  chain: { generation: number; epoch: number; iteration: number; chainKey: Uint8Array },
  seed: Uint8Array,
  padded: Uint8Array,
  tamper?: (ciphertext: Uint8Array) => void,
): Uint8Array {
  const headerBytes = encodeGroupHeader({ groupId, epoch: chain.epoch, sender, generation: chain.generation, iteration: chain.iteration });
  const mk = groupMessageKeys(p.backend, chain.chainKey);
  const ciphertext = p.backend.aeadSeal(mk.key, mk.nonce, padded, headerBytes);
  tamper?.(ciphertext);
  return encodeGroupMessage(headerBytes, ciphertext, p.backend.ed25519Sign(seed, groupSignedBytes(headerBytes, ciphertext)));
}

function padded(text: string): Uint8Array {
  const out = new Uint8Array(160);
  const t = utf8(text);
  out.set(t);
  out[t.length] = 0x80;
  return out;
}

describe.each([nodeBackend, nobleBackend].map((b) => [b.name, b] as const))('group bad input (%s backend)', (_n, backend) => {
  const p = cryptoProvider(backend);

  it('a message or distribution for another group is UNKNOWN_GROUP', () => {
    const [, b] = makeGroup(p, 2) as [Device, Device];
    const [x] = makeGroup(p, 2) as [Device, Device];
    expectUnchanged(b.session, () => b.session.decrypt(x.session.encrypt(utf8('elsewhere')).message), 'UNKNOWN_GROUP');
    expectUnchanged(b.session, () => b.session.processDistribution(x.session.distribution().bytes, x.device.certificate), 'UNKNOWN_GROUP');
  });

  it('a non-member, or a message claiming to come from this very device, is UNKNOWN_SENDER', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const outsider = Account.generate(p).createDevice(1, p);
    const o = GroupSession.create(outsider, [a.member, b.member], { groupId: a.session.groupId, provider: p });
    expectUnchanged(b.session, () => b.session.decrypt(o.encrypt(utf8('let me in')).message), 'UNKNOWN_SENDER');
    expectUnchanged(b.session, () => b.session.processDistribution(o.distribution().bytes, outsider.certificate), 'UNKNOWN_SENDER');
    const twin = GroupSession.create(b.device, [a.member], { groupId: a.session.groupId, provider: p });
    expectUnchanged(b.session, () => b.session.decrypt(twin.encrypt(utf8('me?')).message), 'UNKNOWN_SENDER');
  });

  it('a message before its distribution is UNKNOWN_CHAIN, and decrypts once the distribution arrives', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const d = a.session.rotate();
    const m = a.session.encrypt(utf8('new chain')).message;
    expectUnchanged(b.session, () => b.session.decrypt(m), 'UNKNOWN_CHAIN');
    b.session.processDistribution(d.bytes, a.device.certificate);
    expect(b.session.decrypt(m).generation).toBe(1);
  });

  it('a member cannot impersonate another: every forgery is BAD_SIGNATURE', () => {
    const [a, b, c] = makeGroup(p, 3) as [Device, Device, Device];
    const groupId = a.session.groupId;
    // c holds a's chain key (it receives a's messages) but not a's signing key.
    const aChain = sendingChainOf(a.session);
    const cSeed = sendingChainOf(c.session).seed;
    const forged = craft(p, groupId, a.member, aChain, cSeed, padded('I am a'));
    expectUnchanged(b.session, () => b.session.decrypt(forged), 'BAD_SIGNATURE');
    // c relabels its own genuine message as a's.
    const own = decodeGroupMessage(c.session.encrypt(utf8('mine')).message);
    const relabeled = encodeGroupMessage(encodeGroupHeader({ ...own.header, sender: a.member }), own.ciphertext, own.signature);
    expectUnchanged(b.session, () => b.session.decrypt(relabeled), 'BAD_SIGNATURE');
    // Any change to the signature, header or ciphertext of a genuine message.
    const genuine = a.session.encrypt(utf8('genuine')).message;
    const g = decodeGroupMessage(genuine);
    for (const i of [0, 31, 63]) {
      const sig = g.signature.slice();
      sig[i] = (sig[i] as number) ^ 1;
      expectUnchanged(b.session, () => b.session.decrypt(encodeGroupMessage(g.headerBytes, g.ciphertext, sig)), 'BAD_SIGNATURE');
    }
    const ct = g.ciphertext.slice();
    ct[0] = (ct[0] as number) ^ 1;
    expectUnchanged(b.session, () => b.session.decrypt(encodeGroupMessage(g.headerBytes, ct, g.signature)), 'BAD_SIGNATURE');
    const shifted = encodeGroupHeader({ ...g.header, iteration: g.header.iteration + 1 });
    expectUnchanged(b.session, () => b.session.decrypt(encodeGroupMessage(shifted, g.ciphertext, g.signature)), 'BAD_SIGNATURE');
    expect(b.session.decrypt(genuine).plaintext).toEqual(utf8('genuine'));
  });

  it("a ciphertext that fails the AEAD is DECRYPT_FAILED and bad padding is BAD_PADDING, even when signed by the chain's owner", () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const chain = sendingChainOf(a.session);
    const tampered = craft(p, a.session.groupId, a.member, chain, chain.seed, padded('x'), (ct) => {
      ct[0] = (ct[0] as number) ^ 1;
    });
    expectUnchanged(b.session, () => b.session.decrypt(tampered), 'DECRYPT_FAILED');
    const unpadded = craft(p, a.session.groupId, a.member, chain, chain.seed, new Uint8Array(160));
    expectUnchanged(b.session, () => b.session.decrypt(unpadded), 'BAD_PADDING');
    const wrongEpoch = craft(p, a.session.groupId, a.member, { ...chain, epoch: 1 }, chain.seed, padded('x'));
    expectUnchanged(b.session, () => b.session.decrypt(wrongEpoch), 'STALE_EPOCH');
  });

  it('forged distributions are FORGED_DISTRIBUTION: wrong session, another device, this device, or a conflicting chain', () => {
    const [a, b, c] = makeGroup(p, 3) as [Device, Device, Device];
    const d = a.session.rotate();
    // c relays a's distribution through its own session.
    expectUnchanged(b.session, () => b.session.processDistribution(d.bytes, c.device.certificate), 'FORGED_DISTRIBUTION');
    // Another device of the same account, or the same device id in another account.
    const sibling = a.device.certificate.deviceId === 1 ? 2 : 1;
    expectUnchanged(
      b.session,
      () => b.session.processDistribution(d.bytes, { ...a.device.certificate, deviceId: sibling }),
      'FORGED_DISTRIBUTION',
    );
    expectUnchanged(b.session, () => b.session.processDistribution(d.bytes, c.device.certificate), 'FORGED_DISTRIBUTION');
    // A distribution describing the receiver itself.
    const own = b.session.distribution();
    expectUnchanged(b.session, () => b.session.processDistribution(own.bytes, b.device.certificate), 'FORGED_DISTRIBUTION');
    // The right session, but a second, different chain for a generation already held.
    const chain = sendingChainOf(a.session);
    const conflicting = encodeDistribution({
      groupId: a.session.groupId,
      epoch: chain.epoch,
      sender: a.member,
      generation: 0,
      iteration: 0,
      chainKey: new Uint8Array(32).fill(9),
      signingKey: new Uint8Array(32).fill(9),
    });
    expectUnchanged(b.session, () => b.session.processDistribution(conflicting, a.device.certificate), 'FORGED_DISTRIBUTION');
    b.session.processDistribution(d.bytes, a.device.certificate);
  });

  it('replayed messages and distributions are DUPLICATE_MESSAGE', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    const m = a.session.encrypt(utf8('once')).message;
    b.session.decrypt(m);
    expectUnchanged(b.session, () => b.session.decrypt(m), 'DUPLICATE_MESSAGE');
    const d = a.session.rotate();
    b.session.processDistribution(d.bytes, a.device.certificate);
    expectUnchanged(b.session, () => b.session.processDistribution(d.bytes, a.device.certificate), 'DUPLICATE_MESSAGE');
  });
});

describe('group counters at the top of their range', () => {
  const p = cryptoProvider(nodeBackend);

  it('a chain that reaches the largest iteration still saves and loads, and nothing goes past it', () => {
    const [a, b] = makeGroup(p, 2) as [Device, Device];
    // a hands b a chain (its own keys, through its own session) that starts near the top of the counter range.
    const seed = new Uint8Array(32).fill(5);
    const chain = { generation: 7, epoch: 0, iteration: 0xfffffffe, chainKey: new Uint8Array(32).fill(6) };
    const distribution = encodeDistribution({
      groupId: a.session.groupId,
      epoch: 0,
      sender: a.member,
      generation: chain.generation,
      iteration: chain.iteration,
      chainKey: chain.chainKey,
      signingKey: p.backend.ed25519PublicKey(seed),
    });
    b.session.processDistribution(distribution, a.device.certificate);
    expect(b.session.decrypt(craft(p, a.session.groupId, a.member, chain, seed, padded('last'))).iteration).toBe(0xfffffffe);
    const copy = GroupSession.deserialize(b.session.serialize(), p);
    expect(toHex(copy.serialize())).toBe(toHex(b.session.serialize()));
    expectUnchanged(
      copy,
      () => copy.decrypt(craft(p, a.session.groupId, a.member, { ...chain, iteration: 0xffffffff }, seed, padded('x'))),
      'OVERSIZED',
    );
  });
});

describe('group bad input: encodings', () => {
  const p = cryptoProvider(nodeBackend);
  const [a, b] = makeGroup(p, 2) as [Device, Device];
  const message = a.session.encrypt(utf8('a valid message')).message;
  const m = decodeGroupMessage(message);
  const distribution = a.session.distribution([b.member]).bytes;
  const fields = decodeCbor(distribution, 'd', 1024) as unknown[];
  const withField = (i: number, v: unknown) => encodeCbor(fields.map((f, j) => (j === i ? v : f)) as never);

  it('every truncation of a message or a distribution is MALFORMED', () => {
    for (let n = 0; n < message.length; n++) expectUnchanged(b.session, () => b.session.decrypt(message.subarray(0, n)), 'MALFORMED');
    for (let n = 0; n < distribution.length; n++) {
      expectUnchanged(b.session, () => b.session.processDistribution(distribution.subarray(0, n), a.device.certificate), 'MALFORMED');
    }
    const longer = new Uint8Array(message.length + 1);
    longer.set(message);
    expectUnchanged(b.session, () => b.session.decrypt(longer), 'MALFORMED');
  });

  it('oversized inputs and fields are OVERSIZED; wrong sizes MALFORMED; unknown versions UNSUPPORTED_VERSION', () => {
    const huge = encodeCbor([1, 3, m.headerBytes, new Uint8Array(groupLimits.MAX_GROUP_MESSAGE_BYTES), m.signature]);
    expectUnchanged(b.session, () => b.session.decrypt(huge), 'OVERSIZED');
    const longHeader = encodeCbor([...(decodeCbor(m.headerBytes, 'h', 200) as never[]), new Uint8Array(100)]);
    expectUnchanged(b.session, () => b.session.decrypt(encodeCbor([1, 3, longHeader, m.ciphertext, m.signature])), 'OVERSIZED');
    const header = decodeCbor(m.headerBytes, 'h', 200) as unknown[];
    const headerWith = (i: number, v: unknown) => encodeCbor(header.map((f, j) => (j === i ? v : f)) as never);
    const messageWith = (h: Uint8Array) => encodeCbor([1, 3, h, m.ciphertext, m.signature]);
    expectUnchanged(b.session, () => b.session.decrypt(messageWith(headerWith(4, 0xffffffff))), 'OVERSIZED');
    expectUnchanged(b.session, () => b.session.decrypt(messageWith(headerWith(0, new Uint8Array(33)))), 'MALFORMED');
    expectUnchanged(b.session, () => b.session.decrypt(messageWith(headerWith(2, [a.member.accountKey, 0]))), 'MALFORMED');
    expectUnchanged(b.session, () => b.session.decrypt(messageWith(headerWith(1, -1))), 'MALFORMED');
    expectUnchanged(
      b.session,
      () => b.session.decrypt(encodeCbor([1, 3, m.headerBytes, m.ciphertext, m.signature.subarray(0, 63)])),
      'MALFORMED',
    );
    expectUnchanged(b.session, () => b.session.decrypt(encodeCbor([1, 3, m.headerBytes, new Uint8Array(15), m.signature])), 'MALFORMED');
    expectUnchanged(
      b.session,
      // Version 2 exists now (formats-v2 §8.1); 3 is the first unknown one.
      () => b.session.decrypt(encodeCbor([3, 3, m.headerBytes, m.ciphertext, m.signature])),
      'UNSUPPORTED_VERSION',
    );
    expectUnchanged(b.session, () => b.session.decrypt(encodeCbor([1, 2, m.headerBytes, m.ciphertext, m.signature])), 'MALFORMED');
    expectUnchanged(b.session, () => b.session.decrypt(encodeCbor([1, 3, m.headerBytes, m.ciphertext])), 'MALFORMED');

    const cert = a.device.certificate;
    expectUnchanged(b.session, () => b.session.processDistribution(withField(7, new Uint8Array(31)), cert), 'MALFORMED');
    expectUnchanged(b.session, () => b.session.processDistribution(withField(8, new Uint8Array(300)), cert), 'OVERSIZED');
    expectUnchanged(b.session, () => b.session.processDistribution(withField(6, 0xffffffff), cert), 'OVERSIZED');
    expectUnchanged(b.session, () => b.session.processDistribution(withField(0, 9), cert), 'UNSUPPORTED_VERSION');
    expectUnchanged(b.session, () => b.session.processDistribution(withField(1, 3), cert), 'MALFORMED');
    // Each kind of input handed to the other entry point.
    expectUnchanged(b.session, () => b.session.decrypt(distribution), 'MALFORMED');
    expectUnchanged(b.session, () => b.session.processDistribution(message, cert), 'OVERSIZED');
  });

  it('random corruption of a message never decrypts, never crashes and never changes state', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), (flips) => {
        const bad = message.slice();
        for (const [at, mask] of flips) bad[at % bad.length] = (bad[at % bad.length] as number) ^ mask;
        expectUnchanged(b.session, () => b.session.decrypt(bad), null);
      }),
      { numRuns: 300 },
    );
    expect(b.session.decrypt(message).plaintext).toEqual(utf8('a valid message'));
  });

  it('errors and printed sessions carry no key bytes', () => {
    const record = decodeCbor(b.session.serialize(), 'r', 1 << 20) as unknown[];
    const secrets: string[] = [];
    const walk = (v: unknown) => {
      if (v instanceof Uint8Array && v.length >= 12) secrets.push(toHex(v));
      else if (Array.isArray(v)) v.forEach(walk);
    };
    walk(record[7]);
    walk(record[8]);
    walk(record[9]);
    expect(secrets.length).toBeGreaterThan(3);
    const d = a.session.distribution();
    walk(decodeCbor(d.bytes, 'd', 256));
    const printed = [String(b.session), JSON.stringify({ s: b.session }), inspect(b.session, { depth: 10, showHidden: true })];
    printed.push(String(d), JSON.stringify({ d }), inspect({ d }, { depth: 10 }));
    for (const code of ['DUPLICATE_MESSAGE', 'FORGED_DISTRIBUTION']) {
      try {
        if (code === 'DUPLICATE_MESSAGE') b.session.decrypt(message);
        else b.session.processDistribution(distribution, b.device.certificate);
      } catch (e) {
        expect((e as ParleyError).code).toBe(code);
        printed.push(String(e), JSON.stringify((e as ParleyError).details), inspect(e, { depth: 10 }));
      }
    }
    const text = printed.join('\n');
    expect(text).toContain('redacted');
    for (const s of secrets) {
      expect(text).not.toContain(s);
      expect(text).not.toContain(Buffer.from(s, 'hex').toString('base64'));
    }
  });
});
