/**
 * Project Wycheproof vectors against both crypto backends (noble, node).
 * spec/01-conventions.md §3-4: the primitives, and the rule that both
 * backends give identical results. spec/02-keys.md §2: which X25519 public
 * keys we refuse and when a DH output is rejected.
 *
 * One loop per vector file, written as a function of the backend. Each loop
 * keeps a tally (cases run per expected result, cases skipped as not
 * applicable, failures by tcId) and the test asserts the whole tally against
 * the counts of the pinned vector commit (dac1dd47, see
 * test-vectors/wycheproof/NOTICE), so a loader or loop bug that runs fewer
 * cases fails instead of passing vacuously. The last block runs some loops
 * against deliberately broken backends to show that they can fail.
 *
 * Not used by core, so not run: xchacha20_poly1305_test.json,
 * aes_gcm_test.json.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, constantTimeEqual } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { checkX25519PublicKey, dh } from '../src/crypto/x25519.ts';
import { isParleyError } from '../src/errors.ts';
import { Tally, WYCHEPROOF_DIR, type WycheproofFile, hexField, loadWycheproof, noticeDigests, numberField } from './support/wycheproof.ts';

const BACKENDS: readonly CryptoBackend[] = [nobleBackend, nodeBackend];

/** Files are parsed once per test worker, on first use. */
const cache = new Map<string, WycheproofFile>();
function load(name: string, algorithm: string, groupType: string): WycheproofFile {
  let file = cache.get(name);
  if (!file) {
    file = loadWycheproof(name, { algorithm, groupType });
    cache.set(name, file);
  }
  return file;
}

const P25519 = 2n ** 255n - 19n;

/**
 * RFC 7748 §5 canonical encoding, computed here independently of core's
 * `isCanonicalX25519`: top bit clear and little-endian value below p.
 */
function isCanonicalEncoding(u: Uint8Array): boolean {
  let v = 0n;
  for (let i = u.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(u[i] as number);
  return v < P25519;
}

function isAllZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

/** The ParleyError code `fn` throws, or null when it returns. Other exceptions propagate. */
function parleyCode(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (isParleyError(e)) return e.code;
    throw e;
  }
}

function throws(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch {
    return true;
  }
}

/** x25519_test.json: raw output on every case; `dh()` refuses exactly the all-zero ones. */
function runX25519(backend: CryptoBackend): { tally: Tally; weak: number } {
  const tally = new Tally();
  let weak = 0;
  for (const { test } of load('x25519_test.json', 'XDH', 'XdhComp').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const priv = hexField(test, 'private');
      const pub = hexField(test, 'public');
      const shared = hexField(test, 'shared');
      // RFC 7748 §5: non-canonical and low-order inputs still have a defined
      // output; the backend must compute it (zero included).
      tally.check(bytesEqual(backend.x25519(priv, pub), shared), test, 'raw output differs');
      let out: Uint8Array | undefined;
      const code = parleyCode(() => {
        out = dh(backend, priv, pub);
      });
      if (isAllZero(shared)) {
        weak++;
        tally.check(code === 'WEAK_KEY', test, `dh() gave ${code ?? 'a result'}, expected WEAK_KEY`);
      } else {
        tally.check(code === null && out !== undefined && bytesEqual(out, shared), test, `dh() gave ${code ?? 'a wrong result'}`);
      }
    });
  }
  return { tally, weak };
}

/** ed25519_test.json: valid signatures verify, invalid ones do not; never a throw. */
function runEd25519(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { group, test } of load('ed25519_test.json', 'EDDSA', 'EddsaVerify').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const pk = hexField(group.publicKey as Record<string, unknown>, 'pk');
      const ok = backend.ed25519Verify(pk, hexField(test, 'msg'), hexField(test, 'sig'));
      tally.check(ok === (test.result === 'valid'), test, ok ? 'accepted an invalid signature' : 'rejected a valid signature');
    });
  }
  return tally;
}

/** chacha20_poly1305_test.json: seal/open on 96-bit-nonce cases; invalid ones open to null. */
function runChaCha20Poly1305(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { group, test } of load('chacha20_poly1305_test.json', 'CHACHA20-POLY1305', 'AeadTest').entries) {
    // Core only ever uses RFC 8439's 96-bit nonce and 128-bit tag; the other
    // sizes (all "InvalidNonceSize") are outside the backend contract.
    if (numberField(group, 'ivSize') !== 96 || numberField(group, 'tagSize') !== 128 || numberField(group, 'keySize') !== 256) {
      tally.skip();
      continue;
    }
    tally.count(test);
    tally.guard(test, () => {
      const key = hexField(test, 'key');
      const nonce = hexField(test, 'iv');
      const ad = hexField(test, 'aad');
      const msg = hexField(test, 'msg');
      const sealed = concatBytes(hexField(test, 'ct'), hexField(test, 'tag'));
      const opened = backend.aeadOpen(key, nonce, sealed, ad);
      if (test.result === 'valid') {
        tally.check(bytesEqual(backend.aeadSeal(key, nonce, msg, ad), sealed), test, 'seal output differs');
        tally.check(opened !== null && bytesEqual(opened, msg), test, 'open did not return the message');
      } else {
        tally.check(opened === null, test, 'opened an invalid ciphertext');
      }
    });
  }
  return tally;
}

