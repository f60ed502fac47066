/**
 * The people and devices every vector file uses, created through core's
 * public API with named random draws (see random.ts), plus the JSON forms
 * that list their secrets for a reimplementation.
 *
 *   alice: account; device 1 (created by the account), device 2 (linked:
 *          keys made on the device, certified by the account)
 *   bob:   account; device 1 with a prekey store: signed prekey 1,
 *          one-time prekeys 1 and 2, KEM prekeys 1 (last resort) and 2
 *   carol: an account (a third party for mismatch cases) and device 1 (groups only)
 */
import {
  Account,
  type CryptoBackend,
  type CryptoProvider,
  DeviceIdentity,
  type KemPreKeyPublic,
  type OneTimePreKeyPublic,
  PreKeyStore,
  type SignedPreKeyPublic,
  cryptoProvider,
  encodeCertificate,
} from '@parley/core';
import { LabeledRandom } from './random.ts';
import { type Json, hex } from './vector-file.ts';

export interface Cast {
  readonly backend: CryptoBackend;
  readonly rng: LabeledRandom;
  readonly provider: CryptoProvider;
  readonly alice: Account;
  readonly aliceDevice1: DeviceIdentity;
  readonly aliceDevice2: DeviceIdentity;
  readonly bob: Account;
  readonly bobDevice1: DeviceIdentity;
  /** Bob's prekeys as generated; clone with `freshBobPrekeys` before a scenario consumes any. */
  readonly bobPrekeys: PreKeyStore;
  readonly carol: Account;
  /** Carol's device 1: used only by the group vectors. */
  readonly carolDevice1: DeviceIdentity;
}

export function createCast(backend: CryptoBackend): Cast {
  const rng = new LabeledRandom();
  const provider = cryptoProvider(backend, rng.source);
  const alice = rng.run([['alice.accountSeed', 32]], () => Account.generate(provider));
  const aliceDevice1 = rng.run(
    [
      ['alice.device1.signingSeed', 32],
      ['alice.device1.identityPrivateKey', 32],
    ],
    () => alice.createDevice(1),
  );
  // Device linking (spec/02-keys.md §4): the new device makes its keys, the account certifies them.
  const aliceDevice2 = rng.run(
    [
      ['alice.device2.signingSeed', 32],
      ['alice.device2.identityPrivateKey', 32],
    ],
    () => {
      const keys = DeviceIdentity.generateKeys(provider);
      const certificate = alice.certify(2, keys.signing.publicKey, keys.identity.publicKey);
      return DeviceIdentity.fromParts(certificate, keys.signing, keys.identity, provider);
    },
  );
  const bob = rng.run([['bob.accountSeed', 32]], () => Account.generate(provider));
  const bobDevice1 = rng.run(
    [
      ['bob.device1.signingSeed', 32],
      ['bob.device1.identityPrivateKey', 32],
    ],
    () => bob.createDevice(1),
  );
  const bobPrekeys = rng.run(
    [
      ['bob.device1.signedPreKey1.privateKey', 32],
      ['bob.device1.kemPreKey1.seed', 64],
      ['bob.device1.oneTimePreKey1.privateKey', 32],
      ['bob.device1.oneTimePreKey2.privateKey', 32],
      ['bob.device1.kemPreKey2.seed', 64],
    ],
    () => PreKeyStore.generate(bobDevice1, { oneTimePreKeys: 2, kemPreKeys: 1 }),
  );
  const carol = rng.run([['carol.accountSeed', 32]], () => Account.generate(provider));
  const carolDevice1 = rng.run(
    [
      ['carol.device1.signingSeed', 32],
      ['carol.device1.identityPrivateKey', 32],
    ],
    () => carol.createDevice(1),
  );
  return { backend, rng, provider, alice, aliceDevice1, aliceDevice2, bob, bobDevice1, bobPrekeys, carol, carolDevice1 };
}

/** An unused copy of Bob's prekey store. */
export function freshBobPrekeys(cast: Cast): PreKeyStore {
  return PreKeyStore.deserialize(cast.bobPrekeys.serialize(), cast.bobDevice1, cast.provider);
}

export function accountJson(cast: Cast, name: 'alice' | 'bob' | 'carol'): { [k: string]: Json } {
  return { accountSeed: hex(cast.rng.drawn(`${name}.accountSeed`)), accountKey: hex(cast[name].publicKey) };
}

/** A device's identity with its secrets: what a reimplementation needs to act as that device. */
export function deviceJson(cast: Cast, device: DeviceIdentity, label: string): { [k: string]: Json } {
  const c = device.certificate;
  return {
    accountKey: hex(c.accountKey),
    deviceId: c.deviceId,
    signingSeed: hex(cast.rng.drawn(`${label}.signingSeed`)),
    signingKey: hex(c.signingKey),
    identityPrivateKey: hex(cast.rng.drawn(`${label}.identityPrivateKey`)),
    identityKey: hex(c.identityKey),
    certificate: hex(encodeCertificate(c)),
  };
}

export const signedPreKeyLabel = (id: number) => `bob.device1.signedPreKey${id}.privateKey`;
export const oneTimePreKeyLabel = (id: number) => `bob.device1.oneTimePreKey${id}.privateKey`;
export const kemPreKeyLabel = (id: number) => `bob.device1.kemPreKey${id}.seed`;

export function signedPreKeyJson(cast: Cast, k: SignedPreKeyPublic): { [k: string]: Json } {
  return { id: k.id, privateKey: hex(cast.rng.drawn(signedPreKeyLabel(k.id))), publicKey: hex(k.publicKey), signature: hex(k.signature) };
}

export function oneTimePreKeyJson(cast: Cast, k: OneTimePreKeyPublic): { [k: string]: Json } {
  return { id: k.id, privateKey: hex(cast.rng.drawn(oneTimePreKeyLabel(k.id))), publicKey: hex(k.publicKey) };
}

export function kemPreKeyJson(cast: Cast, k: KemPreKeyPublic): { [k: string]: Json } {
  return {
    id: k.id,
    seed: hex(cast.rng.drawn(kemPreKeyLabel(k.id))),
    publicKey: hex(k.publicKey),
    lastResort: k.lastResort,
    signature: hex(k.signature),
  };
}

/** Bob's device with every prekey private half: the responder of the handshake and conversation vectors. */
export function responderJson(cast: Cast): { [k: string]: Json } {
  const store = cast.bobPrekeys;
  const kem = [store.lastResortKemPreKey(), ...store.kemPreKeys()].sort((a, b) => a.id - b.id);
  return {
    ...deviceJson(cast, cast.bobDevice1, 'bob.device1'),
    signedPreKeys: [signedPreKeyJson(cast, store.currentSignedPreKey())],
    oneTimePreKeys: store.oneTimePreKeys().map((k) => oneTimePreKeyJson(cast, k)),
    kemPreKeys: kem.map((k) => kemPreKeyJson(cast, k)),
  };
}
