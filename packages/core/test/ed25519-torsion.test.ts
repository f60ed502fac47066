/**
 * Ed25519 public keys with a small torsion component (issue 11, finding 7;
 * spec/01-conventions.md §3.2).
 *
 * A = [a]B + T, with T a point of order 2, 4 or 8, is canonical and not of
 * small order, so the old key check let it through. Signatures made with the
 * honest equation S = r + k*a then verify under the cofactored equation
 * (noble) for every message, and under the cofactorless one (OpenSSL) only
 * when [k]T = 0: the backends disagreed on most of them. Both must now refuse
 * every key that is not torsion-free ([L]A != identity), whatever the message.
 *
 * The attack keys and signatures are built here with noble's point API (a
 * test's own tool, not core code).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { KeyCheckCache, isRefusedEd25519Key, isTorsionFreeEd25519 } from '../src/crypto/ed25519-keys.ts';
import { nobleBackend as noble } from '../src/crypto/noble.ts';
import { nodeBackend as node } from '../src/crypto/node.ts';

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
const BACKENDS: readonly CryptoBackend[] = [noble, node];

function leInt(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] as number);
  return n;
}

function le32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** A deterministic scalar in [1, L) from a label. */
function scalar(label: string): bigint {
  return (leInt(sha512(new TextEncoder().encode(label))) % (L - 1n)) + 1n;
}