/** hkdf_sha256_test.json: output on valid cases; lengths over 255 * 32 throw. */
function runHkdf(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { test } of load('hkdf_sha256_test.json', 'HKDF-SHA-256', 'HkdfTest').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const derive = () =>
        backend.hkdfSha256(hexField(test, 'ikm'), hexField(test, 'salt'), hexField(test, 'info'), numberField(test, 'size'));
      if (test.result === 'valid') tally.check(bytesEqual(derive(), hexField(test, 'okm')), test, 'output differs');
      else tally.check(throws(derive), test, 'derived an output of an invalid length');
    });
  }
  return tally;
}

/** hmac_sha256_test.json: full tags compare whole, truncated tags by prefix. */
function runHmac(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { group, test } of load('hmac_sha256_test.json', 'HMACSHA256', 'MacTest').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const tagBytes = numberField(group, 'tagSize') / 8;
      const mac = backend.hmacSha256(hexField(test, 'key'), hexField(test, 'msg'));
      tally.check(mac.length === 32, test, `MAC is ${mac.length} bytes`);
      const matches = constantTimeEqual(mac.subarray(0, tagBytes), hexField(test, 'tag'));
      tally.check(matches === (test.result === 'valid'), test, matches ? 'an invalid tag matched' : 'a valid tag did not match');
    });
  }
  return tally;
}

/** mlkem_768_keygen_seed_test.json: (ek, dk) from the 64-byte seed d || z. */
function runMlkemKeygen(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { test } of load('mlkem_768_keygen_seed_test.json', 'ML-KEM', 'MLKEMKeyGen').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const { publicKey, secretKey } = backend.mlkemKeygen(hexField(test, 'seed'));
      tally.check(bytesEqual(publicKey, hexField(test, 'ek')), test, 'encapsulation key differs');
      tally.check(bytesEqual(secretKey, hexField(test, 'dk')), test, 'decapsulation key differs');
    });
  }
  return tally;
}

/** mlkem_768_encaps_test.json: (c, K) from ek and the randomness m; bad keys throw. */
function runMlkemEncaps(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { test } of load('mlkem_768_encaps_test.json', 'ML-KEM', 'MLKEMEncapsTest').entries) {
    tally.count(test);
    tally.guard(test, () => {
      const encapsulate = () => backend.mlkemEncapsulate(hexField(test, 'ek'), hexField(test, 'm'));
      if (test.result === 'valid') {
        const { ciphertext, sharedSecret } = encapsulate();
        tally.check(bytesEqual(ciphertext, hexField(test, 'c')), test, 'ciphertext differs');
        tally.check(bytesEqual(sharedSecret, hexField(test, 'K')), test, 'shared secret differs');
      } else {
        // FIPS 203 §7.2: wrong length, or a coefficient not reduced mod q.
        tally.check(throws(encapsulate), test, 'encapsulated to an invalid key');
      }
    });
  }
  return tally;
}

/** mlkem_768_test.json: K from the seed's key and c, incl. implicit rejection; bad sizes throw. */
function runMlkemDecaps(backend: CryptoBackend): Tally {
  const tally = new Tally();
  for (const { test } of load('mlkem_768_test.json', 'ML-KEM', 'MLKEMTest').entries) {
    tally.count(test);
    tally.guard(test, () => {
      // The case's `seed` is the private key (d || z); `ek` is given only
      // when the seed is well formed.
      const run = () => {
        const { publicKey, secretKey } = backend.mlkemKeygen(hexField(test, 'seed'));
        if (test.ek !== undefined) tally.check(bytesEqual(publicKey, hexField(test, 'ek')), test, 'encapsulation key differs');
        return backend.mlkemDecapsulate(hexField(test, 'c'), secretKey);
      };
      if (test.result === 'valid') {
        // Includes random and bit-flipped ciphertexts: their K is the
        // implicit-rejection secret, which must match too.
        tally.check(bytesEqual(run(), hexField(test, 'K')), test, 'shared secret differs');
      } else {
        tally.check(throws(run), test, 'decapsulated with an invalid key or ciphertext size');
      }
    });
  }
  return tally;
}

/** The tally's counts, for one equality assertion. */
function counts(t: Tally): { ran: Record<string, number>; skipped: number } {
  return { ran: t.ran, skipped: t.skipped };
}

