/**
 * The PQ ratchet's per-session state and its stored form (formats-v2 §5.4,
 * §5.6). The transitions are in ratchet.ts; this module only says what a
 * state may hold and how it is written, so a record that breaks an invariant
 * is refused at load time, never half-used.
 *
 * Exchange x has a key sender X (the initiator for odd x, the responder for
 * even x) and a ciphertext sender Y. Each side is in exactly one phase:
 *
 *   X: sendingKey -> awaitingCt -> holdingSecret --(mixed at X's send step)--> Y of x+1
 *   Y: collectingKey -> keyReceived -> sendingCt --(epoch x received)--> X of x+1
 *
 * Invariant: the root epoch (number of the last exchange mixed) is always
 * `exchange - 1`, because a side enters exchange x exactly when it mixes
 * exchange x - 1. So it is not stored.
 *
 * X keeps the 64-byte ML-KEM seed (FIPS 203 §7.1's (d, z)) instead of the
 * 2400-byte decapsulation key: it is the same secret in a twentieth of the
 * bytes, and the key is rebuilt once, at decapsulation.
 */
import type { CborValue } from '../codec/cbor.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import { MLKEM768_CIPHERTEXT_BYTES, MLKEM768_PUBLIC_KEY_BYTES, MLKEM768_SEED_BYTES } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { asRecordError } from '../keys/identity.ts';
import { MAX_PQ_EXCHANGE } from './chunks.ts';
import { PQ_SECRET_BYTES, mlkemEncapsulationKeyValid } from './kem.ts';
import { type Chunk, PQ_CHUNK_BYTES, PQ_MAX_CHUNK_INDEX, dataChunkCount } from './erasure.ts';

/** Data chunks of an encapsulation key (k_ek = 19) and of a ciphertext (k_ct = 17). */
export const EK_CHUNKS = dataChunkCount(MLKEM768_PUBLIC_KEY_BYTES);
export const CT_CHUNKS = dataChunkCount(MLKEM768_CIPHERTEXT_BYTES);

/**
 * Payloads' worth of chunks a side sends between two messages it receives:
 * 2, so at most 2k chunks (38 of an ek, 34 of a ct) go out while the peer is
 * silent, and any k of them rebuild the payload (half of them may be lost).
 * More would not help: the exchange cannot complete until the peer answers,
 * and each message from the peer allows another 2k. It is what keeps a
 * one-sided conversation from carrying chunks on every message (formats-v2
 * §5.8's 150-byte budget; spec/16-pq-ratchet.md §3).
 */
export const UNANSWERED_PAYLOADS = 2;
export const UNANSWERED_EK_CHUNKS = UNANSWERED_PAYLOADS * EK_CHUNKS;
export const UNANSWERED_CT_CHUNKS = UNANSWERED_PAYLOADS * CT_CHUNKS;

/** Bytes of a transcript hash (SHA-256(ek)). */
export const PQ_HASH_BYTES = 32;

/**
 * Upper bound of an encoded PQ state: the largest phase is sendingKey with a
 * seed and an ek (64 + 1184 + framing), or awaitingCt with 16 stored ct
 * chunks (16 x 69 + 64 + 32 + framing). 1,400 bytes covers both with room
 * (formats-v2 §5.6).
 */
export const MAX_PQ_STATE_BYTES = 1400;

/** Which end of the handshake this side is; it fixes the roles of every exchange. */
export type PqRole = 'initiator' | 'responder';

interface Common {
  readonly role: PqRole;
  /** Messages of this session received since this side last sent, capped at QUIET_RATIO (the quiet-side rule, §5.4). */
  readonly receivedSinceSend: number;
  /** The exchange in progress, 1..MAX_PQ_EXCHANGE. */
  readonly exchange: number;
}

/** X before the first ct chunk: sends ek chunks (seed and ek drawn at the first send). */
export interface SendingKey extends Common {
  readonly phase: 'sendingKey';
  readonly keys: { readonly seed: Uint8Array; readonly ek: Uint8Array; readonly dk?: Uint8Array } | null;
  /** Index of the next ek chunk to send, 0..254. */
  readonly next: number;
  /** Ek chunks sent since this side last received a message, at most UNANSWERED_EK_CHUNKS. */
  readonly unanswered: number;
}

/** X after the first ct chunk: collects ct chunks (fewer than CT_CHUNKS held). */
export interface AwaitingCt extends Common {
  readonly phase: 'awaitingCt';
  readonly seed: Uint8Array;
  /**
   * The decapsulation key of `seed`, kept in memory from key generation so
   * decapsulation need not run ML-KEM key generation again (a third of the
   * exchange's ML-KEM time). Never stored: the record keeps the seed only,
   * and a loaded state rebuilds dk from it. Holding it reveals nothing the
   * seed beside it does not. (Also in SendingKey's `keys`.)
   */
  readonly dk?: Uint8Array;
  readonly ekHash: Uint8Array;
  readonly chunks: readonly Chunk[];
}

