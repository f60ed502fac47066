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
