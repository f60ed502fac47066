// Ratchet v2 (spec/13-ratchet-v2.md): encrypted headers, KDF_RK2, BodyV2, bounded header trials.
import { describe, expect, it } from 'vitest';
import { type CborValue, SessionRecord, cryptoProvider, decodeCbor, decodeMessage, encodeCbor, limits, toHex } from '../src/index.ts';
import { MAX_HEADER_TRIALS_PER_SESSION, MAX_SKIPPED_HEADER_KEYS } from '../src/ratchet/v2/limits.ts';
import { ratchetDecryptV2 } from '../src/ratchet/v2/ratchet.ts';
import { skippedCount } from '../src/ratchet/v2/state.ts';
import { countingBackend } from './support/counting-backend.ts';
import { expectCode, expectUnchanged } from './support/errors.ts';
import { backends, party, str, text } from './support/parties.ts';
import { PeerV2, type WireV2, alice, bob, pairV2 } from './support/ratchet-v2.ts';
import { toyPqPort } from './support/toy-pq-port.ts';
import { HandshakeStandIn, establishV2, sendV2 } from './support/session-v2.ts';

describe.each(backends.map((b) => [b.name, b] as const))('ratchet v2 (%s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  it('round-trips a ping-pong conversation and one-direction runs', () => {
    const { a, b } = pairV2(provider);
    expect(str(b.receive(a.send(text('hello'))))).toBe('hello');
    for (let i = 0; i < 10; i++) {
      expect(str(a.receive(b.send(text(`b${i}`))))).toBe(`b${i}`);
      expect(str(b.receive(a.send(text(`a${i}`))))).toBe(`a${i}`);
    }
    for (let i = 0; i < 50; i++) expect(str(b.receive(a.send(text(`x${i}`))))).toBe(`x${i}`);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('ratchet v2 header trial and refusals (%s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  /**
   * Bob ends with 5 receiving chains without skipped keys and 8 skipped groups
   * of older chains: the most distinct header keys a state can hold.
   */
  function fullState(p = provider) {
    const { a, b } = pairV2(p);
    for (let turn = 0; turn < 13; turn++) {
      if (turn < 8) a.send(text('never delivered'));
      b.receive(a.send(text(`a${turn}`)));
      a.receive(b.send(text(`b${turn}`)));
    }
    return { a, b };
  }

  it('a forged header costs exactly the distinct header keys (at most MAX_HEADER_TRIALS_PER_SESSION opens) and nothing else', () => {
    const { b } = fullState();
    expect(b.r.state.receivingChains.length).toBe(limits.MAX_RECEIVER_CHAINS);
    expect(b.r.state.skipped.length).toBe(MAX_SKIPPED_HEADER_KEYS);
    const counting = countingBackend(backend);
    const p = cryptoProvider(counting.backend, () => {
      throw new Error('a refusal must draw nothing');
    });
    const forged = { header: provider.random(60), ciphertext: provider.random(200), frankingTag: provider.random(32), sender: alice };
    const before = b.r;
    expectCode(() => ratchetDecryptV2(p, b.r, forged), 'HEADER_DECRYPT_FAILED');
    expect(b.r).toBe(before);
    expect(counting.count('aeadOpen')).toBe(MAX_HEADER_TRIALS_PER_SESSION);
    expect(MAX_HEADER_TRIALS_PER_SESSION).toBe(14);
    // No DH, no chain step, no KDF before a header opens (formats-v2 §13.3).
    expect([...counting.counts.keys()]).toEqual(['aeadOpen']);
  });

  it("a skipped group whose chain is still held shares the chain's header key and is not tried twice", () => {
    // Every one of 13 turns loses a message: 5 held chains each have a group, 3 more groups of dropped chains.
    const { a, b } = pairV2(provider);
    for (let turn = 0; turn < 13; turn++) {
      a.send(text('never delivered'));
      b.receive(a.send(text(`a${turn}`)));
      a.receive(b.send(text(`b${turn}`)));
    }
    expect(b.r.state.receivingChains.length).toBe(5);
    expect(b.r.state.skipped.length).toBe(MAX_SKIPPED_HEADER_KEYS);
    const counting = countingBackend(backend);
    const forged = { header: provider.random(60), ciphertext: provider.random(200), frankingTag: provider.random(32), sender: alice };
    expectCode(() => ratchetDecryptV2(cryptoProvider(counting.backend), b.r, forged), 'HEADER_DECRYPT_FAILED');
    expect(counting.count('aeadOpen')).toBe(5 + 3 + 1);
  });

  it('a forged message against a full record (current + 40 archived v2 sessions) costs at most 41 x 14 = 574 header opens', () => {
    const hs = new HandshakeStandIn(provider);
    const aliceParty = party(provider);
    const bobParty = party(provider);
    const { a, b } = establishV2(hs, aliceParty, bobParty);
    for (let turn = 0; turn < 13; turn++) {
      if (turn < 8) sendV2(a, text('never delivered'));
      hs.deliver(b, bobParty, sendV2(a, text(`a${turn}`)));
      hs.deliver(a, aliceParty, sendV2(b, text(`b${turn}`)));
    }
    // The largest record: the full session, current and archived 40 times (built from its stored form).
    const f = decodeCbor(b.serialize(), 'r', limits.MAX_RECORD_BYTES) as CborValue[];
    f[3] = Array.from({ length: limits.MAX_ARCHIVED_SESSIONS }, () => f[2] as CborValue);
    const counting = countingBackend(backend);
    const full = SessionRecord.deserialize(encodeCbor(f), cryptoProvider(counting.backend));
    expect(full.archivedCount).toBe(40);
    const forged = sendV2(establishV2(hs, aliceParty, bobParty).a, text('x'));
    const message = decodeMessage(forged.message);
    if (message.type !== 'prekey2') throw new Error('expected a PreKeyMessageV2');
    const ratchetOnly = encodeCbor([2, 2, message.message.header, message.message.ciphertext]);
    counting.reset();
    expectUnchanged(full, () => full.decrypt(ratchetOnly, { frankingTag: forged.frankingTag }), 'HEADER_DECRYPT_FAILED');
    expect(counting.count('aeadOpen')).toBe((1 + limits.MAX_ARCHIVED_SESSIONS) * MAX_HEADER_TRIALS_PER_SESSION);
    expect(counting.count('x25519')).toBe(0);
    expect(counting.count('hmacSha256')).toBe(0);
  });

  it("a header's PQ epoch other than its chain's, or not the root's on a DH step, is PQ_EPOCH_INVALID with the state unchanged", () => {
    const { a, b } = pairV2(provider);
    b.receive(a.send(text('start')));
    const withEpoch = (epoch: number) => {
      const s = a.r.state;
      const chain = s.sendingChain as NonNullable<typeof s.sendingChain>;
      return new PeerV2(provider, { ...a.r, state: { ...s, sendingChain: { ...chain, epoch } } }, alice, bob);
    };
    const before = b.r;
    // On Bob's existing chain (epoch 0).
    expectCode(() => b.receive(withEpoch(1).send(text('epoch 1 on an epoch-0 chain'))), 'PQ_EPOCH_INVALID');
    expect(b.r).toBe(before);
    // On a DH step: Bob answers, Alice's next chain claims epoch 1 (no secret held) or 2.
    a.receive(b.send(text('turn')));
    for (const epoch of [1, 2]) {
      const draws = { n: 0 };
      const p = cryptoProvider(backend, (n) => {
        draws.n++;
        return backend.randomBytes(n);
      });
      const bob2 = new PeerV2(p, b.r, bob, alice);
      expectCode(() => bob2.receive(withEpoch(epoch).send(text(`epoch ${epoch} on a new chain`))), 'PQ_EPOCH_INVALID');
      expect(bob2.r).toBe(b.r);
      expect(draws.n).toBe(0);
    }
    expect(str(b.receive(a.send(text('honest'))))).toBe('honest');
  });

  it('a counter beyond MAX_FORWARD_JUMP is TOO_FAR_AHEAD; a chain with too many skipped keys evicts the oldest', () => {
    const { a, b } = pairV2(provider);
    b.receive(a.send(text('start')));
    const s = a.r.state;
    const chain = s.sendingChain as NonNullable<typeof s.sendingChain>;
    const jumper = new PeerV2(
      provider,
      { ...a.r, state: { ...s, sendingChain: { ...chain, counter: chain.counter + limits.MAX_FORWARD_JUMP + 1 } } },
      alice,
      bob,
    );
    const before = b.r;
    expectCode(() => b.receive(jumper.send(text('far'))), 'TOO_FAR_AHEAD');
    expect(b.r).toBe(before);
  });

  it('skipped keys stay bounded: at most MAX_SKIPPED_HEADER_KEYS groups and MAX_SKIPPED_KEYS keys', () => {
    const { a, b } = pairV2(provider);
    for (let turn = 0; turn < 12; turn++) {
      for (let i = 0; i < 300; i++) a.send(text('lost'));
      b.receive(a.send(text(`a${turn}`)));
      a.receive(b.send(text(`b${turn}`)));
      expect(b.r.state.skipped.length).toBeLessThanOrEqual(MAX_SKIPPED_HEADER_KEYS);
      expect(skippedCount(b.r.state.skipped)).toBeLessThanOrEqual(limits.MAX_SKIPPED_KEYS);
    }
    expect(skippedCount(b.r.state.skipped)).toBe(limits.MAX_SKIPPED_KEYS);
  });
});