describe('Wycheproof', () => {
  it('the vendored files are exactly the ones the NOTICE lists, byte for byte (upstream copies, with their license)', () => {
    const listed = noticeDigests();
    const present = readdirSync(WYCHEPROOF_DIR).filter((f) => f !== 'NOTICE');
    expect([...listed.keys()].sort()).toEqual(present.sort());
    expect(present).toContain('LICENSE');
    for (const [file, digest] of listed) {
      expect(
        createHash('sha256')
          .update(readFileSync(join(WYCHEPROOF_DIR, file)))
          .digest('hex'),
        file,
      ).toBe(digest);
    }
  });

  for (const backend of BACKENDS) {
    describe(`${backend.name} backend`, () => {
      it('X25519: raw output matches every case; dh() throws WEAK_KEY exactly on an all-zero output', () => {
        const { tally, weak } = runX25519(backend);
        expect(tally.failures).toEqual([]);
        expect({ ...counts(tally), weak }).toEqual({ ran: { valid: 264, acceptable: 254 }, skipped: 0, weak: 31 });
      });

      it('Ed25519: valid signatures verify, invalid ones (malleable, non-canonical, truncated) do not', () => {
        const tally = runEd25519(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 88, invalid: 63 }, skipped: 0 });
      });

      it('ChaCha20-Poly1305: seal and open match every 12-byte-nonce case; invalid ones open to null', () => {
        const tally = runChaCha20Poly1305(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 256, invalid: 60 }, skipped: 9 });
      });

      it('HKDF-SHA256: output matches every valid case; lengths over 255 * 32 throw', () => {
        const tally = runHkdf(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 83, invalid: 3 }, skipped: 0 });
      });

      it('HMAC-SHA256: every valid tag matches (truncated ones by prefix), no invalid one does', () => {
        const tally = runHmac(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 66, invalid: 108 }, skipped: 0 });
      });

      it('ML-KEM-768: key generation from a seed', () => {
        const tally = runMlkemKeygen(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 100 }, skipped: 0 });
      });

      it('ML-KEM-768: encapsulation with given randomness; wrong-length or unreduced keys throw', () => {
        const tally = runMlkemEncaps(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 133, invalid: 132 }, skipped: 0 });
      });

      it('ML-KEM-768: decapsulation incl. implicit rejection; wrong-size keys or ciphertexts throw', () => {
        const tally = runMlkemDecaps(backend);
        expect(tally.failures).toEqual([]);
        expect(counts(tally)).toEqual({ ran: { valid: 153, invalid: 40 }, skipped: 0 });
      });
    });
  }

  it('checkX25519PublicKey rejects exactly the non-canonical and the small-order public keys', () => {
    const tally = new Tally();
    let rejected = 0;
    for (const { test } of load('x25519_test.json', 'XDH', 'XdhComp').entries) {
      tally.count(test);
      tally.guard(test, () => {
        const pub = hexField(test, 'public');
        // Small order is taken from Wycheproof's own flag, canonical form
        // from the arithmetic above: neither from the code under test.
        const mustReject = !isCanonicalEncoding(pub) || test.flags.includes('LowOrderPublic');
        if (test.flags.includes('NonCanonicalPublic')) tally.check(mustReject, test, 'flagged non-canonical but canonical here');
        const code = parleyCode(() => checkX25519PublicKey(pub, 'publicKey'));
        if (mustReject) {
          rejected++;
          tally.check(code === 'BAD_PUBLIC_KEY', test, `gave ${code ?? 'acceptance'}, expected BAD_PUBLIC_KEY`);
        } else {
          tally.check(code === null, test, `rejected an acceptable key with ${code}`);
        }
      });
    }
    expect(tally.failures).toEqual([]);
    // 31 small-order keys (some also non-canonical) and 13 non-canonical others.
    expect({ ran: tally.ran, rejected }).toEqual({ ran: { valid: 264, acceptable: 254 }, rejected: 44 });
  });

  describe('the loops catch broken backends', () => {
    it('a ZIP-215 (lenient) Ed25519 verifier fails the Ed25519 vectors', () => {
      // A test double built on noble directly: our backends expose only the strict verifier.
      const lenient: CryptoBackend = {
        ...nobleBackend,
        ed25519Verify(pub, msg, sig) {
          try {
            return ed25519.verify(sig, msg, pub, { zip215: true });
          } catch {
            return false;
          }
        },
      };
      const failures = runEd25519(lenient).failures;
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((f) => f.includes('accepted an invalid signature'))).toBe(true);
    });

    it('an AEAD that skips the tag check fails the ChaCha20-Poly1305 vectors', () => {
      const untagged: CryptoBackend = {
        ...nobleBackend,
        aeadOpen(key, nonce, sealed, ad) {
          // Re-seals the recovered plaintext to learn the keystream, ignoring the received tag.
          const body = sealed.subarray(0, Math.max(0, sealed.length - 16));
          const stream = nobleBackend.aeadSeal(key, nonce, new Uint8Array(body.length), ad);
          return body.map((b, i) => b ^ (stream[i] as number));
        },
      };
      expect(runChaCha20Poly1305(untagged).failures.length).toBeGreaterThan(0);
    });

    it('an X25519 that throws on low-order points (instead of returning zeros) fails the X25519 vectors', () => {
      const throwing: CryptoBackend = {
        ...nodeBackend,
        x25519(priv, pub) {
          const out = nodeBackend.x25519(priv, pub);
          if (isAllZero(out)) throw new Error('low order');
          return out;
        },
      };
      const { tally } = runX25519(throwing);
      expect(tally.failures.length).toBe(31);
    });
  });
});
