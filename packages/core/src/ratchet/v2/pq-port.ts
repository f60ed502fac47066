/**
 * The narrow interface through which ratchet v2 drives the post-quantum
 * ratchet (spec/design/formats-v2.md §5.4-5.5). The ratchet knows only this:
 * what to attach when it encrypts, what to hand over after a body
 * authenticated, and which secret (if any) to mix at the two halves of a DH
 * step. The state machine itself (exchanges, chunks, ML-KEM) lives in
 * ../../pq/; this port keeps the two layers apart so each is tested alone.
 *
 * Every method is pure: it returns a new state and never mutates its input,
 * which keeps ratchet v2's decryption a transaction.
 *
 * The live state is the port's own decoded value, opaque here: it is read
 * and checked once when a record loads (`checkStored`) and written when the
 * record is saved (`toStored`), not decoded and re-validated on every
 * message. Whatever enters it from the wire is checked by `onReceive`.
 */
import type { CborValue } from '../../codec/cbor.ts';
import type { CryptoBackend } from '../../crypto/backend.ts';
import type { CryptoProvider } from '../../crypto/provider.ts';
import { pqRatchetPort } from '../../pq/port.ts';

/** A PQ ratchet state, opaque to the ratchet: only the port that made it reads it. */
export type PqState = unknown;

export interface PqPort {
  /** Names the implementation in errors and records' sanity checks. */
  readonly name: string;
  /** State of a new session; the initiator is X of exchange 1. */
  initial(initiator: boolean): PqState;
  /**
   * At encrypt: the chunks for this message's body (a PqChunks CBOR value)
   * or null. May draw randomness (key generation, encapsulation): the only
   * place the PQ ratchet does.
   */
  onSend(p: CryptoProvider, state: PqState): { state: PqState; chunks: CborValue | null };
  /**
   * At decrypt, after the body authenticated: the body's `pq` field as
   * received, and the epoch of the message's chain. A protocol violation is
   * PQ_CHUNK_INVALID. Draws no randomness.
   */
  onReceive(b: CryptoBackend, state: PqState, chunks: unknown, chainEpoch: number): PqState;
  /**
   * Sending half of a DH step: the secret of exchange `rootEpoch + 1` if this
   * side holds it (it is X and has decapsulated), deleted from the state.
   */
  takeSendSecret(state: PqState, rootEpoch: number): { state: PqState; secret: Uint8Array } | null;
  /**
   * Receiving half of a DH step whose header carries `epoch` (= rootEpoch + 1):
   * the secret of that exchange if this side holds it (it is Y and has
   * encapsulated), deleted from the state; null otherwise.
   */
  takeReceiveSecret(state: PqState, epoch: number): { state: PqState; secret: Uint8Array } | null;
  /** Reads and checks a stored state into a live one (BAD_RECORD-worthy shapes throw MALFORMED). */
  checkStored(v: unknown): PqState;
  /** The stored form of a live state (nested in the session record). */
  toStored(state: PqState): CborValue;
}

/**
 * The PQ ratchet every v2 session runs: core's ML-KEM-768 chunked exchanges
 * (pq/port.ts, formats-v2 §5). The ratchet and the record default to it; tests
 * may pass another port through `RatchetV2Options.pq`.
 */
export const defaultPqPort: PqPort = pqRatchetPort;
