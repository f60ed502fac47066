/**
 * Backend parity: the noble and node backends must give identical bytes for
 * identical inputs on every operation (spec/01-conventions.md §4), and must
 * fail the same quiet way on bad input: `aeadOpen` returns null and
 * `ed25519Verify` returns false, neither ever throws.
 *
 * Property-based (fast-check) with random keys and messages. Inputs are
 * sometimes views into a larger buffer (non-zero byteOffset, junk around
 * them), since the node backend copies bytes into Buffers and JWK strings
 * and must honour the view. The X25519/Ed25519 public-key properties also
 * guard the node backend's JWK import, which passes a placeholder `x` that
 * OpenSSL is trusted to ignore and recompute from `d`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend as noble } from '../src/crypto/noble.ts';
import { nodeBackend as node } from '../src/crypto/node.ts';

const BACKENDS: readonly CryptoBackend[] = [noble, node];

/**
 * Random bytes of a length in [min, max], either as a fresh array or as a
 * view at a random offset inside a larger buffer filled with other bytes.
 */
function bytes(min: number, max: number): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      fc.uint8Array({ minLength: min, maxLength: max }),
      fc.option(fc.tuple(fc.integer({ min: 1, max: 17 }), fc.integer({ min: 0, max: 255 }))),
    )
    .map(([data, view]) => {
      if (view === null) return data;
      const [offset, fill] = view;
      const outer = new Uint8Array(offset + data.length + 9).fill(fill);
      outer.set(data, offset);
      return outer.subarray(offset, offset + data.length);
    });
}

const key32 = bytes(32, 32);

/** X25519 u-coordinates worth hitting on purpose: small-order points and non-canonical encodings. */
const SPECIAL_U: readonly string[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p - 1
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p (= 0)
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // p + 1 (= 1)
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880', // top bit set
  '0900000000000000000000000000000000000000000000000000000000000000', // base point
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];
const specialU = fc.constantFrom(...SPECIAL_U).map((h) => Uint8Array.from(Buffer.from(h, 'hex')));

/** Edge-case secret keys: scalars and seeds at the extremes. */
const specialSecret = fc.constantFrom(
  new Uint8Array(32),
  new Uint8Array(32).fill(0xff),
  Uint8Array.from({ length: 32 }, (_, i) => i),
);

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Calls `fn` on both backends and returns both results as hex, for one equality assertion. */
function both(fn: (b: CryptoBackend) => Uint8Array): [string, string] {
  return [hex(fn(noble)), hex(fn(node))];
}

function flipBit(data: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(data);
  const i = Math.floor(bit / 8) % out.length;
  out[i] = (out[i] as number) ^ (1 << (bit % 8));
  return out;
}

