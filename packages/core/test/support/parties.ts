// Shared test fixtures: two (or more) parties with accounts, devices and prekeys.
import { Account, type CryptoProvider, type DeviceIdentity, PreKeyStore, SessionRecord, nobleBackend } from '../../src/index.ts';
import { nodeBackend } from '../../src/crypto/node.ts';
import { deterministicProvider } from '../../src/testing.ts';

export const backends = [nodeBackend, nobleBackend] as const;

export interface Party {
  account: Account;
  device: DeviceIdentity;
  prekeys: PreKeyStore;
  provider: CryptoProvider;
}

export function party(provider: CryptoProvider, deviceId = 1, options = { oneTimePreKeys: 3, kemPreKeys: 2 }): Party {
  const account = Account.generate(provider);
  const device = account.createDevice(deviceId, provider);
  const prekeys = PreKeyStore.generate(device, options, provider);
  return { account, device, prekeys, provider };
}

/** Alice initiates to Bob and Bob accepts the first message; returns both records. */
export function establish(alice: Party, bob: Party): { a: SessionRecord; b: SessionRecord } {
  const a = SessionRecord.initiate(alice.device, bob.prekeys.bundle(), { provider: alice.provider });
  const b = new SessionRecord(bob.provider);
  b.decrypt(a.encrypt(new Uint8Array([0])), { device: bob.device, prekeys: bob.prekeys });
  return { a, b };
}

export function seeded(backend: (typeof backends)[number], seed: string): CryptoProvider {
  return deterministicProvider(backend, seed);
}

export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);
