/**
 * Two PQ ratchet states talking without the Double Ratchet: a model of just
 * enough of it (chains, DH steps on a new peer chain, the epoch each chain
 * carries) to drive pqOnSend / pqOnReceive / pqSecretForStep exactly as
 * ratchet v2 does (formats-v2 §4.6 steps 4, 7, 8). Each side records the PQ
 * secret mixed at the root step that made each chain, so a test can check
 * that both ends mixed the same secret at the same step.
 *
 * Every state goes through its stored form after every transition, so the
 * stored form is proven complete by every run.
 */
import { toHex } from '../../src/bytes.ts';
import type { CryptoBackend } from '../../src/crypto/backend.ts';
import type { CryptoProvider } from '../../src/crypto/provider.ts';
import { cryptoProvider } from '../../src/crypto/provider.ts';
import { decodePqChunks, encodePqChunks } from '../../src/pq/chunks.ts';
import { pqOnReceive, pqOnSend, pqSecretForStep } from '../../src/pq/ratchet.ts';
import { MAX_PQ_STATE_BYTES, type PqRole, type PqState, decodePqState, encodePqState, initialPqState } from '../../src/pq/state.ts';
import { deterministicRandom } from '../../src/testing.ts';

export interface PqWireMessage {
  readonly from: PqRole;
  /** The sender's chain (stands for its ratchet public key). */
  readonly chain: string;
  /** The chain's PQ epoch, as the encrypted header carries it. */
  readonly epoch: number;
  /** Encoded PqChunks or null, as the body carries it. */
  readonly pq: Uint8Array | null;
}

/** A provider whose random source throws: proves a call draws nothing. */
export function noRandomProvider(backend: CryptoBackend): CryptoProvider {
  return cryptoProvider(backend, () => {
    throw new Error('drew randomness where none may be drawn');
  });
}

export class PqPeer {
  state: PqState;
  /** Our current sending chain; null for a responder before its first receipt. */
  sendChain: { id: string; epoch: number } | null;
  readonly peerChains = new Map<string, number>();
  /** Secret (hex, '' for none) mixed at the root step that made each chain, ours and the peer's. */
  readonly stepSecrets = new Map<string, string>();
  /** Exchanges this side has mixed, in order. */
  readonly mixed: number[] = [];
  sent = 0;
  received = 0;
  chunksSent = 0;
  /** Bytes of the PqChunks values this side put into bodies (1 for the CBOR null of a body without chunks). */
  pqBytesSent = 0;
  private chains = 0;
  private readonly provider: CryptoProvider;
  private readonly quiet: boolean | undefined;

  constructor(
    readonly role: PqRole,
    backend: CryptoBackend,
    seed: string,
    options: { quiet?: boolean } = {},
  ) {
    this.state = initialPqState(role);
    this.provider = cryptoProvider(backend, deterministicRandom(seed));
    this.quiet = options.quiet;
    // The initiator's first chain comes from the handshake (epoch 0, no PQ secret).
    this.sendChain = role === 'initiator' ? { id: this.newChainId(), epoch: 0 } : null;
    if (this.sendChain) this.stepSecrets.set(this.sendChain.id, '');
  }

  private newChainId(): string {
    return `${this.role}:${this.chains++}`;
  }

  private store(s: PqState): void {
    const bytes = encodePqState(s);
    if (bytes.length > MAX_PQ_STATE_BYTES) throw new Error(`PQ state of ${bytes.length} bytes exceeds the bound`);
    this.state = decodePqState(bytes);
  }

  get canSend(): boolean {
    return this.sendChain !== null;
  }

  send(): PqWireMessage {
    if (!this.sendChain) throw new Error('no sending chain yet');
    const { chunks, state } = pqOnSend(this.provider, this.state, this.quiet === undefined ? {} : { quiet: this.quiet });
    this.store(state);
    this.sent++;
    this.chunksSent += chunks?.chunks.length ?? 0;
    const pq = chunks ? encodePqChunks(chunks) : null;
    this.pqBytesSent += pq?.length ?? 1;
    return { from: this.role, chain: this.sendChain.id, epoch: this.sendChain.epoch, pq };
  }

  /** Receives `m` as ratchet v2's decrypt would; throws what it throws (a refusal leaves this peer unchanged). */
  receive(m: PqWireMessage, backend: CryptoBackend): void {
    const p = noRandomProvider(backend);
    // An unknown chain is always a new one: in the Double Ratchet the peer
    // starts a chain only after we answered its previous one, so however
    // messages are reordered, some message of every older chain came first.
    const known = this.peerChains.get(m.chain);
    let s = this.state;
    let receiveSecret: string | null = null;
    if (known === undefined) {
      const r = pqSecretForStep(s, { side: 'receive', epoch: m.epoch });
      s = r.state;
      receiveSecret = toHex(r.secret);
    } else if (known !== m.epoch) {
      throw new Error(`chain ${m.chain} carries epoch ${m.epoch}, the ratchet holds ${known}`);
    }
    s = pqOnReceive(p, s, m.pq ? decodePqChunks(m.pq) : null);
    let sendStep: { id: string; epoch: number; secret: string } | null = null;
    if (known === undefined) {
      const r = pqSecretForStep(s, { side: 'send' });
      s = r.state;
      sendStep = { id: this.newChainId(), epoch: r.epoch, secret: toHex(r.secret) };
    }
    // Commit: nothing above touched this peer.
    this.store(s);
    this.received++;
    if (receiveSecret !== null) {
      this.peerChains.set(m.chain, m.epoch);
      this.stepSecrets.set(m.chain, receiveSecret);
      if (receiveSecret !== '') this.mixed.push(m.epoch);
    }
    if (sendStep) {
      this.sendChain = { id: sendStep.id, epoch: sendStep.epoch };
      this.stepSecrets.set(sendStep.id, sendStep.secret);
      if (sendStep.secret !== '') this.mixed.push(sendStep.epoch);
    }
  }
}

/** Exchanges both sides have mixed. */
export function completedExchanges(a: PqPeer, b: PqPeer): number {
  return Math.min(a.mixed.length, b.mixed.length);
}

/** Every root step known to both sides mixed the same secret; throws otherwise. Returns how many steps mixed one. */
export function checkAgreement(a: PqPeer, b: PqPeer): number {
  let mixedSteps = 0;
  for (const [chain, secret] of a.stepSecrets) {
    const other = b.stepSecrets.get(chain);
    if (other === undefined) continue;
    if (other !== secret) throw new Error(`root step of chain ${chain}: the two sides mixed different PQ secrets`);
    if (secret !== '') mixedSteps++;
  }
  return mixedSteps;
}
