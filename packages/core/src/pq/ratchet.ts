/**
 * The PQ ratchet as pure transitions (formats-v2 §5.4-§5.5). Each function
 * takes a state and returns a new one, never mutating its input, so a caller
 * that fails later in the same decrypt still holds the old state untouched.
 *
 * How ratchet v2 drives it, per message:
 *
 *   encrypt:  { chunks, state } = pqOnSend(p, state)            chunks go into BodyV2.pq
 *   decrypt:  for a DH step, the receiving half first:
 *               { secret, epoch, state } = pqSecretForStep(p, state, { side: 'receive', epoch: header.pqEpoch })
 *             then, after the body authenticated, for every message:
 *               state = pqOnReceive(p, state, body.pq)           (also when body.pq is null)
 *             then, for a DH step, the sending half:
 *               { secret, epoch, state } = pqSecretForStep(p, state, { side: 'send' })
 *             `secret` (empty or 32 bytes) is the `pq` input of KDF_RK2, and
 *             `epoch` the PQ epoch of the chain that step makes.
 *
 * Randomness: drawn only in pqOnSend (64 bytes for a key pair, 32 for an
 * encapsulation), lazily, when the state calls for it. pqOnReceive and
 * pqSecretForStep draw nothing, so a refused message draws nothing.
 */
import { wipe } from '../bytes.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { MLKEM768_CIPHERTEXT_BYTES, MLKEM768_PUBLIC_KEY_BYTES, MLKEM768_SEED_BYTES } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { type PqChunks, PqKind, readPqChunks } from './chunks.ts';
import { type Chunk, PQ_MAX_CHUNK_INDEX, decodeChunks, encodeChunks } from './erasure.ts';
import { mlkemEncapsulationKeyValid, pqExchangeSecret } from './kem.ts';
import { CT_CHUNKS, EK_CHUNKS, type PqState, UNANSWERED_CT_CHUNKS, UNANSWERED_EK_CHUNKS, isKeySender, startExchange } from './state.ts';

/**
 * Chunks a sender adds to an ordinary message: 2 x 70 bytes keeps the
 * average added bytes under issue 17's 150-byte budget (formats-v2 §5.8)
 * and completes an exchange in about 10 + 9 ping-pong rounds.
 */
export const CHUNKS_PER_MESSAGE = 2;

/**
 * Chunks the quiet side adds: one message from it carries 8 chunks, so an
 * exchange still completes in about 3 of its messages when the other side
 * sends 20 for each of them (§5.7). Equal to MAX_CHUNKS_PER_MESSAGE.
 */
export const BURST_CHUNKS = 8;

/**
 * Messages received since this side last sent that make it the "quiet
 * side": a 4:1 imbalance already stalls an exchange carried 2 chunks at a
 * time by the side that rarely speaks.
 */
export const QUIET_RATIO = 4;

export interface PqSendResult {
  /** What goes into BodyV2.pq; null when this side has nothing to send. */
  readonly chunks: PqChunks | null;
  readonly state: PqState;
}

export interface PqStepResult {
  /** The `pq` input of KDF_RK2: 32 bytes when an exchange is mixed at this step, else empty. A copy: the caller may wipe it. */
  readonly secret: Uint8Array;
  /** PQ epoch of the chain this step makes (sending side) or opens (receiving side). */
  readonly epoch: number;
  readonly state: PqState;
}

export type PqStep = { readonly side: 'send' } | { readonly side: 'receive'; readonly epoch: number };

/** The indices `next, next + 1, ...` wrapping from 254 to 0, and the index after them. */
function nextIndices(next: number, count: number): { indices: number[]; next: number } {
  const indices = Array.from({ length: count }, (_, i) => (next + i) % (PQ_MAX_CHUNK_INDEX + 1));
  return { indices, next: (next + count) % (PQ_MAX_CHUNK_INDEX + 1) };
}

function chunksOf(exchange: number, kind: PqKind, payload: Uint8Array, indices: number[]): PqChunks {
  const data = encodeChunks(payload, indices);
  return { exchange, kind, chunks: indices.map((index, i) => ({ index, bytes: data[i] as Uint8Array })) };
}

/**
 * What this side adds to the message it is about to encrypt, and its state
 * after. `options.quiet` overrides the quiet-side rule (tests, benches); by
 * default a side is quiet when it received QUIET_RATIO messages since it
 * last sent.
 */
