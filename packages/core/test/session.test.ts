import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ParleyError,
  PreKeyStore,
  SessionRecord,
  cryptoProvider,
  decodeBundle,
  decodeMessage,
  encodeBundle,
  limits,
  toHex,
} from '../src/index.ts';
import { backends, establish, party, seeded, str, text } from './support/parties.ts';
import { expectCode, expectUnchanged } from './support/errors.ts';
import { networkScript, playNetwork } from './support/lossy-network.ts';

describe.each(backends.map((b) => [b.name, b] as const))('one-to-one sessions (%s backend)', (_name, backend) => {
  const provider = cryptoProvider(backend);

  it('round-trips both ways, with the first messages as PreKeyMessages until the reply', () => {
    const alice = party(provider);
    const bob = party(provider);
    const a = SessionRecord.initiate(alice.device, decodeBundle(encodeBundle(bob.prekeys.bundle())), { provider });
    const m1 = a.encrypt(text('one'));
    const m2 = a.encrypt(text('two'));
    expect(decodeMessage(m1).type).toBe('prekey');
    expect(decodeMessage(m2).type).toBe('prekey');
    const b = new SessionRecord(provider);
    const r1 = b.decrypt(m1, { device: bob.device, prekeys: bob.prekeys });
    expect(str(r1.plaintext)).toBe('one');
    expect(r1.newSession).toBe(true);
    expect(toHex(r1.sender.accountKey)).toBe(toHex(alice.account.publicKey));
    // The second PreKeyMessage goes to the session with its base key: no new session.
    const r2 = b.decrypt(m2, { device: bob.device, prekeys: bob.prekeys });
    expect(str(r2.plaintext)).toBe('two');
    expect(r2.newSession).toBe(false);
    expect(a.awaitingReply).toBe(true);
    expect(str(a.decrypt(b.encrypt(text('three'))).plaintext)).toBe('three');
    expect(a.awaitingReply).toBe(false);
    expect(decodeMessage(a.encrypt(text('four'))).type).toBe('ratchet');
  });

  it('carries a long one-direction run and a ping-pong conversation', () => {
    const { a, b } = establish(party(provider), party(provider));
    for (let i = 0; i < 200; i++) expect(str(b.decrypt(a.encrypt(text(`a${i}`))).plaintext)).toBe(`a${i}`);
    for (let i = 0; i < 30; i++) {
      expect(str(a.decrypt(b.encrypt(text(`b${i}`))).plaintext)).toBe(`b${i}`);
      expect(str(b.decrypt(a.encrypt(text(`a${i}`))).plaintext)).toBe(`a${i}`);
    }
  });

  it('round-trips empty and maximum-size plaintexts and rejects larger ones', () => {
    const { a, b } = establish(party(provider), party(provider));
    expect(b.decrypt(a.encrypt(new Uint8Array(0))).plaintext.length).toBe(0);
    const big = new Uint8Array(limits.MAX_PLAINTEXT_BYTES).fill(7);
    expect(b.decrypt(a.encrypt(big)).plaintext).toEqual(big);
    expect(() => a.encrypt(new Uint8Array(limits.MAX_PLAINTEXT_BYTES + 1))).toThrow(RangeError);
  });

  it('decrypts out-of-order and late messages, each exactly once', () => {
    const { a, b } = establish(party(provider), party(provider));
    const msgs = Array.from({ length: 10 }, (_, i) => a.encrypt(text(`m${i}`)));
    for (const i of [9, 0, 5, 1, 8, 2, 7, 3, 6, 4]) expect(str(b.decrypt(msgs[i] as Uint8Array).plaintext)).toBe(`m${i}`);
    for (const m of msgs) expectUnchanged(b, () => b.decrypt(m), 'DUPLICATE_MESSAGE');
  });

  it('keeps skipped keys across a DH ratchet step (late message from an older chain)', () => {
    const { a, b } = establish(party(provider), party(provider));
    const late = a.encrypt(text('late'));
    const next = a.encrypt(text('next'));
    expect(str(b.decrypt(next).plaintext)).toBe('next');
    a.decrypt(b.encrypt(text('reply'))); // Alice turns her ratchet
    const newChain = a.encrypt(text('new chain'));
    expect(str(b.decrypt(newChain).plaintext)).toBe('new chain');
    expect(str(b.decrypt(late).plaintext)).toBe('late');
  });

  it('rejects a message further ahead than MAX_FORWARD_JUMP and leaves the state as it was', () => {
    const { a, b } = establish(party(provider), party(provider));
    for (let i = 0; i < limits.MAX_FORWARD_JUMP + 1; i++) a.encrypt(text('x'));
    const far = a.encrypt(text('too far'));
    expectUnchanged(b, () => b.decrypt(far), 'TOO_FAR_AHEAD');
  });

  it('rejects tampering anywhere in a message, with the state unchanged', () => {
    const { a, b } = establish(party(provider), party(provider));
    const m = a.encrypt(text('authentic'));
    for (let i = 0; i < m.length; i++) {
      const t = m.slice();
      t[i] = (t[i] as number) ^ 0x01;
      const before = toHex(b.serialize());
      expect(() => b.decrypt(t)).toThrow(ParleyError);
      expect(toHex(b.serialize())).toBe(before);
    }
    expect(str(b.decrypt(m).plaintext)).toBe('authentic');
  });

  it('forward secrecy: a state captured later cannot decrypt an earlier message', () => {
    const { a, b } = establish(party(provider), party(provider));
    const early = a.encrypt(text('early'));
    b.decrypt(early);
    const stolen = SessionRecord.deserialize(b.serialize(), provider);
    expectCode(() => stolen.decrypt(early), 'DUPLICATE_MESSAGE');
    // Nor after more traffic and ratchet steps.
    a.decrypt(b.encrypt(text('x')));
    b.decrypt(a.encrypt(text('y')));
    const stolenLater = SessionRecord.deserialize(b.serialize(), provider);
    expect(() => stolenLater.decrypt(early)).toThrow(ParleyError);
  });

  it('post-compromise security: after a DH ratchet round trip, a stolen earlier state reads nothing new', () => {
    const { a, b } = establish(party(provider), party(provider));
    a.decrypt(b.encrypt(text('hi')));
    const stolenBob = SessionRecord.deserialize(b.serialize(), provider);
    // Healing: Alice replies (new ratchet key), Bob answers (new ratchet key), Alice sends again.
    b.decrypt(a.encrypt(text('a1')));
    a.decrypt(b.encrypt(text('b1')));
    const secret = a.encrypt(text('after healing'));
    expect(str(b.decrypt(secret).plaintext)).toBe('after healing');
    expect(() => stolenBob.decrypt(secret)).toThrow(ParleyError);
  });

  it('consumes one-time prekeys: reusing one in a new handshake fails with UNKNOWN_PREKEY', () => {
    const alice = party(provider);
    const bob = party(provider);
    const bundle = bob.prekeys.bundle();
    expect(bundle.oneTimePreKey).not.toBeNull();
    const a1 = SessionRecord.initiate(alice.device, bundle, { provider });
    const b1 = new SessionRecord(provider);
    b1.decrypt(a1.encrypt(text('first')), { device: bob.device, prekeys: bob.prekeys });
    expect(bob.prekeys.oneTimePreKeys().map((k) => k.id)).not.toContain(bundle.oneTimePreKey?.id);
    // Another initiator (or a replay with a new base key) naming the same one-time prekey id.
    const carol = party(provider);
    const c = SessionRecord.initiate(carol.device, bundle, { provider });
    const fresh = new SessionRecord(provider);
    const keysBefore = bob.prekeys.serialize();
    expectCode(() => fresh.decrypt(c.encrypt(text('reuse')), { device: bob.device, prekeys: bob.prekeys }), 'UNKNOWN_PREKEY');
    expect(fresh.hasSession).toBe(false);
    expect(bob.prekeys.serialize()).toEqual(keysBefore);
  });

  it('a replayed initial message cannot recreate a session (with and without one-time prekeys)', () => {
    for (const oneTimePreKey of [true, false]) {
      const alice = party(provider);
      const bob = party(provider);
      const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle({ oneTimePreKey, oneTimeKemPreKey: oneTimePreKey }), { provider });
      const first = a.encrypt(text('first'));
      new SessionRecord(provider).decrypt(first, { device: bob.device, prekeys: bob.prekeys });
      // Bob lost the record (or the attacker replays to a fresh one): the prekey store refuses.
      const lost = new SessionRecord(provider);
      expectCode(
        () => lost.decrypt(first, { device: bob.device, prekeys: bob.prekeys }),
        oneTimePreKey ? 'UNKNOWN_PREKEY' : 'PREKEY_REUSED',
      );
    }
  });

  it('rejects bundles with a bad certificate, a bad prekey signature, or another account', () => {
    const alice = party(provider);
    const bob = party(provider);
    const mallory = party(provider);
    const good = bob.prekeys.bundle();
    const badCert = { ...good, certificate: { ...good.certificate, deviceId: 2 } };
    expectCode(() => SessionRecord.initiate(alice.device, badCert, { provider }), 'BAD_CERTIFICATE');
    const badSpk = { ...good, signedPreKey: { ...good.signedPreKey, id: good.signedPreKey.id + 1 } };
    expectCode(() => SessionRecord.initiate(alice.device, badSpk, { provider }), 'BAD_SIGNATURE');
    const badKem = { ...good, kemPreKey: { ...good.kemPreKey, lastResort: !good.kemPreKey.lastResort } };
    expectCode(() => SessionRecord.initiate(alice.device, badKem, { provider }), 'BAD_SIGNATURE');
    // A bundle signed by Mallory's account while Alice expects Bob's.
    expectCode(
      () => SessionRecord.initiate(alice.device, mallory.prekeys.bundle(), { provider, expectedAccountKey: bob.account.publicKey }),
      'BAD_CERTIFICATE',
    );
    // Mallory's device key under a certificate claiming Bob's account.
    const forged = { ...mallory.prekeys.bundle(), certificate: { ...mallory.device.certificate, accountKey: bob.account.publicKey } };
    expectCode(() => SessionRecord.initiate(alice.device, forged, { provider }), 'BAD_CERTIFICATE');
  });

  it('rejects a first message whose sender certificate does not verify, and another account on an existing record', () => {
    const alice = party(provider);
    const bob = party(provider);
    const mallory = party(provider);
    const { b } = establish(alice, bob);
    const m = SessionRecord.initiate(mallory.device, bob.prekeys.bundle(), { provider });
    expectUnchanged(b, () => b.decrypt(m.encrypt(text('hi')), { device: bob.device, prekeys: bob.prekeys }), 'IDENTITY_MISMATCH');
    const fresh = new SessionRecord(provider);
    expectCode(
      () => fresh.decrypt(m.encrypt(text('hi')), { device: bob.device, prekeys: bob.prekeys, expectedAccountKey: alice.account.publicKey }),
      'BAD_CERTIFICATE',
    );
  });

  it('needs the device and prekeys to accept a new session, and a session to decrypt a ratchet message', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { a } = establish(alice, bob);
    const m = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider }).encrypt(text('x'));
    expectCode(() => new SessionRecord(provider).decrypt(m), 'NO_SESSION');
    const ratchetOnly = a.encrypt(text('y'));
    expectCode(() => new SessionRecord(provider).decrypt(ratchetOnly), 'NO_SESSION');
    expectCode(() => new SessionRecord(provider).encrypt(text('z')), 'NO_SESSION');
  });

  it('converges after simultaneous initiation without losing a message', () => {
    const alice = party(provider);
    const bob = party(provider);
    const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider });
    const b = SessionRecord.initiate(bob.device, alice.prekeys.bundle(), { provider });
    const a1 = a.encrypt(text('a1'));
    const b1 = b.encrypt(text('b1'));
    // Both arrive crossing each other.
    expect(str(b.decrypt(a1, { device: bob.device, prekeys: bob.prekeys }).plaintext)).toBe('a1');
    expect(str(a.decrypt(b1, { device: alice.device, prekeys: alice.prekeys }).plaintext)).toBe('b1');
    // Both now send on the session the other started; messages keep crossing.
    const a2 = a.encrypt(text('a2'));
    const b2 = b.encrypt(text('b2'));
    expect(str(b.decrypt(a2).plaintext)).toBe('a2');
    expect(str(a.decrypt(b2).plaintext)).toBe('b2');
    // After one more round they agree on one session and keep talking.
    for (let i = 3; i < 8; i++) {
      expect(str(b.decrypt(a.encrypt(text(`a${i}`))).plaintext)).toBe(`a${i}`);
      expect(str(a.decrypt(b.encrypt(text(`b${i}`))).plaintext)).toBe(`b${i}`);
    }
    expect(toHex(a.sessionId as Uint8Array)).toBe(toHex(b.sessionId as Uint8Array));
  });

  it('a fresh session replaces the current one while late messages on the archived one still decrypt', () => {
    const alice = party(provider);
    const bob = party(provider);
    const { a, b } = establish(alice, bob);
    const late = a.encrypt(text('late on old'));
    a.initiate(alice.device, bob.prekeys.bundle());
    expect(a.archivedCount).toBe(1);
    expect(str(b.decrypt(a.encrypt(text('new')), { device: bob.device, prekeys: bob.prekeys }).plaintext)).toBe('new');
    expect(str(b.decrypt(late).plaintext)).toBe('late on old');
  });

  it('survives serialization at every step of a conversation', () => {
    const alice = party(provider);
    const bob = party(provider);
    let { a, b } = establish(alice, bob);
    for (let i = 0; i < 6; i++) {
      a = SessionRecord.deserialize(a.serialize(), provider);
      b = SessionRecord.deserialize(b.serialize(), provider);
      const held = a.encrypt(text(`held${i}`));
      expect(str(b.decrypt(a.encrypt(text(`a${i}`))).plaintext)).toBe(`a${i}`);
      b = SessionRecord.deserialize(b.serialize(), provider);
      expect(str(b.decrypt(held).plaintext)).toBe(`held${i}`);
      expect(str(a.decrypt(b.encrypt(text(`b${i}`))).plaintext)).toBe(`b${i}`);
    }
    const restored = PreKeyStore.deserialize(bob.prekeys.serialize(), bob.device, provider);
    expect(restored.serialize()).toEqual(bob.prekeys.serialize());
  });

  it('delivers every message exactly once under random reordering, loss and duplication', () => {
    fc.assert(
      fc.property(networkScript, (script) => {
        const { a, b } = establish(party(provider), party(provider));
        playNetwork(
          script,
          (from, t) => (from === 'a' ? a : b).encrypt(text(t)),
          (to, bytes, t, duplicate) => {
            const rec = to === 'a' ? a : b;
            if (duplicate) expect(() => rec.decrypt(bytes)).toThrow(ParleyError);
            else expect(str(rec.decrypt(bytes).plaintext)).toBe(t);
          },
        );
      }),
      { numRuns: backend.name === 'noble' ? 8 : 40 },
    );
  });
});

describe('both backends agree byte for byte under a fixed random source', () => {
  it('produces identical keys, bundles, messages and records', () => {
    const transcripts = backends.map((backend) => {
      const provider = seeded(backend, 'parley parity');
      const alice = party(provider);
      const bob = party(provider);
      const out: string[] = [toHex(encodeBundle(bob.prekeys.bundle()))];
      const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider });
      const b = new SessionRecord(provider);
      const m1 = a.encrypt(text('hello'));
      b.decrypt(m1, { device: bob.device, prekeys: bob.prekeys });
      const m2 = b.encrypt(text('world'));
      a.decrypt(m2);
      out.push(toHex(m1), toHex(m2), toHex(a.serialize()), toHex(b.serialize()), toHex(bob.prekeys.serialize()));
      return out;
    });
    expect(transcripts[0]).toEqual(transcripts[1]);
  });
});
