// Post-compromise security of ratchet v2 against a quantum-capable adversary Q (formats-v2 §5.7,
// spec/13-ratchet-v2.md §6): Q steals Bob's whole state at time t and learns every X25519 secret
// ever generated, but breaks neither ML-KEM-768 nor SHA-256, and stays passive.
//
// Q is modelled as a copy of Bob that replays everything Bob does after t with the same X25519
// keys (Bob's DH-step draws are handed to Q: that is "breaking X25519") but its own ML-KEM
// randomness (key generation and encapsulation draws made after t are not Q's). Q tries every
// message Alice sends to Bob; it must fail on all of them once an exchange begun after t has been
// mixed, and the number of messages that takes is counted, not timed.
import { describe, expect, it } from 'vitest';
import { type CryptoProvider, ParleyError, cryptoProvider } from '../src/index.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { deterministicRandom } from '../src/crypto/deterministic-random.ts';
import type { PqPort } from '../src/ratchet/v2/pq-port.ts';
import { defaultPqPort } from '../src/ratchet/v2/pq-port.ts';
import { PeerV2, type WireV2, pairV2 } from './support/ratchet-v2.ts';
import { text } from './support/parties.ts';

/** A random source that replays `known` draws first, then fresh ones (Q's own). */
class Scripted {
  known: Uint8Array[] = [];
  readonly #fresh = deterministicRandom('Q');
  readonly source = (n: number) => {
    const next = this.known.shift();
    if (next && next.length === n) return next.slice();
    return this.#fresh(n);
  };
}

/** Bob's draws, recorded per operation. */
class Recording {
  log: Uint8Array[] = [];
  readonly #inner = deterministicRandom('bob');
  readonly source = (n: number) => {
    const out = this.#inner(n);
    this.log.push(out.slice());
    return out;
  };
}

interface Run {
  /** Alice's messages sent after t until Q first fails, or null if Q never failed. */
  healedAfter: { alice: number; bob: number } | null;
  /** Alice's messages Q read after it had failed once (must be 0). */
  readAfterHealing: number;
}

/**
 * A conversation of `rounds` rounds; in each, Alice sends `aPer` messages and Bob `bPer`, with
 * each message lost with probability `loss` (seeded). Q steals Bob's state after `stealAt` rounds.
 */
function run(
  pq: PqPort,
  opts: { rounds: number; aPer: number; bPer: number; loss: number; stealAt: number; seed: string; qKnowsKem?: boolean },
): Run {
  const backend = nodeBackend;
  const alicePeer = pairV2(cryptoProvider(backend, deterministicRandom(`alice ${opts.seed}`)), pq);
  const bobRec = new Recording();
  // Rebuild Bob with the recording provider (same state).
  const bob = new PeerV2(cryptoProvider(backend, bobRec.source), alicePeer.b.r, alicePeer.b.self, alicePeer.b.peer, { pq });
  const alice = alicePeer.a;
  const lossRng = deterministicRandom(`loss ${opts.seed}`);
  const lost = () => (lossRng(1)[0] as number) / 256 < opts.loss;
  const qRandom = new Scripted();
  let q: PeerV2 | null = null;
  let sentAfter = { alice: 0, bob: 0 };
  let healedAfter: Run['healedAfter'] = null;
  let readAfterHealing = 0;

  const bobSends = (t: string): WireV2 => {
    bobRec.log = [];
    const m = bob.send(text(t));
    if (q) {
      // Q knows the franking key draw (irrelevant) but not Bob's ML-KEM draws: fresh ones.
      qRandom.known = opts.qKnowsKem ? bobRec.log.slice() : bobRec.log.slice(0, 1);
      q.send(text(t));
      sentAfter = { ...sentAfter, bob: sentAfter.bob + 1 };
    }
    return m;
  };
  const bobReceives = (m: WireV2) => {
    bobRec.log = [];
    bob.receive(m);
    if (!q) return;
    qRandom.known = bobRec.log.slice(); // the X25519 key of a DH step: Q breaks X25519
    try {
      q.receive(m);
      if (healedAfter) readAfterHealing++;
    } catch (e) {
      if (!(e instanceof ParleyError)) throw e;
      healedAfter ??= { ...sentAfter };
    }
  };

  let started = false;
  for (let round = 0; round < opts.rounds; round++) {
    if (round === opts.stealAt) q = new PeerV2(cryptoProvider(backend, qRandom.source), bob.r, bob.self, bob.peer, { pq });
    for (let i = 0; i < opts.aPer; i++) {
      const m = alice.send(text(`a${round}.${i}`));
      if (q) sentAfter = { ...sentAfter, alice: sentAfter.alice + 1 };
      if (!started || !lost()) bobReceives(m);
      started = true;
    }
    for (let i = 0; i < opts.bPer; i++) {
      const m = bobSends(`b${round}.${i}`);
      if (!lost()) alice.receive(m);
    }
  }
  return { healedAfter, readAfterHealing };
}

