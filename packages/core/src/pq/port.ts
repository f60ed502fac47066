/**
 * The PQ ratchet behind ratchet v2's narrow port (ratchet/v2/pq-port.ts).
 * The live state is pq/state.ts's decoded PqState, kept in the ratchet state
 * as an opaque value: read and checked once when a record loads
 * (`checkStored`, the record checks of readPqState) and written when it is
 * saved (`toStored`). Between the two only the pure transitions of
 * ratchet.ts touch it, so it never needs re-checking per message; what comes
 * off the wire (a body's `pq` field) is read with readPqChunks's checks once.
 * Same semantics as ratchet.ts; this file only translates.
 *
 * The ratchet keeps its own root epoch; the PQ state's is `exchange - 1`.
 * They must agree: a disagreement means a damaged or mixed-up record and is
 * refused rather than mixed.
 */
import type { CborValue } from '../codec/cbor.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { type CryptoProvider, cryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { pqChunksToCborUnchecked, readPqChunks } from './chunks.ts';
import { pqOnReceiveChecked, pqOnSend, pqSecretForStep } from './ratchet.ts';
import { type PqState, initialPqState, pqRootEpoch, pqStateToCbor, readPqState } from './state.ts';

// Receipt draws nothing (formats-v2 §5.4); one provider per backend that refuses to.
const noRandomProviders = new WeakMap<CryptoBackend, CryptoProvider>();
function noRandom(b: CryptoBackend): CryptoProvider {
  let p = noRandomProviders.get(b);
  if (!p) {
    p = cryptoProvider(b, () => fail('INVALID_STATE', 'the PQ ratchet draws no randomness on receipt'));
    noRandomProviders.set(b, p);
  }
  return p;
}

function checkRoot(s: PqState, rootEpoch: number): void {
  if (pqRootEpoch(s) !== rootEpoch) {
    fail('INVALID_STATE', 'PQ state and ratchet disagree on the root epoch', { pqRootEpoch: pqRootEpoch(s), rootEpoch });
  }
}

/** Structurally the `PqPort` of ratchet v2; its live states are PqState values (typed `unknown` at the port). */
export const pqRatchetPort = {
  name: 'mlkem768-chunked',

  initial(initiator: boolean): PqState {
    return initialPqState(initiator ? 'initiator' : 'responder');
  },

  onSend(p: CryptoProvider, state: unknown): { state: PqState; chunks: CborValue | null } {
    const out = pqOnSend(p, state as PqState);
    return { state: out.state, chunks: out.chunks ? pqChunksToCborUnchecked(out.chunks) : null };
  },

  /** `chunks` is BodyV2's `pq` field as decoded; `chainEpoch` is not needed (the ratchet checks chain epochs). */
  onReceive(b: CryptoBackend, state: unknown, chunks: unknown, _chainEpoch: number): PqState {
    const received = chunks === null ? null : readPqChunks(chunks);
    return pqOnReceiveChecked(noRandom(b), state as PqState, received);
  },

  takeSendSecret(state: unknown, rootEpoch: number): { state: PqState; secret: Uint8Array } | null {
    const s = state as PqState;
    checkRoot(s, rootEpoch);
    const out = pqSecretForStep(s, { side: 'send' });
    return out.secret.length === 0 ? null : { state: out.state, secret: out.secret };
  },

  /** Called for a header epoch of rootEpoch + 1 only; null when this side does not hold that exchange's secret. */
  takeReceiveSecret(state: unknown, epoch: number): { state: PqState; secret: Uint8Array } | null {
    const s = state as PqState;
    if (s.phase !== 'sendingCt' || epoch !== s.exchange) return null;
    const out = pqSecretForStep(s, { side: 'receive', epoch });
    return { state: out.state, secret: out.secret };
  },

  checkStored(v: unknown): PqState {
    return readPqState(v);
  },

  toStored(state: unknown): CborValue {
    return pqStateToCbor(state as PqState);
  },
};
