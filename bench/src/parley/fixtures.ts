/**
 * Parley parties for the benchmarks: accounts, devices and sessions built
 * through the public API of @parley/core with an explicit backend, so every
 * scenario can run once on node:crypto and once on noble. Issue 5 §1 ("with
 * both crypto backends").
 */
import { Account, type CryptoProvider, type DeviceIdentity, PreKeyStore, SessionRecord, cryptoProvider, nobleBackend } from '@parley/core';
import { nodeBackend } from '@parley/core/node';

export type Backend = 'node' | 'noble';
export const BACKENDS: readonly Backend[] = ['node', 'noble'];

export function providerFor(backend: Backend): CryptoProvider {
  return cryptoProvider(backend === 'node' ? nodeBackend : nobleBackend);
}

/** Deterministic filler bytes (payload contents do not affect the cost). */
export function payload(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

export interface Party {
  readonly account: Account;
  readonly device: DeviceIdentity;
}

export function party(provider: CryptoProvider, deviceId = 1): Party {
  const account = Account.generate(provider);
  return { account, device: account.createDevice(deviceId, provider) };
}

/** Two parties with a session each way, both past the PreKeyMessage stage (one message each direction). */
export interface EstablishedPair {
  readonly provider: CryptoProvider;
  readonly alice: Party;
  readonly bob: Party;
  readonly aliceToBob: SessionRecord;
  readonly bobToAlice: SessionRecord;
}

export function establishedPair(provider: CryptoProvider): EstablishedPair {
  const alice = party(provider);
  const bob = party(provider);
  const prekeys = PreKeyStore.generate(bob.device, { oneTimePreKeys: 1, kemPreKeys: 1 }, provider);
  const aliceToBob = SessionRecord.initiate(alice.device, prekeys.bundle(), { provider });
  const bobToAlice = new SessionRecord(provider);
  bobToAlice.decrypt(aliceToBob.encrypt(payload(16)), { device: bob.device, prekeys });
  aliceToBob.decrypt(bobToAlice.encrypt(payload(16)));
  return { provider, alice, bob, aliceToBob, bobToAlice };
}