describe('PCS against an adversary who learns every X25519 secret (node backend)', () => {
  it('without a PQ ratchet, Q reads every later message: the DH ratchet alone does not heal against Q', () => {
    const r = run(noMixing, { rounds: 60, aPer: 1, bPer: 1, loss: 0, stealAt: 5, seed: 'no pq' });
    expect(r.healedAfter).toBeNull();
  });

  it('control: a Q that also learned the ML-KEM randomness reads everything (the lock-out comes from ML-KEM)', () => {
    const r = run(defaultPqPort, { rounds: 60, aPer: 1, bPer: 1, loss: 0, stealAt: 5, seed: 'ping-pong', qKnowsKem: true });
    expect(r.healedAfter).toBeNull();
  });

  it('ping-pong: Q is locked out once an exchange begun after t is mixed, within 40 messages of each side', () => {
    const r = run(defaultPqPort, { rounds: 60, aPer: 1, bPer: 1, loss: 0, stealAt: 5, seed: 'ping-pong' });
    expect(r.healedAfter).not.toBeNull();
    expect(r.healedAfter?.alice).toBeLessThanOrEqual(40);
    expect(r.healedAfter?.bob).toBeLessThanOrEqual(40);
    expect(r.readAfterHealing).toBe(0);
    console.log(`ping-pong: Q locked out after ${JSON.stringify(r.healedAfter)} messages sent since t`);
  });

  it('ping-pong under 30% random message loss: Q is locked out too, and never reads again', () => {
    for (const seed of ['loss 1', 'loss 2', 'loss 3']) {
      const r = run(defaultPqPort, { rounds: 120, aPer: 1, bPer: 1, loss: 0.3, stealAt: 5, seed });
      expect(r.healedAfter, seed).not.toBeNull();
      expect(r.readAfterHealing, seed).toBe(0);
      console.log(`30% loss (${seed}): Q locked out after ${JSON.stringify(r.healedAfter)} messages sent since t`);
    }
  });

  it('one side sends 20 messages for each of the other: healing within about 8 messages of the quiet side', () => {
    const r = run(defaultPqPort, { rounds: 30, aPer: 20, bPer: 1, loss: 0, stealAt: 2, seed: '20:1' });
    expect(r.healedAfter).not.toBeNull();
    expect(r.healedAfter?.bob).toBeLessThanOrEqual(10);
    expect(r.readAfterHealing).toBe(0);
    console.log(`20:1: Q locked out after ${JSON.stringify(r.healedAfter)} messages sent since t`);
  });
});

/** The ratchet with PQ chunks ignored and nothing mixed: what v2 would be without its PQ ratchet. */
const noMixing: PqPort = {
  name: 'none',
  initial: () => null,
  onSend: (_p: CryptoProvider, state) => ({ state, chunks: null }),
  onReceive: (_b, state) => state,
  takeSendSecret: () => null,
  takeReceiveSecret: () => null,
  checkStored: (v) => v as null,
  toStored: () => null,
};