describe.each(backends.map((b) => [b.name, b] as const))('ratchet v2 mixing PQ secrets (toy PQ port, %s backend)', (_n, backend) => {
  const provider = cryptoProvider(backend);

  it('mixes each exchange at the same root step on both sides: epochs advance, messages keep flowing, late ones still open', () => {
    const { a, b } = pairV2(provider, toyPqPort);
    b.receive(a.send(text('start')));
    const late: { to: PeerV2; m: WireV2; text: string }[] = [];
    for (let round = 0; round < 6; round++) {
      const held = b.send(text(`held b${round}`));
      late.push({ to: a, m: held, text: `held b${round}` });
      expect(str(a.receive(b.send(text(`b${round}`))))).toBe(`b${round}`);
      expect(str(b.receive(a.send(text(`a${round}`))))).toBe(`a${round}`);
    }
    // The toy completes an exchange per message, so every DH half mixes one: X's sending half runs
    // one epoch ahead of the peer until the peer's matching receiving half.
    expect(a.r.state.rootEpoch).toBeGreaterThanOrEqual(6);
    expect(Math.abs(a.r.state.rootEpoch - b.r.state.rootEpoch)).toBeLessThanOrEqual(1);
    expect(toHex(a.r.state.rootKey)).not.toBe(toHex(b.r.state.rootKey));
    for (const l of late) expect(str(l.to.receive(l.m))).toBe(l.text);
    // A header that claims the next epoch without the secret held is refused.
    const s = a.r.state;
    const chain = s.sendingChain as NonNullable<typeof s.sendingChain>;
    const liar = new PeerV2(provider, { ...a.r, state: { ...s, sendingChain: { ...chain, epoch: chain.epoch + 1 } } }, alice, bob, {
      pq: toyPqPort,
    });
    a.receive(b.send(text('turn')));
    const before = b.r;
    expectCode(() => b.receive(liar.send(text('lie'))), 'PQ_EPOCH_INVALID');
    expect(b.r).toBe(before);
  });

  it('without the PQ secret the peer mixed, the next chain does not open (the secret is in the root chain)', () => {
    const { a, b } = pairV2(provider, toyPqPort);
    b.receive(a.send(text('start')));
    // Run until Alice (X of exchange 1) holds Bob's secret and her next chain mixes it.
    a.receive(b.send(text('carries the secret')));
    expect(a.r.state.rootEpoch).toBe(1);
    const m = a.send(text('first message of epoch 1'));
    // Bob without the secret: his PQ state forgets that he sent it.
    const forgetful = new PeerV2(provider, { ...b.r, state: { ...b.r.state, pq: [false, 1, 2, null] } }, bob, alice, { pq: toyPqPort });
    expectCode(() => forgetful.receive(m), 'PQ_EPOCH_INVALID');
    expect(str(b.receive(m))).toBe('first message of epoch 1');
    // Bob mixed exchange 1 on receipt; Alice's message also carried exchange 2's secret (the toy is
    // instant), so Bob's own sending half already mixes exchange 2.
    expect(b.r.state.rootEpoch).toBe(2);
    expect(b.r.state.receivingChains.at(-1)?.epoch).toBe(1);
  });
});
