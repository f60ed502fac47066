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

/** As `EstablishedPair`, for ratchet version 2: each side's send returns the message and its franking tag. */
export interface EstablishedPairV2 {
  readonly provider: CryptoProvider;
  readonly alice: Party;
  readonly bob: Party;
  readonly aliceToBob: SessionRecord;
  readonly bobToAlice: SessionRecord;
}

/**
 * A version-2 session the way an app gets one (spec/13-ratchet-v2.md): Alice initiates from
 * Bob's v2 bundle (both advertise [1, 2], so the handshake chooses 2, with the PQ ratchet), Bob
 * accepts the PreKeyMessageV2, and one reply makes both sides send RatchetMessageV2s.
 */
export function establishedPairV2(provider: CryptoProvider): EstablishedPairV2 {
  const alice = party(provider);
  const bob = party(provider);
  const prekeys = PreKeyStore.generate(bob.device, { oneTimePreKeys: 1, kemPreKeys: 1 }, provider);
  const aliceToBob = SessionRecord.initiate(alice.device, prekeys.bundleV2(), { provider });
  const bobToAlice = new SessionRecord(provider);
  const first = aliceToBob.encryptWithTag(payload(16));
  bobToAlice.decrypt(first.message, { device: bob.device, prekeys, frankingTag: tagOf(first) });
  const reply = bobToAlice.encryptWithTag(payload(16));
  aliceToBob.decrypt(reply.message, { frankingTag: tagOf(reply) });
  if (aliceToBob.sessionVersion !== 2 || bobToAlice.sessionVersion !== 2) throw new Error('expected a version-2 session');
  return { provider, alice, bob, aliceToBob, bobToAlice };
}

/** The franking tag every v2 message carries beside it (null only for v1). */
export function tagOf(m: { readonly frankingTag: Uint8Array | null }): Uint8Array {
  if (!m.frankingTag) throw new Error('a v2 message without its franking tag');
  return m.frankingTag;
}

/** Sends `bytes` from `from` to `to` (v1 or v2) and returns the plaintext length and the bytes sent (franking tag not counted). */
export function roundTrip(from: SessionRecord, to: SessionRecord, bytes: Uint8Array): { length: number; wire: number } {
  const out = from.encryptWithTag(bytes);
  const plaintext = to.decrypt(out.message, out.frankingTag ? { frankingTag: out.frankingTag } : {}).plaintext;
  return { length: plaintext.length, wire: out.message.length };
}
