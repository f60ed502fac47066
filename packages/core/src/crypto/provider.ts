/**
 * A `CryptoProvider` pairs a backend with a random source. It is the one
 * object every core function takes (optionally) to reach primitives and
 * randomness, which keeps core free of global state: tests and vectors pass a
 * seeded random source, applications take the default. spec/01-conventions.md §4.3.
 */
import { defaultBackend } from '#default-backend';
import type { CryptoBackend } from './backend.ts';

/** Returns `length` fresh random bytes. */
export type RandomSource = (length: number) => Uint8Array;

export interface CryptoProvider {
  readonly backend: CryptoBackend;
  readonly random: RandomSource;
}

/**
 * The provider for this platform: the Node (OpenSSL) backend under Node, the
 * noble backend elsewhere, with the platform CSPRNG.
 */
export function defaultProvider(): CryptoProvider {
  return DEFAULT;
}

/**
 * A provider for an explicit backend (the override), optionally with an
 * injected random source. The random source must return fresh bytes on every
 * call; a deterministic one is only for tests and vectors.
 */
export function cryptoProvider(backend: CryptoBackend = defaultBackend, random?: RandomSource): CryptoProvider {
  return Object.freeze({ backend, random: random ?? ((n: number) => backend.randomBytes(n)) });
}

const DEFAULT: CryptoProvider = cryptoProvider(defaultBackend);

/** Resolves an optional provider argument. */
export function resolveProvider(p?: CryptoProvider): CryptoProvider {
  return p ?? DEFAULT;
}
