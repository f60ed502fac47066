import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { fromHex } from '@parley/core';

/**
 * Signature malleation for the invalid cases: Ed25519 signatures whose S
 * has L added are accepted by lenient verifiers and must be refused by
 * Parley's strict verification (spec/01-conventions.md §3).
 */

/** The order of the Ed25519 base point. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function toBigLE(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] as number);
  return n;
}

function fromBigLE(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let n = value;
  for (let i = 0; i < length; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** R || (S + L): the same signature with a non-canonical scalar. */
export function malleateSignature(signature: Uint8Array): Uint8Array {
  const out = signature.slice();
  out.set(fromBigLE(toBigLE(signature.subarray(32)) + L, 32), 32);
  return out;
}

// ---- Torsion cases (spec/01-conventions.md §3.2, D4) ------------------------
//
// Built with noble's point API: a generator tool, not core code. Every scalar
// is derived from a label (SHA-512 of "parley/test-vectors/v1/torsion/" +
// label, reduced mod L), so the cases are reproducible without a random draw.

const Point = ed25519.Point;

/** A point of order 8 (its encoding is in spec/01 §3.2's list of small-order keys). */
export const ORDER_8_POINT = Point.fromBytes(fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'));

function labelScalar(label: string): bigint {
  return (toBigLE(sha512(new TextEncoder().encode(`parley/test-vectors/v1/torsion/${label}`))) % (L - 1n)) + 1n;
}

/** The secret scalar a of an Ed25519 seed (RFC 8032 §5.1.5), reduced mod L. */
export function secretScalar(seed: Uint8Array): bigint {
  return ed25519.utils.getExtendedPublicKey(seed).scalar % L;
}

/** A = [a]B + T: canonical, not of small order, not torsion-free (T of order 8). */
export function torsionedKey(label: string): { a: bigint; publicKey: Uint8Array } {
  const a = labelScalar(`${label}/a`);
  return { a, publicKey: Point.BASE.multiply(a).add(ORDER_8_POINT).toBytes() };
}

/** k = SHA-512(R || A || M) mod L. */
function challenge(R: Uint8Array, A: Uint8Array, message: Uint8Array): bigint {
  return toBigLE(sha512(new Uint8Array([...R, ...A, ...message]))) % L;
}

/**
 * A signature R || S with S = r + k*a (the honest equation) under the key
 * bytes A of secret scalar a, where R = [r]B, plus T when `rTorsion` is set.
 * The nonce r is the first candidate from the label for which `accept(k)`
 * holds (k the challenge), so a case can ask for k = 0 mod 8 or not.
 */
export function signWithTorsion(
  label: string,
  a: bigint,
  A: Uint8Array,
  message: Uint8Array,
  options: { rTorsion: boolean; accept: (k: bigint) => boolean },
): Uint8Array {
  for (let i = 0; i < 1000; i++) {
    const r = labelScalar(`${label}/r${i}`);
    let R = Point.BASE.multiply(r);
    if (options.rTorsion) R = R.add(ORDER_8_POINT);
    const Rb = R.toBytes();
    const k = challenge(Rb, A, message);
    if (!options.accept(k)) continue;
    return new Uint8Array([...Rb, ...fromBigLE((r + k * a) % L, 32)]);
  }
  throw new Error(`${label}: no nonce found`);
}