/** X after decapsulation: the exchange secret, mixed at X's next DH send step. */
export interface HoldingSecret extends Common {
  readonly phase: 'holdingSecret';
  readonly secret: Uint8Array;
}

/** Y: collects ek chunks (fewer than EK_CHUNKS held). */
export interface CollectingKey extends Common {
  readonly phase: 'collectingKey';
  readonly chunks: readonly Chunk[];
}

/** Y with a decoded, checked ek: encapsulates at its next send (randomness only in send). */
export interface KeyReceived extends Common {
  readonly phase: 'keyReceived';
  readonly ek: Uint8Array;
}

/** Y after encapsulation: sends ct chunks until a message of epoch `exchange` arrives. */
export interface SendingCt extends Common {
  readonly phase: 'sendingCt';
  readonly ct: Uint8Array;
  readonly secret: Uint8Array;
  readonly next: number;
  /** Ct chunks sent since this side last received a message, at most UNANSWERED_CT_CHUNKS. */
  readonly unanswered: number;
}

export type PqState = SendingKey | AwaitingCt | HoldingSecret | CollectingKey | KeyReceived | SendingCt;
export type PqPhase = PqState['phase'];

const PHASE_CODE: Record<PqPhase, number> = {
  sendingKey: 1,
  awaitingCt: 2,
  holdingSecret: 3,
  collectingKey: 4,
  keyReceived: 5,
  sendingCt: 6,
};

/** Is this side the key sender X of `exchange`? */
export function isKeySender(role: PqRole, exchange: number): boolean {
  return (exchange % 2 === 1) === (role === 'initiator');
}

/** Number of the last exchange mixed into the root chain (the PQ epoch of new chains). */
export function pqRootEpoch(s: PqState): number {
  return s.exchange - 1;
}

/** The state at session start: the initiator is X of exchange 1, the responder Y of it. */
export function initialPqState(role: PqRole): PqState {
  if (role === 'initiator') return { role, receivedSinceSend: 0, exchange: 1, phase: 'sendingKey', keys: null, next: 0, unanswered: 0 };
  return { role, receivedSinceSend: 0, exchange: 1, phase: 'collectingKey', chunks: [] };
}

/** The phase a side enters as X or Y of `exchange`. */
export function startExchange(role: PqRole, exchange: number): PqState {
  if (exchange > MAX_PQ_EXCHANGE) fail('INVALID_STATE', 'PQ exchange numbers exhausted');
  return isKeySender(role, exchange)
    ? { role, receivedSinceSend: 0, exchange, phase: 'sendingKey', keys: null, next: 0, unanswered: 0 }
    : { role, receivedSinceSend: 0, exchange, phase: 'collectingKey', chunks: [] };
}

const chunksToCbor = (chunks: readonly Chunk[]): CborValue => chunks.map((c) => [c.index, c.bytes]);

/**
 * `unanswered` is written only when above 0, so a state stored before the
 * field existed (always 0 then) re-encodes to its own bytes; a written 0 is
 * refused, keeping one encoding per state.
 */
const unansweredField = (n: number): CborValue[] => (n > 0 ? [n] : []);

/** The stored form, nested in a session record (ratchet v2). */
export function pqStateToCbor(s: PqState): CborValue {
  const head: CborValue[] = [s.role === 'initiator' ? 0 : 1, s.receivedSinceSend, PHASE_CODE[s.phase], s.exchange];
  switch (s.phase) {
    case 'sendingKey':
      return [...head, s.keys ? s.keys.seed : null, s.keys ? s.keys.ek : null, s.next, ...unansweredField(s.unanswered)];
    case 'awaitingCt':
      return [...head, s.seed, s.ekHash, chunksToCbor(s.chunks)];
    case 'holdingSecret':
      return [...head, s.secret];
    case 'collectingKey':
      return [...head, chunksToCbor(s.chunks)];
    case 'keyReceived':
      return [...head, s.ek];
    case 'sendingCt':
      return [...head, s.ct, s.secret, s.next, ...unansweredField(s.unanswered)];
  }
}

function readChunks(v: unknown, field: string, max: number): Chunk[] {
  const seen = new Set<number>();
  return readArray(v, field, { min: 0, max }).map((c) => {
    const f = readArray(c, `${field} chunk`, 2);
    const index = readUint(f[0], `${field}.index`, PQ_MAX_CHUNK_INDEX);
    if (seen.has(index)) fail('MALFORMED', `${field}: repeated chunk index`, { field });
    seen.add(index);
    return { index, bytes: readBytes(f[1], `${field}.data`, PQ_CHUNK_BYTES) };
  });
}

