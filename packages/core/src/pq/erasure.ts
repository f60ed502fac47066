/**
 * The PQ chunk erasure code: systematic Reed-Solomon over GF(2^8), exactly
 * as spec/design/erasure-code.md §1 defines it (formats-v2.md §5.2). A
 * payload of L bytes becomes k = ceil(L / 64) data chunks; chunk i (0..254)
 * is the evaluation at the field element i of the 64 polynomials of degree
 * < k through the data, so chunks 0..k-1 are the payload itself and any k
 * chunks with distinct indices rebuild it (the code is MDS).
 *
 * Table lookups depend on chunk bytes, which are not secret from anyone who
 * sees them (the two peers; on the wire they are inside the message AEAD).
 *
 * Internal: not exported from core's index until ratchet v2 lands.
 */
import { fail } from '../errors.ts';

/** Bytes per chunk (C in erasure-code.md): one chunk is 64 bytes of the body. */
export const PQ_CHUNK_BYTES = 64;

/** Chunk indices are the field elements 0..254 (255 distinct evaluation points; the sender wraps from 254 to 0). */
export const PQ_MAX_CHUNK_INDEX = 254;

/**
 * Largest payload the code accepts: 2048 bytes, k <= 32. The largest real
 * payload is an ML-KEM-768 encapsulation key (1184 bytes, k = 19); the bound
 * caps decoding at 32 weight vectors and 32 * 32 * 64 multiply-adds however
 * a caller is driven.
 */
export const PQ_MAX_PAYLOAD_BYTES = 2048;

/** x^8 + x^4 + x^3 + x^2 + 1: primitive, so 2 generates the multiplicative group. */
const POLY = 0x11d;

// EXP is doubled (510 entries used) so a product's log sum needs no reduction mod 255.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255] as number;
}

/** Multiplication in GF(2^8) mod 0x11d. */
export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[(LOG[a] as number) + (LOG[b] as number)] as number;
}

/** Multiplicative inverse; 0 has none. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return EXP[255 - (LOG[a] as number)] as number;
}

/** Number of data chunks for a payload of `length` bytes (k = ceil(L / 64)). */
export function dataChunkCount(length: number): number {
  if (!Number.isInteger(length) || length < 1 || length > PQ_MAX_PAYLOAD_BYTES) {
    throw new RangeError(`erasure payload length ${length} outside 1..${PQ_MAX_PAYLOAD_BYTES}`);
  }
  return Math.ceil(length / PQ_CHUNK_BYTES);
}

/**
 * Lagrange weights for evaluating at `at` the polynomial through points `xs`:
 * w_n = Π_{l≠n} (at - x_l) / (x_n - x_l), subtraction being XOR. Computed
 * once per target, so a chunk costs k^2 + 64k multiplications, not 64k^2.
 */
function weights(xs: readonly number[], at: number): number[] {
  return xs.map((xn, n) => {
    let num = 1;
    let den = 1;
    for (let l = 0; l < xs.length; l++) {
      if (l === n) continue;
      const xl = xs[l] as number;
      num = gfMul(num, at ^ xl);
      den = gfMul(den, xn ^ xl);
    }
    return gfMul(num, gfInv(den));
  });
}

/** Σ_n w_n · rows[n], bytewise: the 64 evaluations of one target. */
function combine(w: readonly number[], rows: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(PQ_CHUNK_BYTES);
  for (let n = 0; n < rows.length; n++) {
    const wn = w[n] as number;
    if (wn === 0) continue;
    const row = rows[n] as Uint8Array;
    const lw = LOG[wn] as number;
    for (let j = 0; j < PQ_CHUNK_BYTES; j++) {
      const b = row[j] as number;
      if (b !== 0) out[j] = (out[j] as number) ^ (EXP[lw + (LOG[b] as number)] as number);
    }
  }
  return out;
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > PQ_MAX_CHUNK_INDEX) {
    throw new RangeError(`chunk index ${index} outside 0..${PQ_MAX_CHUNK_INDEX}`);
  }
}

/** The data chunks of `payload`, zero-padded to 64k bytes. */
function dataRows(payload: Uint8Array): Uint8Array[] {
  const k = dataChunkCount(payload.length);
  const padded = new Uint8Array(k * PQ_CHUNK_BYTES);
  padded.set(payload);
  return Array.from({ length: k }, (_, m) => padded.subarray(m * PQ_CHUNK_BYTES, (m + 1) * PQ_CHUNK_BYTES));
}

/** Chunk `index` (0..254) of `payload`. */
export function encodeChunk(payload: Uint8Array, index: number): Uint8Array {
  return encodeChunks(payload, [index])[0] as Uint8Array;
}

/** Chunks `indices` of `payload`, in the order asked. */
export function encodeChunks(payload: Uint8Array, indices: readonly number[]): Uint8Array[] {
  if (!(payload instanceof Uint8Array)) throw new TypeError('"payload" expected Uint8Array');
  for (const i of indices) checkIndex(i);
  const rows = dataRows(payload);
  const points = rows.map((_, m) => m);
  return indices.map((i) => (i < rows.length ? (rows[i] as Uint8Array).slice() : combine(weights(points, i), rows)));
}

export interface Chunk {
  readonly index: number;
  readonly bytes: Uint8Array;
}

/**
 * Rebuilds a payload of `length` bytes from chunks with distinct indices.
 * Refused with PQ_CHUNK_INVALID (`details.reason`): an index outside
 * 0..254 or not an integer, a chunk not 64 bytes long, a repeated index, or
 * fewer than k chunks. With more than k chunks the k smallest indices are
 * used (erasure-code.md §1: determinism for vectors); the others are not
 * checked, as the message AEAD already authenticated them.
 */
export function decodeChunks(chunks: readonly Chunk[], length: number): Uint8Array {
  const k = dataChunkCount(length);
  if (chunks.length > PQ_MAX_CHUNK_INDEX + 1) {
    fail('PQ_CHUNK_INVALID', 'more chunks than distinct indices exist', { reason: 'too_many' });
  }
  const byIndex = new Map<number, Uint8Array>();
  for (const c of chunks) {
    const i = c.index;
    if (!Number.isInteger(i) || i < 0 || i > PQ_MAX_CHUNK_INDEX) {
      fail('PQ_CHUNK_INVALID', 'chunk index outside 0..254', { reason: 'index' });
    }
    if (!(c.bytes instanceof Uint8Array) || c.bytes.length !== PQ_CHUNK_BYTES) {
      fail('PQ_CHUNK_INVALID', 'chunk is not 64 bytes', { reason: 'length', index: i });
    }
    if (byIndex.has(i)) fail('PQ_CHUNK_INVALID', 'repeated chunk index', { reason: 'duplicate', index: i });
    byIndex.set(i, c.bytes);
  }
  if (byIndex.size < k) {
    fail('PQ_CHUNK_INVALID', 'too few chunks to decode', { reason: 'too_few', have: byIndex.size, need: k });
  }
  const xs = [...byIndex.keys()].sort((a, b) => a - b).slice(0, k);
  const rows = xs.map((x) => byIndex.get(x) as Uint8Array);
  const out = new Uint8Array(k * PQ_CHUNK_BYTES);
  for (let m = 0; m < k; m++) {
    const have = byIndex.get(m);
    // A data chunk m < k held is always among the k smallest indices, and is
    // the payload slice itself; interpolating would give the same bytes.
    out.set(have ?? combine(weights(xs, m), rows), m * PQ_CHUNK_BYTES);
  }
  return out.slice(0, length);
}