/** The torsion points: one of each order 2, 4 and 8 (decoded from their encodings). */
const TORSION: readonly { order: number; point: ReturnType<typeof Point.fromBytes> }[] = [
  { order: 2, point: Point.fromBytes(fromHex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')) },
  { order: 4, point: Point.fromBytes(fromHex('0000000000000000000000000000000000000000000000000000000000000080')) },
  { order: 8, point: Point.fromBytes(fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05')) },
  { order: 8, point: Point.fromBytes(fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')) },
];

/** Signs `msg` under the (possibly torsioned) key `A` with the honest equation S = r + k*a. */
function honestSign(a: bigint, A: Uint8Array, msg: Uint8Array, label: string): Uint8Array {
  const r = scalar(`r/${label}`);
  const R = Point.BASE.multiply(r).toBytes();
  const k = leInt(sha512(new Uint8Array([...R, ...A, ...msg]))) % L;
  return new Uint8Array([...R, ...le32((r + k * a) % L)]);
}

describe('Ed25519 keys with a small torsion component', () => {
  it('both backends refuse every honest-equation signature under a torsioned key (order 2, 4 and 8 components)', () => {
    for (const [i, { order, point }] of TORSION.entries()) {
      const a = scalar(`a/${i}`);
      const A = Point.BASE.multiply(a).add(point).toBytes();
      expect(Point.fromBytes(A).isTorsionFree(), `order ${order}`).toBe(false);
      expect(Point.fromBytes(A).isSmallOrder(), `order ${order}`).toBe(false);
      expect(isTorsionFreeEd25519(A)).toBe(false);
      expect(isRefusedEd25519Key(A)).toBe(true);
      const accepted: Record<string, number> = { noble: 0, node: 0 };
      for (let m = 0; m < 24; m++) {
        const msg = new TextEncoder().encode(`message ${m}`);
        const sig = honestSign(a, A, msg, `${i}/${m}`);
        for (const b of BACKENDS) if (b.ed25519Verify(A, msg, sig)) accepted[b.name] = (accepted[b.name] ?? 0) + 1;
      }
      expect(accepted, `torsion of order ${order}`).toEqual({ noble: 0, node: 0 });
    }
  });

  it('refuses the torsioned key even when [k]T = 0, where the cofactorless equation alone would accept', () => {
    // Search a message whose challenge k is a multiple of 8: OpenSSL's
    // equation then holds too, so only the key check stands in the way.
    const a = scalar('a/k0');
    const A = Point.BASE.multiply(a).add(TORSION[2]!.point).toBytes();
    let found = 0;
    for (let m = 0; m < 400 && found < 2; m++) {
      const msg = new TextEncoder().encode(`k mod 8 search ${m}`);
      const sig = honestSign(a, A, msg, `k0/${m}`);
      const k = leInt(sha512(new Uint8Array([...sig.subarray(0, 32), ...A, ...msg]))) % L;
      if (k % 8n !== 0n) continue;
      found++;
      for (const b of BACKENDS) expect(b.ed25519Verify(A, msg, sig), b.name).toBe(false);
    }
    expect(found).toBe(2);
  });

  it('still accepts honest keys: torsion-free, and every signature under them verifies on both', () => {
    for (let i = 0; i < 16; i++) {
      const seed = sha512(new TextEncoder().encode(`seed ${i}`)).subarray(0, 32);
      const A = noble.ed25519PublicKey(seed);
      expect(isTorsionFreeEd25519(A)).toBe(true);
      expect(isRefusedEd25519Key(A)).toBe(false);
      const msg = new TextEncoder().encode(`honest ${i}`);
      const sig = noble.ed25519Sign(seed, msg);
      for (const b of BACKENDS) expect(b.ed25519Verify(A, msg, sig), b.name).toBe(true);
    }
  });

  it('refuses points off the curve and keeps refusing small-order and non-canonical keys', () => {
    // y = 2 has no x on Ed25519 (2^2 - 1 over 1 + d*4 is not a square).
    const offCurve = le32(2n);
    expect(() => Point.fromBytes(offCurve)).toThrow();
    expect(isRefusedEd25519Key(offCurve)).toBe(true);
    for (const small of ['0100000000000000000000000000000000000000000000000000000000000000', `ee${'ff'.repeat(30)}7f`]) {
      expect(isRefusedEd25519Key(fromHex(small))).toBe(true);
    }
  });

  it('under torsion-free keys the backends differ exactly when R has a small-order component and the cofactored equation holds (D4)', () => {
    const variants: { name: string; sig: Uint8Array; A: Uint8Array; msg: Uint8Array }[] = [];
    for (let i = 0; i < 6; i++) {
      const a = scalar(`d4/a${i}`);
      const A = Point.BASE.multiply(a).toBytes();
      const msg = new TextEncoder().encode(`d4 message ${i}`);
      const r = scalar(`d4/r${i}`);
      for (const [j, T] of [null, ...TORSION.map((t) => t.point)].entries()) {
        let R = Point.BASE.multiply(r);
        if (T) R = R.add(T);
        const Rb = R.toBytes();
        const k = leInt(sha512(new Uint8Array([...Rb, ...A, ...msg]))) % L;
        const S = le32((r + k * a) % L);
        // The signer's own signature (S matches the modified R), and the same R with the honest S (does not).
        variants.push({ name: `key ${i}, R + T${j}, signer's S`, sig: new Uint8Array([...Rb, ...S]), A, msg });
        const honest = honestSign(a, A, msg, `d4/${i}`);
        variants.push({ name: `key ${i}, R + T${j}, honest S`, sig: new Uint8Array([...Rb, ...honest.subarray(32)]), A, msg });
        // R's sign bit flipped (another point, or a non-canonical encoding), and S + L.
        const flipped = new Uint8Array([...Rb, ...S]);
        flipped[31] = (flipped[31] as number) ^ 0x80;
        variants.push({ name: `key ${i}, R + T${j}, sign bit flipped`, sig: flipped, A, msg });
        variants.push({ name: `key ${i}, R + T${j}, S + L`, sig: new Uint8Array([...Rb, ...le32(leInt(S) + L)]), A, msg });
      }
    }
    let differ = 0;
    for (const v of variants) {
      const n = noble.ed25519Verify(v.A, v.msg, v.sig);
      const o = node.ed25519Verify(v.A, v.msg, v.sig);
      let rTorsionFree = true;
      try {
        rTorsionFree = Point.fromBytes(v.sig.subarray(0, 32)).isTorsionFree();
      } catch {
        rTorsionFree = true; // R does not decode: both must refuse
      }
      if (n !== o) {
        differ++;
        // The only difference allowed: noble accepts, OpenSSL refuses, R carries torsion.
        expect({ name: v.name, noble: n, node: o, rTorsionFree }).toEqual({ name: v.name, noble: true, node: false, rTorsionFree: false });
      }
    }
    // The signer's signatures with R + T for each of the four torsion points, for each key: all differ.
    expect(differ).toBe(6 * TORSION.length);
  });

  it('a key given as something other than a Uint8Array is refused without poisoning the answer for the real key', () => {
    const seed = sha512(new TextEncoder().encode('type confusion')).subarray(0, 32);
    const A = noble.ed25519PublicKey(seed);
    const msg = new TextEncoder().encode('m');
    const sig = noble.ed25519Sign(seed, msg);
    expect(isRefusedEd25519Key(Array.from(A) as unknown as Uint8Array)).toBe(true);
    for (const b of BACKENDS) {
      expect(b.ed25519Verify(Array.from(A) as unknown as Uint8Array, msg, sig), b.name).toBe(false);
      expect(b.ed25519Verify(A, msg, sig), b.name).toBe(true);
    }
    expect(isRefusedEd25519Key(A)).toBe(false);
  });

  it('the cache of checked keys stays bounded, evicts the least recently used, and never changes an answer', () => {
    const cache = new KeyCheckCache(4);
    const calls: string[] = [];
    const check = (k: Uint8Array) => {
      calls.push(Buffer.from(k).toString('hex').slice(0, 2));
      return isTorsionFreeEd25519(k);
    };
    const base = Point.BASE.multiply(scalar('cache'));
    const torsioned = base.add(TORSION[3]!.point).toBytes();
    const honest = [1, 2, 3, 4, 5].map((i) => base.add(Point.BASE.multiply(BigInt(i))).toBytes());
    expect(cache.get(torsioned, check)).toBe(false);
    for (const k of honest.slice(0, 3)) expect(cache.get(k, check)).toBe(true);
    expect(cache.get(torsioned, check)).toBe(false); // a hit: moves to the back
    expect(calls.length).toBe(4);
    expect(cache.get(honest[3]!, check)).toBe(true); // evicts honest[0], the least recently used
    expect(cache.size).toBe(4);
    expect(cache.get(torsioned, check)).toBe(false);
    expect(calls.length).toBe(5);
    expect(cache.get(honest[0]!, check)).toBe(true); // checked again after eviction
    expect(calls.length).toBe(6);
    expect(cache.size).toBe(4);
    // The module's own cache answers the same way on repeated calls.
    expect([isRefusedEd25519Key(torsioned), isRefusedEd25519Key(torsioned)]).toEqual([true, true]);
    expect([isRefusedEd25519Key(honest[4]!), isRefusedEd25519Key(honest[4]!)]).toEqual([false, false]);
  });
});