const PHASE_FIELDS: Record<number, number> = { 1: 4, 2: 3, 3: 1, 4: 1, 5: 1, 6: 4 };
/** Phases whose last field, `unanswered`, is absent when 0 (and in records written before it existed). */
const UNANSWERED_AT: Record<number, number> = { 1: 3, 6: 3 };
const X_PHASES = new Set([1, 2, 3]);

/**
 * Reads a stored PQ state. Any breach (wrong field, a chunk list at or above
 * its k, a phase that does not match the role's parity for the exchange)
 * throws MALFORMED / OVERSIZED; the record layer reports it as BAD_RECORD.
 */
export function readPqState(v: unknown): PqState {
  if (!Array.isArray(v) || v.length < 5) fail('MALFORMED', 'PqState: expected an array');
  const roleCode = readUint(v[0], 'pq.role', 1);
  const role: PqRole = roleCode === 0 ? 'initiator' : 'responder';
  const receivedSinceSend = readUint(v[1], 'pq.receivedSinceSend', 0xff);
  const code = readUint(v[2], 'pq.phase', 6);
  const exchange = readUint(v[3], 'pq.exchange', MAX_PQ_EXCHANGE);
  if (code === 0 || exchange === 0) fail('MALFORMED', 'PqState: phase and exchange start at 1');
  const fields = PHASE_FIELDS[code] as number;
  const older = UNANSWERED_AT[code] !== undefined && v.length === 4 + fields - 1;
  const f = readArray(v, 'PqState', 4 + fields - (older ? 1 : 0)).slice(4);
  const unanswered = (max: number) => {
    if (older) return 0;
    const n = readUint(f[UNANSWERED_AT[code] as number], 'pq.unanswered', max);
    if (n === 0) fail('MALFORMED', 'PqState: unanswered 0 is stored by omission');
    return n;
  };
  if (X_PHASES.has(code) !== isKeySender(role, exchange)) fail('MALFORMED', 'PqState: phase does not match the role for this exchange');
  const common = { role, receivedSinceSend, exchange };
  const next = (x: unknown) => readUint(x, 'pq.next', PQ_MAX_CHUNK_INDEX);
  switch (code) {
    case 1: {
      if ((f[0] === null) !== (f[1] === null)) fail('MALFORMED', 'PqState: seed and ek are held together');
      const keys =
        f[0] === null
          ? null
          : { seed: readBytes(f[0], 'pq.seed', MLKEM768_SEED_BYTES), ek: readBytes(f[1], 'pq.ek', MLKEM768_PUBLIC_KEY_BYTES) };
      return { ...common, phase: 'sendingKey', keys, next: next(f[2]), unanswered: unanswered(UNANSWERED_EK_CHUNKS) };
    }
    case 2:
      return {
        ...common,
        phase: 'awaitingCt',
        seed: readBytes(f[0], 'pq.seed', MLKEM768_SEED_BYTES),
        ekHash: readBytes(f[1], 'pq.ekHash', PQ_HASH_BYTES),
        chunks: readChunks(f[2], 'pq.ctChunks', CT_CHUNKS - 1),
      };
    case 3:
      return { ...common, phase: 'holdingSecret', secret: readBytes(f[0], 'pq.secret', PQ_SECRET_BYTES) };
    case 4:
      return { ...common, phase: 'collectingKey', chunks: readChunks(f[0], 'pq.ekChunks', EK_CHUNKS - 1) };
    case 5: {
      const ek = readBytes(f[0], 'pq.ek', MLKEM768_PUBLIC_KEY_BYTES);
      // Checked at receipt; checked again so a damaged record fails here, typed, not inside encapsulation.
      if (!mlkemEncapsulationKeyValid(ek)) fail('MALFORMED', 'PqState: stored encapsulation key fails the modulus check');
      return { ...common, phase: 'keyReceived', ek };
    }
    default:
      return {
        ...common,
        phase: 'sendingCt',
        ct: readBytes(f[0], 'pq.ct', MLKEM768_CIPHERTEXT_BYTES),
        secret: readBytes(f[1], 'pq.secret', PQ_SECRET_BYTES),
        next: next(f[2]),
        unanswered: unanswered(UNANSWERED_CT_CHUNKS),
      };
  }
}

/** Standalone encoding (vectors, tests); a session record nests pqStateToCbor instead. */
export function encodePqState(s: PqState): Uint8Array {
  return encodeCbor(pqStateToCbor(s));
}

/** Standalone decoding: anything wrong is BAD_RECORD, as for every stored record. */
export function decodePqState(bytes: Uint8Array): PqState {
  try {
    return readPqState(decodeCbor(bytes, 'PqState', MAX_PQ_STATE_BYTES));
  } catch (e) {
    throw asRecordError(e, 'PqState');
  }
}
