/**
 * The PQ chunk erasure code of spec/design/erasure-code.md §1, written again
 * for the verifier: plain shift-and-add GF(2^8) multiplication (no tables, so
 * a table error in the reference cannot be shared) and Lagrange interpolation.
 */
import { ProtocolError } from './errors.mjs';

export function mul(a0, b0) {
  let r = 0;
  let a = a0;
  for (let b = b0; b; b >>= 1) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11d;
  }
  return r;
}

/** a^254 = a^-1 for a != 0. */
function inv(a) {
  let r = 1;
  for (let i = 0; i < 254; i++) r = mul(r, a);
  return r;
}

function lagrange(xs, ys, at) {
  let sum = 0;
  for (let n = 0; n < xs.length; n++) {
    let num = 1;
    let den = 1;
    for (let l = 0; l < xs.length; l++) {
      if (l === n) continue;
      num = mul(num, at ^ xs[l]);
      den = mul(den, xs[n] ^ xs[l]);
    }
    sum ^= mul(ys[n], mul(num, inv(den)));
  }
  return sum;
}

/** Chunks 0..254 of `payload`. */
export function encodeAll(payload) {
  const k = Math.ceil(payload.length / 64);
  const p = new Uint8Array(64 * k);
  p.set(payload);
  const points = Array.from({ length: k }, (_, m) => m);
  const chunks = [];
  for (let i = 0; i < 255; i++) {
    if (i < k) {
      chunks.push(p.slice(64 * i, 64 * i + 64));
      continue;
    }
    const c = new Uint8Array(64);
    for (let j = 0; j < 64; j++)
      c[j] = lagrange(
        points,
        points.map((m) => p[64 * m + j]),
        i,
      );
    chunks.push(c);
  }
  return chunks;
}

/** decode(chunks, L) of erasure-code.md §2, with the refusals of formats-v2 §13.1 (PQ_CHUNK_INVALID). */
export function decode(chunks, length) {
  const k = Math.ceil(length / 64);
  const seen = new Map();
  for (const { index, bytes } of chunks) {
    if (!Number.isInteger(index) || index < 0 || index > 254) throw new ProtocolError('PQ_CHUNK_INVALID', 'index');
    if (bytes.length !== 64) throw new ProtocolError('PQ_CHUNK_INVALID', 'length');
    if (seen.has(index)) throw new ProtocolError('PQ_CHUNK_INVALID', 'duplicate');
    seen.set(index, bytes);
  }
  if (seen.size < k) throw new ProtocolError('PQ_CHUNK_INVALID', 'too_few');
  const xs = [...seen.keys()].sort((a, b) => a - b).slice(0, k);
  const out = new Uint8Array(64 * k);
  for (let m = 0; m < k; m++) {
    for (let j = 0; j < 64; j++)
      out[64 * m + j] = lagrange(
        xs,
        xs.map((x) => seen.get(x)[j]),
        m,
      );
  }
  return out.slice(0, length);
}
