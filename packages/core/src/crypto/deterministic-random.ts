/**
 * The deterministic random source behind `@parley/core/testing`. NOT for
 * production: it makes every key predictable. In crypto/ because it is built
 * on ChaCha20 and SHA-256, and crypto/ is the only folder that imports a
 * primitive (.dependency-cruiser.cjs, crypto-primitives-only-in-core-crypto);
 * the package's main entry does not export it. spec/01-conventions.md §4.3.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8 } from '../bytes.ts';
import type { RandomSource } from './provider.ts';

/**
 * A deterministic random source: the ChaCha20 keystream under
 * key = SHA-256(seed), nonce = 0, read sequentially. Two sources with the
 * same seed return the same bytes for the same sequence of calls, so
 * protocol runs (and test vectors) are reproducible byte for byte.
 */
export function deterministicRandom(seed: string | Uint8Array): RandomSource {
  const key = sha256(typeof seed === 'string' ? utf8(seed) : seed);
  const nonce = new Uint8Array(12);
  let offset = 0;
  return (length: number) => {
    // Generate from the 64-byte block that holds `offset` (ChaCha20's block counter).
    const skip = offset % 64;
    const stream = chacha20(key, nonce, new Uint8Array(skip + length), undefined, Math.floor(offset / 64));
    offset += length;
    return stream.slice(skip);
  };
}
