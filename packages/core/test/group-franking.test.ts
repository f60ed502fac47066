// Groups v2 and franking (spec/design/formats-v2.md §6.1, §8.1; issue 19):
// the multi-key attack on ChaCha20-Poly1305 group messages, shown to work
// on v1 and to be refused by both receivers on v2, and the tag checks of
// an honest v2 group on both backends.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromUtf8, toHex, utf8 } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { type CryptoProvider, cryptoProvider } from '../src/crypto/provider.ts';
import { frankingTag } from '../src/franking/tag.ts';
import { encodeDistribution } from '../src/group/distribution.ts';
import { groupMessageKeys } from '../src/group/kdf.ts';
import { type GroupMember, memberOf } from '../src/group/member.ts';
import {
  encodeGroupBodyV2,
  encodeGroupHeaderV2,
  encodeGroupMessageV2,
  groupSignedBytesV2,
  peekAnyGroupMessage,
} from '../src/group/message-v2.ts';
import { encodeGroupHeader, encodeGroupMessage, groupSignedBytes } from '../src/group/message.ts';
import { GroupSession } from '../src/group/session.ts';
import { Account, Ed25519KeyPair } from '../src/keys/identity.ts';
import type { DeviceIdentity } from '../src/keys/identity.ts';
import { pad } from '../src/ratchet/padding.ts';
import { deterministicRandom } from '../src/testing.ts';
import { codeOf, expectUnchanged } from './support/errors.ts';
import { twoKeyCiphertext } from './support/poly1305-collision.ts';

/**
 * A malicious sender S in a group with members M1 and M2. S does not run a
 * GroupSession: it hands M1 and M2 distributions of the same chain
 * (generation 0, same signing key) with different chain keys, as a sender
 * can (each distribution travels on its own 1:1 session).
 */
function maliciousGroup(p: CryptoProvider) {
  const device = (): DeviceIdentity => Account.generate(p).createDevice(1, p);
  const s = device();
  const m1 = device();
  const m2 = device();
  const members = [s, m1, m2].map((d) => memberOf(d.certificate));
  const g1 = GroupSession.create(m1, members, { provider: p });
  const g2 = GroupSession.create(m2, members, { groupId: g1.groupId, provider: p });
  const signing = Ed25519KeyPair.generate(p);
  const sender = memberOf(s.certificate);
  const handOut = (group: GroupSession, chainKey: Uint8Array) =>
    group.processDistribution(
      encodeDistribution({
        groupId: g1.groupId,
        epoch: 0,
        sender,
        generation: 0,
        iteration: 0,
        chainKey,
        signingKey: signing.publicKey,
      }),
      s.certificate,
    );
  return { s, sender, g1, g2, signing, handOut, groupId: g1.groupId };
}

/** The keystream (from counter 1) that encrypts `n` bytes under a message key. */
const keystream = (b: CryptoBackend, key: Uint8Array, nonce: Uint8Array, n: number, ad: Uint8Array) =>
  b.aeadSeal(key, nonce, new Uint8Array(n), ad).subarray(0, n);

const xor = (a: Uint8Array, k: Uint8Array) => a.map((x, i) => x ^ (k[i] as number));

const TEXT_1 = utf8('M1: the meeting moved to the north gate, 5 pm.'.padEnd(48));
const TEXT_2 = utf8('M2: ignore M1, nothing changed for tonight.'.padEnd(48));