export function pqOnSend(p: CryptoProvider, s: PqState, options: { quiet?: boolean } = {}): PqSendResult {
  const quiet = options.quiet ?? s.receivedSinceSend >= QUIET_RATIO;
  const count = quiet ? BURST_CHUNKS : CHUNKS_PER_MESSAGE;
  const b = p.backend;
  switch (s.phase) {
    case 'sendingKey': {
      const allowed = Math.min(count, UNANSWERED_EK_CHUNKS - s.unanswered);
      // 2k chunks out since the peer last spoke: more cannot help until it answers (state.ts).
      if (allowed <= 0) return { chunks: null, state: { ...s, receivedSinceSend: 0 } };
      let keys = s.keys;
      if (keys === null) {
        const seed = p.random(MLKEM768_SEED_BYTES);
        const pair = b.mlkemKeygen(seed);
        // dk stays in memory beside its seed (same secret) so decapsulation skips a second key
        // generation; the stored record holds the seed only (state.ts).
        keys = { seed: seed.slice(), ek: pair.publicKey.slice(), dk: pair.secretKey.slice() };
        wipe(pair.secretKey);
      }
      const { indices, next } = nextIndices(s.next, allowed);
      const chunks = chunksOf(s.exchange, PqKind.encapsulationKey, keys.ek, indices);
      return { chunks, state: { ...s, receivedSinceSend: 0, keys, next, unanswered: s.unanswered + allowed } };
    }
    case 'keyReceived': {
      const m = p.random(32);
      let enc: { ciphertext: Uint8Array; sharedSecret: Uint8Array };
      try {
        enc = b.mlkemEncapsulate(s.ek, m);
      } finally {
        // m determines the shared secret (FIPS 203 K = G(m || H(ek))): gone once used.
        wipe(m);
      }
      const ct = enc.ciphertext.slice();
      const secret = pqExchangeSecret(b, s.exchange, b.sha256(s.ek), ct, enc.sharedSecret);
      // keyReceived is entered on a receipt and left at the next send: nothing sent unanswered yet.
      const { indices, next } = nextIndices(0, count);
      const chunks = chunksOf(s.exchange, PqKind.ciphertext, ct, indices);
      const { ek: _ek, ...rest } = s;
      return { chunks, state: { ...rest, receivedSinceSend: 0, phase: 'sendingCt', ct, secret, next, unanswered: count } };
    }
    case 'sendingCt': {
      const allowed = Math.min(count, UNANSWERED_CT_CHUNKS - s.unanswered);
      if (allowed <= 0) return { chunks: null, state: { ...s, receivedSinceSend: 0 } };
      const { indices, next } = nextIndices(s.next, allowed);
      const chunks = chunksOf(s.exchange, PqKind.ciphertext, s.ct, indices);
      return { chunks, state: { ...s, receivedSinceSend: 0, next, unanswered: s.unanswered + allowed } };
    }
    default:
      return { chunks: null, state: { ...s, receivedSinceSend: 0 } };
  }
}

function refuse(reason: string, message: string, s: PqState): never {
  fail('PQ_CHUNK_INVALID', message, { reason, exchange: s.exchange, phase: s.phase });
}

/** Held chunks plus new ones, first copy of an index wins, at most `k` kept. */
function merge(held: readonly Chunk[], incoming: readonly Chunk[], k: number): Chunk[] {
  const out = [...held];
  const have = new Set(held.map((c) => c.index));
  for (const c of incoming) {
    if (out.length >= k) break;
    if (have.has(c.index)) continue;
    have.add(c.index);
    out.push(c);
  }
  return out;
}

/**
 * Applies the PQ part of a received, authenticated message (`null` when it
 * carries none; call it for every message, it also counts them for the
 * quiet-side rule). Refused with PQ_CHUNK_INVALID (`details.reason`): a
 * malformed value (see chunks.ts), a future exchange, a kind the peer's role
 * does not send, ct chunks before any key was sent, or a decoded key that
 * fails the FIPS 203 modulus check. Chunks of past exchanges are ignored
 * (late messages are normal).
 */
export function pqOnReceive(p: CryptoProvider, s: PqState, received: PqChunks | null): PqState {
  // An object handed in (rather than read from a body) is checked as if it came off the wire.
  const c = received === null ? null : readPqChunks([received.exchange, received.kind, received.chunks.map((ch) => [ch.index, ch.bytes])]);
  return pqOnReceiveChecked(p, s, c);
}

/**
 * pqOnReceive for chunks that readPqChunks produced (the port reads the
 * body's field once with it): the same transition without checking the
 * shape twice.
 */
