/**
 * A two-key ChaCha20-Poly1305 ciphertext: one ciphertext and tag that
 * authenticate under two (key, nonce) pairs, built as Len, Grubbs and
 * Ristenpart build multi-key collisions ("Partitioning Oracle Attacks",
 * USENIX Security 2021, §3): the Poly1305 tag is a polynomial in the
 * ciphertext blocks over GF(2^130 - 5) whose coefficients are each key's r,
 * so two ciphertext blocks left free make "same tag under both keys" one
 * linear equation with a one-parameter family of solutions.
 *
 * RFC 8439: with (r, s) from ChaCha20 block 0 (r clamped) and the MAC input
 * m_1..m_q = AD || pad16 || C || pad16 || le64(|AD|) || le64(|C|) in 16-byte
 * blocks read little-endian plus 2^128, tag = (Σ m_j r^(q-j+1) mod p) + s
 * mod 2^128. With acc_i the polynomial under key i, both tags are equal
 * when acc_1 - acc_2 = s_2 - s_1 as integers; choosing one free block y at
 * random and solving for the other, x, succeeds when x is a valid block value
 * (2^128 <= x < 2^129, probability 1/4) and no wrap-around mod p happens
 * (probability about 3/4): a handful of tries.
 *
 * Test code only: it reads ChaCha20 directly (noble) to get the Poly1305
 * keys, which core's AEAD interface rightly does not expose.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';

const P = (1n << 130n) - 5n;
const TWO128 = 1n << 128n;
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;

function le(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

function le16(n: bigint): Uint8Array {
  const out = new Uint8Array(16);
  let v = n;
  for (let i = 0; i < 16; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function le64(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

const mod = (a: bigint) => ((a % P) + P) % P;

function pow(base: bigint, e: bigint): bigint {
  let r = 1n;
  let b = mod(base);
  let x = e;
  while (x > 0n) {
    if (x & 1n) r = (r * b) % P;
    b = (b * b) % P;
    x >>= 1n;
  }
  return r;
}

function polyKey(key: Uint8Array, nonce: Uint8Array): { r: bigint; s: bigint } {
  const block = chacha20(key, nonce, new Uint8Array(32));
  return { r: le(block.subarray(0, 16)) & CLAMP, s: le(block.subarray(16, 32)) };
}

function padded16(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 16) * 16);
  out.set(b);
  return out;
}

export interface KeyNonce {
  readonly key: Uint8Array;
  readonly nonce: Uint8Array;
}

/**
 * Fills ciphertext blocks `free[0]` and `free[1]` (16-byte block indices of
 * `ciphertext`, whose length is a multiple of 16) so that the result
 * authenticates under both `a` and `b` with associated data `ad`; returns
 * ciphertext || tag. `random(16)` draws the free parameter.
 */
export function twoKeyCiphertext(
  a: KeyNonce,
  b: KeyNonce,
  ad: Uint8Array,
  ciphertext: Uint8Array,
  free: readonly [number, number],
  random: (n: number) => Uint8Array,
): Uint8Array {
  if (ciphertext.length % 16 !== 0) throw new RangeError('ciphertext length must be a multiple of 16');
  const c = new Uint8Array(ciphertext);
  const adBlocks = padded16(ad).length / 16;
  const mac = (ct: Uint8Array) => {
    const data = new Uint8Array([...padded16(ad), ...ct, ...le64(ad.length), ...le64(ct.length)]);
    return Array.from({ length: data.length / 16 }, (_, j) => le(data.subarray(16 * j, 16 * j + 16)) + TWO128);
  };
  const ka = polyKey(a.key, a.nonce);
  const kb = polyKey(b.key, b.nonce);
  const blocks = mac(c);
  const q = blocks.length;
  const [f, g] = [adBlocks + free[0], adBlocks + free[1]];
  // acc = Σ m_j r^(q - j) for 0-based j; the free blocks contribute x r^(q-f) and y r^(q-g).
  const accWithout = (r: bigint) => blocks.reduce((acc, m, j) => (j === f || j === g ? acc : mod(acc + m * pow(r, BigInt(q - j)))), 0n);
  const A1 = accWithout(ka.r);
  const A2 = accWithout(kb.r);
  const alpha = mod(pow(ka.r, BigInt(q - f)) - pow(kb.r, BigInt(q - f)));
  const beta = mod(pow(ka.r, BigInt(q - g)) - pow(kb.r, BigInt(q - g)));
  const d = kb.s - ka.s; // want acc1 - acc2 = d exactly
  const alphaInv = pow(alpha, P - 2n);
  for (let attempt = 0; attempt < 200; attempt++) {
    const y = TWO128 + le(random(16));
    const x = mod((d - (A1 - A2) - y * beta) * alphaInv);
    if (x < TWO128 || x >= 2n * TWO128) continue;
    const acc1 = mod(A1 + x * pow(ka.r, BigInt(q - f)) + y * pow(ka.r, BigInt(q - g)));
    const acc2 = mod(A2 + x * pow(kb.r, BigInt(q - f)) + y * pow(kb.r, BigInt(q - g)));
    if (acc1 - acc2 !== d) continue;
    c.set(le16(x - TWO128), 16 * free[0]);
    c.set(le16(y - TWO128), 16 * free[1]);
    const tag = le16((acc1 + ka.s) % TWO128);
    return new Uint8Array([...c, ...tag]);
  }
  throw new Error('no two-key collision found in 200 attempts');
}