describe.each([nodeBackend, nobleBackend].map((b) => [b.name, b] as const))('groups and franking (%s backend)', (_n, backend) => {
  it('v1: one signed ciphertext built for two chain keys shows two members two different plaintexts (the attack)', () => {
    const p = cryptoProvider(backend, deterministicRandom(`salamander v1 ${backend.name}`));
    const b = backend;
    const { sender, g1, g2, signing, handOut, groupId } = maliciousGroup(p);
    const headerBytes = encodeGroupHeader({ groupId, epoch: 0, sender, generation: 0, iteration: 0 });
    // Grind M2's chain key until both keystreams agree on the last byte, so
    // one ciphertext byte there is the 0x80 padding marker for both members.
    const ck1 = p.random(32);
    const k1 = groupMessageKeys(b, ck1);
    const ks1 = keystream(b, k1.key, k1.nonce, 160, headerBytes);
    let ck2 = p.random(32);
    let k2 = groupMessageKeys(b, ck2);
    let ks2 = keystream(b, k2.key, k2.nonce, 160, headerBytes);
    for (let tries = 0; ks1[159] !== ks2[159]; tries++) {
      if (tries > 5000) throw new Error('grinding did not converge');
      ck2 = p.random(32);
      k2 = groupMessageKeys(b, ck2);
      ks2 = keystream(b, k2.key, k2.nonce, 160, headerBytes);
    }
    handOut(g1, ck1);
    handOut(g2, ck2);

    // Blocks 0-2 read as TEXT_1 for M1, blocks 3-5 as TEXT_2 for M2, 6-7 are
    // solved for the collision, 8-9 are M1's padding (and end in 0x80 for both).
    const want1 = new Uint8Array(160);
    want1.set(TEXT_1, 0);
    want1[159] = 0x80;
    const c = xor(want1, ks1);
    c.set(xor(TEXT_2, ks2.subarray(48, 96)), 48);
    const sealed = twoKeyCiphertext(k1, k2, headerBytes, c, [6, 7], deterministicRandom('collision v1'));
    // The AEAD itself accepts the one ciphertext under both keys.
    expect(b.aeadOpen(k1.key, k1.nonce, sealed, headerBytes)).not.toBeNull();
    expect(b.aeadOpen(k2.key, k2.nonce, sealed, headerBytes)).not.toBeNull();

    const message = encodeGroupMessage(headerBytes, sealed, signing.sign(groupSignedBytes(headerBytes, sealed), p));
    const seen1 = g1.decrypt(message);
    const seen2 = g2.decrypt(message);
    expect(fromUtf8(seen1.plaintext.subarray(0, 48))).toBe(fromUtf8(TEXT_1));
    expect(fromUtf8(seen2.plaintext.subarray(48, 96))).toBe(fromUtf8(TEXT_2));
    expect(toHex(seen1.plaintext)).not.toBe(toHex(seen2.plaintext));
    expect([seen1.version, seen1.franking, seen2.franking]).toEqual([1, null, null]);
  });

  it('v2: the same attack is refused by both members, state unchanged (the tag commits to one body)', () => {
    const p = cryptoProvider(backend, deterministicRandom(`salamander v2 ${backend.name}`));
    const b = backend;
    const { sender, g1, g2, signing, handOut, groupId } = maliciousGroup(p);
    const ck1 = p.random(32);
    const ck2 = p.random(32);
    handOut(g1, ck1);
    handOut(g2, ck2);
    const k1 = groupMessageKeys(b, ck1);
    const k2 = groupMessageKeys(b, ck2);

    // The attacker's best move: M1's body is a well-formed v2 body whose tag
    // is in the signed header; blocks 4-5 (inside M1's plaintext) are left
    // free for the collision, blocks 3 and 6 carry TEXT_2's halves for M2.
    const fk = p.random(32);
    const intended = new Uint8Array(100);
    intended.set(TEXT_1.subarray(0, 20), 0);
    const body1 = pad(encodeGroupBodyV2({ frankingKey: fk, plaintext: intended, attestation: null }));
    expect(body1.length).toBe(160);
    const tag = frankingTag(b, fk, sender, intended);
    const headerBytes = encodeGroupHeaderV2({ groupId, epoch: 0, sender, generation: 0, iteration: 0, frankingTag: tag });
    const ks1 = keystream(b, k1.key, k1.nonce, 160, headerBytes);
    const ks2 = keystream(b, k2.key, k2.nonce, 160, headerBytes);
    const c = xor(body1, ks1);
    c.set(xor(TEXT_2.subarray(0, 16), ks2.subarray(48, 64)), 48);
    c.set(xor(TEXT_2.subarray(16, 32), ks2.subarray(96, 112)), 96);
    const sealed = twoKeyCiphertext(k1, k2, headerBytes, c, [4, 5], deterministicRandom('collision v2'));
    expect(b.aeadOpen(k1.key, k1.nonce, sealed, headerBytes)).not.toBeNull();
    expect(b.aeadOpen(k2.key, k2.nonce, sealed, headerBytes)).not.toBeNull();
    const message = encodeGroupMessageV2(headerBytes, sealed, signing.sign(groupSignedBytesV2(headerBytes, sealed), p));

    // M1: its body decodes, but the solved blocks changed its plaintext after
    // the tag was fixed; the tag is signed, so it cannot be re-aimed.
    expectUnchanged(g1, () => g1.decrypt(message), 'FRANKING_TAG_MISMATCH');
    // M2: its body is the other key's decryption; whatever it decodes to, no
    // check lets it through (a body that decodes meets the same tag).
    const before2 = toHex(g2.serialize());
    const code2 = codeOf(() => g2.decrypt(message));
    expect(['FRANKING_TAG_MISMATCH', 'MALFORMED', 'BAD_PADDING']).toContain(code2);
    expect(toHex(g2.serialize())).toBe(before2);
  });

  it('v2: a sender that signs a tag for other content than it encrypted is refused by every member', () => {
    const p = cryptoProvider(backend, deterministicRandom(`lying tag ${backend.name}`));
    const { sender, g1, g2, signing, handOut, groupId } = maliciousGroup(p);
    const ck = p.random(32);
    handOut(g1, ck);
    handOut(g2, ck);
    const k = groupMessageKeys(backend, ck);
    const fk = p.random(32);
    const tag = frankingTag(backend, fk, sender, utf8('what a report would show'));
    const headerBytes = encodeGroupHeaderV2({ groupId, epoch: 0, sender, generation: 0, iteration: 0, frankingTag: tag });
    const body = pad(encodeGroupBodyV2({ frankingKey: fk, plaintext: utf8('what the members see'), attestation: null }));
    const sealed = backend.aeadSeal(k.key, k.nonce, body, headerBytes);
    const message = encodeGroupMessageV2(headerBytes, sealed, signing.sign(groupSignedBytesV2(headerBytes, sealed), p));
    for (const g of [g1, g2]) expectUnchanged(g, () => g.decrypt(message), 'FRANKING_TAG_MISMATCH');
  });

  it('v2 round trip: every member recomputes the same tag, gets the franking key, and checks the delivered tag', () => {
    const p = cryptoProvider(backend, deterministicRandom(`v2 honest ${backend.name}`));
    const devices = [0, 1, 2].map(() => Account.generate(p).createDevice(1, p));
    const members: GroupMember[] = devices.map((d) => memberOf(d.certificate));
    const gid = new Uint8Array(32).fill(7);
    const groups = devices.map((d) => GroupSession.create(d, members, { groupId: gid, provider: p }));
    for (const [i, g] of groups.entries()) {
      const dist = g.distribution();
      for (const [j, other] of groups.entries())
        if (j !== i) other.processDistribution(dist.bytes, (devices[i] as DeviceIdentity).certificate);
    }
    const [alice, bob, carol] = groups as [GroupSession, GroupSession, GroupSession];
    const out = alice.encrypt(utf8('hello, franked group'), { version: 2 });
    expect(out.frankingTag).toHaveLength(32);
    expect(peekAnyGroupMessage(out.message).iteration).toBe(0);
    for (const g of [bob, carol]) {
      const r = g.decrypt(out.message, { frankingTag: out.frankingTag as Uint8Array });
      expect(fromUtf8(r.plaintext)).toBe('hello, franked group');
      expect(r.version).toBe(2);
      expect(toHex(r.franking?.tag as Uint8Array)).toBe(toHex(out.frankingTag as Uint8Array));
      expect(toHex(frankingTag(backend, r.franking?.key as Uint8Array, members[0] as GroupMember, r.plaintext))).toBe(
        toHex(out.frankingTag as Uint8Array),
      );
    }
    // The relay delivered another tag than the signed one: refused, nothing changes.
    const next = alice.encrypt(utf8('second'), { version: 2 });
    const wrong = concatBytes(new Uint8Array(31), Uint8Array.of(1));
    expectUnchanged(bob, () => bob.decrypt(next.message, { frankingTag: wrong }), 'FRANKING_TAG_MISMATCH');
    expect(fromUtf8(bob.decrypt(next.message).plaintext)).toBe('second');
    const v1 = alice.encrypt(utf8('v1 still works'));
    expect(v1.frankingTag).toBeNull();
    expect(fromUtf8(carol.decrypt(v1.message).plaintext)).toBe('v1 still works');
  });
});