export function pqOnReceiveChecked(p: CryptoProvider, s: PqState, c: PqChunks | null): PqState {
  // Every message from the peer counts for the quiet-side rule and answers what this side sent.
  const counted: PqState = {
    ...s,
    receivedSinceSend: Math.min(s.receivedSinceSend + 1, QUIET_RATIO),
    ...(s.phase === 'sendingKey' || s.phase === 'sendingCt' ? { unanswered: 0 } : {}),
  };
  if (c === null) return counted;
  if (c.exchange < s.exchange) return counted;
  if (c.exchange > s.exchange) refuse('future_exchange', 'chunks of an exchange that has not started', s);
  const weAreX = isKeySender(s.role, s.exchange);
  const expected = weAreX ? PqKind.ciphertext : PqKind.encapsulationKey;
  if (c.kind !== expected) refuse('kind', 'chunks of a kind the peer does not send in this exchange', s);
  const b = p.backend;
  switch (counted.phase) {
    case 'sendingKey':
    case 'awaitingCt': {
      let awaiting: PqState & { phase: 'awaitingCt' };
      if (counted.phase === 'sendingKey') {
        if (counted.keys === null) refuse('premature', 'ciphertext chunks before any key was sent', s);
        const { keys, next: _next, unanswered: _unanswered, ...rest } = counted;
        awaiting = {
          ...rest,
          phase: 'awaitingCt',
          seed: keys.seed,
          ...(keys.dk ? { dk: keys.dk } : {}),
          ekHash: b.sha256(keys.ek),
          chunks: [],
        };
      } else {
        awaiting = counted;
      }
      const chunks = merge(awaiting.chunks, c.chunks, CT_CHUNKS);
      if (chunks.length < CT_CHUNKS) return { ...awaiting, chunks };
      const ct = decodeChunks(chunks, MLKEM768_CIPHERTEXT_BYTES);
      // The held dk belongs to the (immutable) old state too, which a failure later in this
      // decrypt hands back: it is not wiped here. One rebuilt from the seed is ours to wipe.
      const dk = awaiting.dk ?? b.mlkemKeygen(awaiting.seed).secretKey;
      const ss = b.mlkemDecapsulate(ct, dk);
      if (dk !== awaiting.dk) wipe(dk);
      const secret = pqExchangeSecret(b, s.exchange, awaiting.ekHash, ct, ss);
      return { role: s.role, receivedSinceSend: counted.receivedSinceSend, exchange: s.exchange, phase: 'holdingSecret', secret };
    }
    case 'collectingKey': {
      const chunks = merge(counted.chunks, c.chunks, EK_CHUNKS);
      if (chunks.length < EK_CHUNKS) return { ...counted, chunks };
      const ek = decodeChunks(chunks, MLKEM768_PUBLIC_KEY_BYTES);
      if (!mlkemEncapsulationKeyValid(ek)) refuse('bad_key', 'the decoded encapsulation key fails the FIPS 203 modulus check', s);
      return { role: s.role, receivedSinceSend: counted.receivedSinceSend, exchange: s.exchange, phase: 'keyReceived', ek };
    }
    default:
      // holdingSecret, keyReceived, sendingCt: the payload is complete; late chunks change nothing.
      return counted;
  }
}

/**
 * The PQ input of one half of a DH ratchet step (§5.5), and the state after.
 *
 * - `send` (the sending half, also the one computed in decrypt): if this side
 *   is X and holds the exchange secret, it is mixed here; the new chain has
 *   epoch x and this side becomes Y of exchange x + 1. Otherwise no secret,
 *   and the chain has the root epoch.
 * - `receive` with the header's `epoch`: the root epoch means no secret; the
 *   root epoch + 1 is accepted only from Y holding that exchange's secret,
 *   which is mixed; Y becomes X of exchange x + 1. Anything else is
 *   PQ_EPOCH_INVALID (state unchanged).
 */
export function pqSecretForStep(s: PqState, step: PqStep): PqStepResult {
  const rootEpoch = s.exchange - 1;
  if (step.side === 'send') {
    if (s.phase !== 'holdingSecret') return { secret: new Uint8Array(0), epoch: rootEpoch, state: s };
    return { secret: s.secret.slice(), epoch: s.exchange, state: advance(s) };
  }
  if (step.epoch === rootEpoch) return { secret: new Uint8Array(0), epoch: rootEpoch, state: s };
  if (step.epoch === s.exchange && s.phase === 'sendingCt') {
    return { secret: s.secret.slice(), epoch: s.exchange, state: advance(s) };
  }
  fail('PQ_EPOCH_INVALID', 'PQ epoch of a new chain is neither the root epoch nor a completed exchange', {
    epoch: Number.isInteger(step.epoch) ? step.epoch : -1,
    rootEpoch,
  });
}

/** After mixing exchange x: the other role in exchange x + 1, the quiet-side count carried over. */
function advance(s: PqState): PqState {
  return { ...startExchange(s.role, s.exchange + 1), receivedSinceSend: s.receivedSinceSend };
}
