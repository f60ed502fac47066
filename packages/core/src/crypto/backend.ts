/**
 * The crypto backend interface: the only doorway from core to primitives.
 *
 * Two implementations exist: `nobleBackend` (pure TypeScript, runs everywhere,
 * the reference) and `nodeBackend` (Node's built-in OpenSSL, much faster for
 * curve operations). Both must produce identical bytes for identical inputs;
 * a test runs every protocol test and vector with each.
 *
 * Every operation is synchronous: the per-message path never waits on a
 * promise. Randomness is not part of a backend; it is injected separately
 * (see provider.ts) so that vectors are reproducible.
 *
 * This module has no knowledge of the protocol: it neither knows what a
 * chain key is nor which labels are used.
 */

export interface KemKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export interface KemEncapsulation {
  readonly ciphertext: Uint8Array;
  readonly sharedSecret: Uint8Array;
}

export interface CryptoBackend {
  readonly name: 'noble' | 'node' | (string & {});

  /** X25519 public key for a 32-byte private key (clamped per RFC 7748). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * Raw X25519. Returns the 32-byte output, which may be all zero: callers
   * go through `dh()` in x25519.ts, which rejects that.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** Ed25519 public key for a 32-byte seed (RFC 8032 §5.1.5). */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /** Strict RFC 8032 verification (canonical S, no ZIP-215 leniency). Never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;

  sha256(data: Uint8Array): Uint8Array;
  sha512(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;

  /** ChaCha20-Poly1305 (RFC 8439): returns ciphertext || 16-byte tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array;
  /** Returns the plaintext, or `null` if the tag does not verify. Never throws on bad input bytes. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null;

  /** ML-KEM-768 (FIPS 203) key generation from a 64-byte seed (d || z). */
  mlkemKeygen(seed: Uint8Array): KemKeyPair;
  /** Encapsulation with explicit 32-byte randomness `m`. Throws on an invalid public key. */
  mlkemEncapsulate(publicKey: Uint8Array, randomness: Uint8Array): KemEncapsulation;
  /** Decapsulation (implicit rejection: a bad ciphertext yields a pseudorandom secret). */
  mlkemDecapsulate(ciphertext: Uint8Array, secretKey: Uint8Array): Uint8Array;

  /** The platform CSPRNG. Used only as the default random source. */
  randomBytes(length: number): Uint8Array;
}

/** Sizes fixed by the primitives (spec/01-conventions.md §3). */
export const X25519_KEY_BYTES = 32;
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const AEAD_KEY_BYTES = 32;
export const AEAD_NONCE_BYTES = 12;
export const AEAD_TAG_BYTES = 16;
export const MLKEM768_PUBLIC_KEY_BYTES = 1184;
export const MLKEM768_SECRET_KEY_BYTES = 2400;
export const MLKEM768_CIPHERTEXT_BYTES = 1088;
export const MLKEM768_SEED_BYTES = 64;
export const MLKEM_SHARED_SECRET_BYTES = 32;
