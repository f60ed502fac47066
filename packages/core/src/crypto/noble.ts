/**
 * The portable reference backend: @noble/* only. Runs in browsers, React
 * Native and Node alike. spec/01-conventions.md §4.2.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { randomBytes } from '@noble/hashes/utils.js';
import type { CryptoBackend } from './backend.ts';
import { mlkem768 } from './mlkem.ts';
import { isRefusedEd25519Key } from './ed25519-keys.ts';

const TAG = 16;

export const nobleBackend: CryptoBackend = {
  name: 'noble',

  x25519PublicKey: (priv) => x25519.getPublicKey(priv),
  x25519(priv, pub) {
    if (priv.length !== 32 || pub.length !== 32) throw new RangeError('X25519 keys must be 32 bytes');
    // noble rejects low-order inputs itself by throwing; our contract is to
    // return the raw output and let x25519.ts decide, so map that to zeros.
    try {
      return x25519.getSharedSecret(priv, pub);
    } catch {
      return new Uint8Array(32);
    }
  },

  ed25519PublicKey: (seed) => ed25519.getPublicKey(seed),
  ed25519Sign: (seed, msg) => ed25519.sign(msg, seed),
  ed25519Verify(pub, msg, sig) {
    if (!(pub instanceof Uint8Array) || pub.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
    if (isRefusedEd25519Key(pub)) return false;
    try {
      return ed25519.verify(sig, msg, pub, { zip215: false });
    } catch {
      return false;
    }
  },

  sha256: (d) => sha256(d),
  sha512: (d) => sha512(d),
  hmacSha256: (key, data) => hmac(sha256, key, data),
  hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),

  aeadSeal: (key, nonce, pt, ad) => chacha20poly1305(key, nonce, ad).encrypt(pt),
  aeadOpen(key, nonce, sealed, ad) {
    if (sealed.length < TAG) return null;
    try {
      return chacha20poly1305(key, nonce, ad).decrypt(sealed);
    } catch {
      return null;
    }
  },

  ...mlkem768,

  randomBytes: (n) => randomBytes(n),
};