describe('backend parity: noble and node agree byte for byte', () => {
  describe('X25519', () => {
    it('derives the same public key from any private key (guards the node JWK placeholder import)', () => {
      fc.assert(
        fc.property(fc.oneof(key32, specialSecret), (priv) => {
          const [a, b] = both((be) => be.x25519PublicKey(priv));
          expect(b).toBe(a);
          expect(a).toHaveLength(64);
        }),
        { numRuns: 200 },
      );
    });

    it('computes the same shared secret, for honest, arbitrary, small-order and non-canonical public keys', () => {
      const honestPub = key32.map((k) => noble.x25519PublicKey(k));
      fc.assert(
        fc.property(fc.oneof(key32, specialSecret), fc.oneof(honestPub, key32, specialU), (priv, pub) => {
          const [a, b] = both((be) => be.x25519(priv, pub));
          expect(b).toBe(a);
        }),
        { numRuns: 200 },
      );
    });

    it('returns all zeros (never throws) for every small-order point, on both', () => {
      const lowOrder = SPECIAL_U.slice(0, 7).map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
      fc.assert(
        fc.property(key32, (priv) => {
          for (const pub of lowOrder) {
            for (const be of BACKENDS) expect(hex(be.x25519(priv, pub))).toBe('00'.repeat(32));
          }
        }),
        { numRuns: 20 },
      );
    });

    it('agrees on Diffie-Hellman: both parties reach the same secret whichever backend each uses', () => {
      fc.assert(
        fc.property(key32, key32, (a, b) => {
          const viaNoble = noble.x25519(a, node.x25519PublicKey(b));
          const viaNode = node.x25519(b, noble.x25519PublicKey(a));
          expect(hex(viaNode)).toBe(hex(viaNoble));
        }),
        { numRuns: 50 },
      );
    });
  });

  describe('Ed25519', () => {
    it('derives the same public key from any seed (guards the node JWK placeholder import)', () => {
      fc.assert(
        fc.property(fc.oneof(key32, specialSecret), (seed) => {
          const [a, b] = both((be) => be.ed25519PublicKey(seed));
          expect(b).toBe(a);
        }),
        { numRuns: 200 },
      );
    });

    it('makes the same (deterministic) signature, and each verifies the other', () => {
      fc.assert(
        fc.property(fc.oneof(key32, specialSecret), bytes(0, 600), (seed, msg) => {
          const [a, b] = both((be) => be.ed25519Sign(seed, msg));
          expect(b).toBe(a);
          const pub = noble.ed25519PublicKey(seed);
          const sig = node.ed25519Sign(seed, msg);
          for (const be of BACKENDS) expect(be.ed25519Verify(pub, msg, sig)).toBe(true);
        }),
        { numRuns: 100 },
      );
    });

    it('both reject a signature after any bit flip in the signature, message or public key', () => {
      fc.assert(
        fc.property(key32, bytes(1, 200), fc.nat(), fc.constantFrom('sig', 'msg', 'pub'), (seed, msg, bit, where) => {
          const pub = noble.ed25519PublicKey(seed);
          const sig = noble.ed25519Sign(seed, msg);
          const args = {
            sig: where === 'sig' ? flipBit(sig, bit) : sig,
            msg: where === 'msg' ? flipBit(msg, bit) : msg,
            pub: where === 'pub' ? flipBit(pub, bit) : pub,
          };
          for (const be of BACKENDS) expect(be.ed25519Verify(args.pub, args.msg, args.sig)).toBe(false);
        }),
        { numRuns: 150 },
      );
    });

    it('ed25519Verify returns false and never throws for garbage or wrong-length inputs', () => {
      fc.assert(
        fc.property(bytes(0, 70), bytes(0, 100), bytes(0, 130), (pub, msg, sig) => {
          const results = BACKENDS.map((be) => be.ed25519Verify(pub, msg, sig));
          // A random 64-byte string is a valid signature with negligible probability.
          expect(results).toEqual([false, false]);
        }),
        { numRuns: 300 },
      );
      const pub = noble.ed25519PublicKey(new Uint8Array(32));
      const sig = noble.ed25519Sign(new Uint8Array(32), new Uint8Array(0));
      for (const be of BACKENDS) {
        expect(be.ed25519Verify(pub, new Uint8Array(0), sig)).toBe(true);
        expect(be.ed25519Verify(pub.subarray(0, 31), new Uint8Array(0), sig)).toBe(false);
        expect(be.ed25519Verify(pub, new Uint8Array(0), sig.subarray(0, 63))).toBe(false);
        expect(be.ed25519Verify(pub, new Uint8Array(0), Uint8Array.of(...sig, 0))).toBe(false);
        expect(be.ed25519Verify(new Uint8Array(0), new Uint8Array(0), new Uint8Array(0))).toBe(false);
      }
    });
  });

  describe('hashes, HMAC and HKDF', () => {
    it('SHA-256 and SHA-512 agree on any input', () => {
      fc.assert(
        fc.property(bytes(0, 3000), (data) => {
          const [a, b] = both((be) => be.sha256(data));
          expect(b).toBe(a);
          const [c, d] = both((be) => be.sha512(data));
          expect(d).toBe(c);
          expect([a.length, c.length]).toEqual([64, 128]);
        }),
      );
    });

    it('HMAC-SHA256 agrees for keys of any length (shorter and longer than the block) and any message', () => {
      fc.assert(
        fc.property(bytes(0, 200), bytes(0, 2000), (key, data) => {
          const [a, b] = both((be) => be.hmacSha256(key, data));
          expect(b).toBe(a);
        }),
      );
    });

    it('HKDF-SHA256 agrees for every output length 0..255*32, any salt (including empty) and info', () => {
      fc.assert(
        fc.property(bytes(0, 100), bytes(0, 80), bytes(0, 80), fc.integer({ min: 0, max: 255 * 32 }), (ikm, salt, info, length) => {
          const [a, b] = both((be) => be.hkdfSha256(ikm, salt, info, length));
          expect(b).toBe(a);
          expect(a.length).toBe(2 * length);
        }),
        { numRuns: 150 },
      );
      // The ends of the range, on purpose.
      for (const length of [0, 1, 31, 32, 33, 255 * 32]) {
        const [a, b] = both((be) => be.hkdfSha256(new Uint8Array(32).fill(7), new Uint8Array(0), new Uint8Array(0), length));
        expect(b).toBe(a);
      }
    });

    it('HKDF-SHA256 refuses lengths over 255*32 on both', () => {
      for (const be of BACKENDS) {
        expect(() => be.hkdfSha256(new Uint8Array(32), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1)).toThrow();
      }
    });
  });

  describe('ChaCha20-Poly1305', () => {
    it('seals to the same bytes with random additional data, and each opens the other', () => {
      fc.assert(
        fc.property(key32, bytes(12, 12), bytes(0, 2000), bytes(0, 300), (key, nonce, pt, ad) => {
          const [a, b] = both((be) => be.aeadSeal(key, nonce, pt, ad));
          expect(b).toBe(a);
          expect(a.length).toBe(2 * (pt.length + 16));
          const sealed = noble.aeadSeal(key, nonce, pt, ad);
          for (const be of BACKENDS) {
            const opened = be.aeadOpen(key, nonce, sealed, ad);
            expect(opened && hex(opened)).toBe(hex(pt));
          }
        }),
      );
    });

    it('opens to null (never throws) after any bit flip, or with a wrong key, nonce or additional data', () => {
      fc.assert(
        fc.property(
          key32,
          bytes(12, 12),
          bytes(0, 300),
          bytes(0, 64),
          fc.nat(),
          fc.constantFrom('sealed', 'key', 'nonce', 'ad'),
          (key, nonce, pt, ad, bit, what) => {
            const sealed = noble.aeadSeal(key, nonce, pt, ad);
            // Flipping a bit of empty AD is impossible: append a byte instead.
            const wrongAd = ad.length === 0 ? Uint8Array.of(0) : flipBit(ad, bit);
            const args =
              what === 'sealed'
                ? [key, nonce, flipBit(sealed, bit), ad]
                : what === 'key'
                  ? [flipBit(key, bit), nonce, sealed, ad]
                  : what === 'nonce'
                    ? [key, flipBit(nonce, bit), sealed, ad]
                    : [key, nonce, sealed, wrongAd];
            for (const be of BACKENDS) {
              expect(be.aeadOpen(args[0] as Uint8Array, args[1] as Uint8Array, args[2] as Uint8Array, args[3] as Uint8Array)).toBeNull();
            }
          },
        ),
        { numRuns: 300 },
      );
    });

    it('opens to null (never throws) for truncated, extended or random sealed bytes', () => {
      fc.assert(
        fc.property(key32, bytes(12, 12), bytes(0, 100), bytes(0, 40), fc.nat(), (key, nonce, pt, junk, cut) => {
          const sealed = noble.aeadSeal(key, nonce, pt, new Uint8Array(0));
          const variants = [sealed.subarray(0, cut % sealed.length), Uint8Array.of(...sealed, 0), junk];
          for (const be of BACKENDS) {
            for (const v of variants) expect(be.aeadOpen(key, nonce, v, new Uint8Array(0))).toBeNull();
          }
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('ML-KEM-768', () => {
    it('agrees on key generation, encapsulation and decapsulation (incl. implicit rejection of a random ciphertext)', () => {
      fc.assert(
        fc.property(bytes(64, 64), bytes(32, 32), bytes(1088, 1088), (seed, m, junkCiphertext) => {
          const [ka, kb] = [noble.mlkemKeygen(seed), node.mlkemKeygen(seed)];
          expect([hex(kb.publicKey), hex(kb.secretKey)]).toEqual([hex(ka.publicKey), hex(ka.secretKey)]);
          const [ea, eb] = [noble.mlkemEncapsulate(ka.publicKey, m), node.mlkemEncapsulate(ka.publicKey, m)];
          expect([hex(eb.ciphertext), hex(eb.sharedSecret)]).toEqual([hex(ea.ciphertext), hex(ea.sharedSecret)]);
          const [da, db] = both((be) => be.mlkemDecapsulate(ea.ciphertext, ka.secretKey));
          expect([da, db]).toEqual([hex(ea.sharedSecret), hex(ea.sharedSecret)]);
          const [ra, rb] = both((be) => be.mlkemDecapsulate(junkCiphertext, ka.secretKey));
          expect(rb).toBe(ra);
          expect(ra).not.toBe(hex(ea.sharedSecret));
        }),
        { numRuns: 25 },
      );
    });
  });

  describe('randomBytes', () => {
    it('returns the asked length, fresh on every call, on both', () => {
      for (const be of BACKENDS) {
        for (const n of [0, 1, 32, 1000]) expect(be.randomBytes(n)).toHaveLength(n);
        expect(hex(be.randomBytes(32))).not.toBe(hex(be.randomBytes(32)));
      }
    });
  });
});
