/**
 * Random draws that are secret but not kept are wiped once used (issue 11,
 * finding 8; spec/01-conventions.md §3.3, spec/03-handshake.md §3).
 *
 * The ML-KEM encapsulation randomness m is the preimage of the KEM shared
 * secret (K = G(m || H(ek))[0:32], FIPS 203): whoever reads m from memory
 * learns SS. The ML-KEM key-generation seed d || z re-derives the whole
 * decapsulation key. Neither is needed after the call that used it.
 *
 * The test records every buffer the random source hands out and checks its
 * bytes after the operation. Wiping is best effort in JavaScript (an engine
 * may have copied the bytes); what is checked is that the buffer core was
 * given is zero.
 */
import { describe, expect, it } from 'vitest';
import { cryptoProvider } from '../src/crypto/provider.ts';
import { initiate } from '../src/handshake/pqxdh.ts';
import { Account, PreKeyStore } from '../src/index.ts';
import { kemPreKeySignedBytes } from '../src/keys/prekeys.ts';
import { deterministicRandom } from '../src/testing.ts';
import { backends, party } from './support/parties.ts';

/** A provider whose draws are recorded (by size), so a test can look at them afterwards. */
function recording(backend: (typeof backends)[number], seed: string) {
  const draws: Uint8Array[] = [];
  const random = deterministicRandom(seed);
  const provider = cryptoProvider(backend, (n) => {
    const out = random(n);
    draws.push(out);
    return out;
  });
  return { provider, draws };
}

const isZero = (b: Uint8Array) => b.every((x) => x === 0);

describe('secret random draws are wiped after use', () => {
  for (const backend of backends) {
    it(`${backend.name}: initiate wipes the ML-KEM encapsulation randomness and the base key's private half`, () => {
      const bob = party(cryptoProvider(backend));
      const alice = party(cryptoProvider(backend));
      const { provider, draws } = recording(backend, 'wipe/initiate');
      const hs = initiate(provider, alice.device, bob.prekeys.bundle());
      // Exactly two draws: EK_A's private key, then m (spec/03-handshake.md §3).
      expect(draws.map((d) => d.length)).toEqual([32, 32]);
      expect(draws.map(isZero)).toEqual([true, true]);
      expect(hs.sharedSecret.length).toBe(32);
      expect(isZero(hs.sharedSecret)).toBe(false);
    });

    it(`${backend.name}: a bundle with a bad ML-KEM key still leaves the randomness wiped`, () => {
      const bob = party(cryptoProvider(backend));
      const alice = party(cryptoProvider(backend));
      const bundle = bob.prekeys.bundle();
      // All coefficients 0xfff fail the FIPS 203 modulus check; Bob's device
      // signs the bad key, so the bundle verifies and encapsulation is reached.
      const publicKey = new Uint8Array(bundle.kemPreKey.publicKey.length).fill(0xff);
      const signature = bob.device.sign(kemPreKeySignedBytes(bundle.kemPreKey.id, publicKey, bundle.kemPreKey.lastResort));
      const badKem = { ...bundle.kemPreKey, publicKey, signature };
      const { provider, draws } = recording(backend, 'wipe/bad-kem');
      expect(() => initiate(provider, alice.device, { ...bundle, kemPreKey: badKem })).toThrow(/ML-KEM/);
      expect(draws.map((d) => d.length)).toEqual([32, 32]);
      expect(draws.map(isZero)).toEqual([true, true]);
    });

    it(`${backend.name}: generating KEM prekeys wipes each 64-byte key-generation seed`, () => {
      const account = Account.generate(cryptoProvider(backend));
      const device = account.createDevice(1, cryptoProvider(backend));
      const { provider, draws } = recording(backend, 'wipe/kem-keygen');
      PreKeyStore.generate(device, { oneTimePreKeys: 1, kemPreKeys: 2 }, provider);
      const seeds = draws.filter((d) => d.length === 64);
      expect(seeds.length).toBe(3); // the last-resort key and two one-time keys
      expect(seeds.map(isZero)).toEqual([true, true, true]);
    });
  }
});
