/**
 * The PQ ratchet behind ratchet v2's narrow port (ratchet/v2/pq-port.ts):
 * states travel as their stored CBOR form (pq/state.ts), so the ratchet
 * stores them without knowing their shape, and every call re-reads them
 * with the record checks. Same semantics as ratchet.ts; this file only
 * translates.
 *
 * The ratchet keeps its own root epoch; the PQ state's is `exchange - 1`.
 * They must agree: a disagreement means a damaged or mixed-up record and is
 * refused rather than mixed.
 *
 * Wiring (ratchet v2 owns it): `pqRatchetPort` in place of `noPq` as the
 * default of ratchet/v2/ratchet.ts and as session/record.ts's PQ port.
 * Tried on h-ratchet2 at 05:45: every v2 ratchet and session test passes
 * (reordering, loss, duplication, simultaneous initiation, serialization at
 * every step, tampering) except the size assertion of a first message (243
 * bytes without chunks, 404 with: the next padding class, formats-v2 §6.6);
 * root epoch 3 after 55 ping-pong rounds, epoch 2 after 49 rounds at 30 % loss.
 */
import type { CborValue } from '../codec/cbor.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { type CryptoProvider, cryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { pqChunksToCbor, readPqChunks } from './chunks.ts';
import { pqOnReceive, pqOnSend, pqSecretForStep } from './ratchet.ts';
import { initialPqState, pqRootEpoch, pqStateToCbor, readPqState } from './state.ts';

function noRandom(b: CryptoBackend): CryptoProvider {
  return cryptoProvider(b, () => fail('INVALID_STATE', 'the PQ ratchet draws no randomness on receipt'));
}

function checkRoot(s: ReturnType<typeof readPqState>, rootEpoch: number): void {
  if (pqRootEpoch(s) !== rootEpoch) {
    fail('INVALID_STATE', 'PQ state and ratchet disagree on the root epoch', { pqRootEpoch: pqRootEpoch(s), rootEpoch });
  }
}

/** Structurally the `PqPort` of ratchet v2. */
export const pqRatchetPort = {
  name: 'mlkem768-chunked',

  initial(initiator: boolean): CborValue {
    return pqStateToCbor(initialPqState(initiator ? 'initiator' : 'responder'));
  },

  onSend(p: CryptoProvider, state: CborValue): { state: CborValue; chunks: CborValue | null } {
    const out = pqOnSend(p, readPqState(state));
    return { state: pqStateToCbor(out.state), chunks: out.chunks ? pqChunksToCbor(out.chunks) : null };
  },

  /** `chunks` is BodyV2's `pq` field as decoded; `chainEpoch` is not needed (the ratchet checks chain epochs). */
  onReceive(b: CryptoBackend, state: CborValue, chunks: unknown, _chainEpoch: number): CborValue {
    const received = chunks === null ? null : readPqChunks(chunks);
    return pqStateToCbor(pqOnReceive(noRandom(b), readPqState(state), received));
  },

  takeSendSecret(state: CborValue, rootEpoch: number): { state: CborValue; secret: Uint8Array } | null {
    const s = readPqState(state);
    checkRoot(s, rootEpoch);
    const out = pqSecretForStep(s, { side: 'send' });
    return out.secret.length === 0 ? null : { state: pqStateToCbor(out.state), secret: out.secret };
  },

  /** Called for a header epoch of rootEpoch + 1 only; null when this side does not hold that exchange's secret. */
  takeReceiveSecret(state: CborValue, epoch: number): { state: CborValue; secret: Uint8Array } | null {
    const s = readPqState(state);
    if (s.phase !== 'sendingCt' || epoch !== s.exchange) return null;
    const out = pqSecretForStep(s, { side: 'receive', epoch });
    return { state: pqStateToCbor(out.state), secret: out.secret };
  },

  checkStored(v: unknown): CborValue {
    return pqStateToCbor(readPqState(v));
  },
};
