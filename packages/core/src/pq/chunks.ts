/**
 * PqChunks: the PQ ratchet's part of a ratchet v2 body (formats-v2 §5.3).
 *
 *   PqChunks = [ exchange: uint (1..0xfffffffe),
 *                kind:     1 (encapsulation key) / 2 (ciphertext),
 *                chunks:   [+ [ index: uint (0..254), data: bstr .size 64 ]] ]
 *
 * 1..MAX_CHUNKS_PER_MESSAGE chunks with distinct indices. Every way a
 * PqChunks value can be wrong is refused with PQ_CHUNK_INVALID and a
 * `details.reason`, so the receiver has one code for "the peer broke the PQ
 * protocol" whether the fault is in the shape or in the state machine.
 *
 * This module knows the format only; what a receiver does with valid chunks
 * is ratchet.ts.
 */
import { type CborValue, decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { fail } from '../errors.ts';
import { type Chunk, PQ_CHUNK_BYTES, PQ_MAX_CHUNK_INDEX } from './erasure.ts';

/**
 * Most chunks a receiver accepts in one message: the quiet side's burst
 * (BURST_CHUNKS). Bounds the body (8 x 73 bytes) and the decoding work one
 * message can trigger.
 */
export const MAX_CHUNKS_PER_MESSAGE = 8;

/** Highest exchange number: exchanges count like message counters (uint32 minus one, so x + 1 still fits). */
export const MAX_PQ_EXCHANGE = 0xfffffffe;

/**
 * Largest encoding of a PqChunks value: 1 (array) + 5 (exchange) + 1 (kind) +
 * 1 (list) + 8 x (1 + 2 + 2 + 64). Used as the decoder's input bound.
 */
export const MAX_PQ_CHUNKS_BYTES = 1 + 5 + 1 + 1 + MAX_CHUNKS_PER_MESSAGE * (1 + 2 + 2 + PQ_CHUNK_BYTES);

export const PqKind = {
  /** Chunks of an ML-KEM-768 encapsulation key (1184 bytes, k = 19). */
  encapsulationKey: 1,
  /** Chunks of an ML-KEM-768 ciphertext (1088 bytes, k = 17). */
  ciphertext: 2,
} as const;
export type PqKind = (typeof PqKind)[keyof typeof PqKind];

export interface PqChunks {
  readonly exchange: number;
  readonly kind: PqKind;
  readonly chunks: readonly Chunk[];
}

function invalid(reason: string, message: string): never {
  fail('PQ_CHUNK_INVALID', `PqChunks: ${message}`, { reason });
}

function uint(v: unknown, max: number, reason: string, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) invalid(reason, `${field} out of range`);
  return v;
}

/**
 * The CBOR value of `c`, to be placed inside a body. Our own output goes
 * through the receiver's checks, so a sender never emits what a receiver
 * refuses; a value that fails them is caller misuse (RangeError).
 */
export function pqChunksToCbor(c: PqChunks): CborValue {
  const v = rawCbor(c);
  try {
    readPqChunks(v);
  } catch (e) {
    throw new RangeError(`PqChunks not encodable: ${(e as Error).message}`);
  }
  return v;
}

/**
 * The CBOR value of `c` without the receiver's checks: for pqOnSend's output,
 * which is within the format by construction (1..8 chunks of distinct
 * indices 0..254, 64 bytes each; pq-ratchet.test.ts decodes every one).
 */
export function pqChunksToCborUnchecked(c: PqChunks): CborValue {
  return rawCbor(c);
}

function rawCbor(c: PqChunks): CborValue {
  return [c.exchange, c.kind, c.chunks.map((ch) => [ch.index, ch.bytes])];
}

/**
 * Reads a PqChunks value out of an already decoded body field. Byte strings
 * are copied, so the result never aliases the caller's buffer.
 */
export function readPqChunks(v: unknown): PqChunks {
  if (!Array.isArray(v) || v.length !== 3) invalid('shape', 'expected [exchange, kind, chunks]');
  const exchange = uint(v[0], MAX_PQ_EXCHANGE, 'exchange', 'exchange');
  if (exchange === 0) invalid('exchange', 'exchange 0 does not exist');
  const kind = v[1];
  if (kind !== PqKind.encapsulationKey && kind !== PqKind.ciphertext) invalid('kind', 'unknown kind');
  const list = v[2];
  if (!Array.isArray(list)) invalid('shape', 'chunks must be an array');
  if (list.length === 0) invalid('count', 'no chunks');
  if (list.length > MAX_CHUNKS_PER_MESSAGE) invalid('count', `more than ${MAX_CHUNKS_PER_MESSAGE} chunks`);
  const seen = new Set<number>();
  const chunks: Chunk[] = [];
  for (const item of list) {
    if (!Array.isArray(item) || item.length !== 2) invalid('shape', 'a chunk is [index, data]');
    const index = uint(item[0], PQ_MAX_CHUNK_INDEX, 'index', 'index');
    const data = item[1];
    if (!(data instanceof Uint8Array) || data.length !== PQ_CHUNK_BYTES) invalid('length', 'chunk data is not 64 bytes');
    if (seen.has(index)) invalid('duplicate', 'repeated chunk index');
    seen.add(index);
    chunks.push({ index, bytes: new Uint8Array(data) });
  }
  return { exchange, kind, chunks };
}

/** Standalone encoding (vectors, tests); inside a body the value is nested, see pqChunksToCbor. */
export function encodePqChunks(c: PqChunks): Uint8Array {
  return encodeCbor(pqChunksToCbor(c));
}

/**
 * Strict decoding of a standalone PqChunks. Bytes that are not canonical CBOR
 * are MALFORMED / OVERSIZED (the codec's codes); a well-formed item of the
 * wrong shape is PQ_CHUNK_INVALID.
 */
export function decodePqChunks(bytes: Uint8Array): PqChunks {
  return readPqChunks(decodeCbor(bytes, 'PqChunks', MAX_PQ_CHUNKS_BYTES));
}
