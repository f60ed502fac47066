/**
 * Test helpers published as `@parley/core/testing`. NOT for production:
 * a deterministic random source makes every key predictable.
 * spec/01-conventions.md §4.3.
 */
import type { CryptoBackend } from './crypto/backend.ts';
import { deterministicRandom } from './crypto/deterministic-random.ts';
import { type CryptoProvider, cryptoProvider } from './crypto/provider.ts';

export { deterministicRandom };

/** A provider with the given backend and a deterministic random source. */
export function deterministicProvider(backend: CryptoBackend, seed: string | Uint8Array): CryptoProvider {
  return cryptoProvider(backend, deterministicRandom(seed));
}