describe('property: a damaged v2 group message is refused typed, the group unchanged', () => {
  it('any flipped byte', () => {
    const p = cryptoProvider(nodeBackend, deterministicRandom('v2 fuzz'));
    const devices = [0, 1].map(() => Account.generate(p).createDevice(1, p));
    const members = devices.map((d) => memberOf(d.certificate));
    const gid = new Uint8Array(32).fill(9);
    const [alice, bob] = devices.map((d) => GroupSession.create(d, members, { groupId: gid, provider: p })) as [GroupSession, GroupSession];
    bob.processDistribution(alice.distribution().bytes, (devices[0] as DeviceIdentity).certificate);
    const { message } = alice.encrypt(utf8('fuzz me'), { version: 2 });
    const before = toHex(bob.serialize());
    fc.assert(
      fc.property(fc.nat(message.length - 1), fc.integer({ min: 1, max: 255 }), (at, bits) => {
        const bad = message.slice();
        bad[at] = (bad[at] as number) ^ bits;
        const code = codeOf(() => bob.decrypt(bad));
        return code !== 'NO_ERROR' && toHex(bob.serialize()) === before;
      }),
      { numRuns: 200, seed: 11 },
    );
    expect(fromUtf8(bob.decrypt(message).plaintext)).toBe('fuzz me');
  });
});
