/**
 * What every vector test shares: loading a file, both backends, a random
 * source that hands out exactly the values a vector lists, and building a
 * device, a prekey store or a whole conversation from a vector's inputs
 * through core's public API.
 */
import { readFileSync } from 'node:fs';
import {
  type CryptoBackend,
  type CryptoProvider,
  DeviceIdentity,
  Ed25519KeyPair,
  ParleyError,
  PreKeyStore,
  SessionRecord,
  X25519KeyPair,
  cryptoProvider,
  decodeBundle,
  decodeCertificate,
  encodeCbor,
  fromHex,
  nobleBackend,
  toHex,
} from '@parley/core';
import { nodeBackend } from '@parley/core/node';
import { expect } from 'vitest';

// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field, as a reimplementation would.
export type Vec = any;

export const backends: readonly CryptoBackend[] = [nodeBackend, nobleBackend];

export function loadVectors(name: string): Vec {
  return JSON.parse(readFileSync(new URL(`../${name}`, import.meta.url), 'utf8'));
}

export const bytes = (hex: string): Uint8Array => fromHex(hex);
export const hexOf = (b: Uint8Array): string => toHex(b);

/** The tests of every group of `type`. */
export function testsOf(file: Vec, type: string): { group: Vec; test: Vec }[] {
  const out: { group: Vec; test: Vec }[] = [];
  for (const group of file.testGroups) if (group.type === type) for (const test of group.tests) out.push({ group, test });
  if (out.length === 0) throw new Error(`no tests of type ${type}`);
  return out;
}

/**
 * What core must do with an invalid vector on `backend`: throw a
 * ParleyError with the vector's error, unless the vector marks a known
 * deviation of the reference code on that backend (spec/README.md), whose
 * `v1Error` is then expected instead (null: the input is accepted). A fix
 * to the code turns such a case red until the mark is removed.
 * Returns true when the input was refused.
 */
export function expectRefusal(fn: () => unknown, test: Vec, backend: CryptoBackend | null): boolean {
  const deviation = test.knownDeviation;
  if (deviation && backend && deviation.backends.includes(backend.name)) {
    if (deviation.v1Error === null) {
      fn();
      return false;
    }
    expectParleyError(fn, deviation.v1Error);
    return true;
  }
  expectParleyError(fn, test.error);
  return true;
}

/** `fn` must throw a ParleyError with `code`. */
export function expectParleyError(fn: () => unknown, code: string): void {
  let thrown: unknown = null;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(ParleyError);
  expect((thrown as ParleyError).code).toBe(code);
}

/**
 * A random source that returns the vector's values in order and nothing
 * else: an unexpected draw, a wrong length or an unused value fails the test.
 */
export class VectorRandom {
  readonly #queue: Uint8Array[] = [];
  readonly provider: CryptoProvider;

  constructor(backend: CryptoBackend) {
    this.provider = cryptoProvider(backend, (n) => {
      const next = this.#queue.shift();
      if (!next) throw new Error(`unexpected random draw of ${n} bytes`);
      if (next.length !== n) throw new Error(`random draw of ${n} bytes, vector gives ${next.length}`);
      return next.slice();
    });
  }

  push(...values: (string | null | undefined)[]): this {
    for (const v of values) if (v) this.#queue.push(fromHex(v));
    return this;
  }

  expectUsed(): void {
    expect(this.#queue.length, 'unused random values').toBe(0);
  }
}

/** A device from a vector's device fields (certificate, signingSeed, identityPrivateKey). */
export function deviceFrom(d: Vec, provider: CryptoProvider): DeviceIdentity {
  return DeviceIdentity.fromParts(
    decodeCertificate(fromHex(d.certificate)),
    Ed25519KeyPair.fromSeed(fromHex(d.signingSeed), provider),
    X25519KeyPair.fromPrivateKey(fromHex(d.identityPrivateKey), provider),
    provider,
  );
}

/**
 * A prekey store holding exactly the responder's listed prekeys, built as a
 * stored record (records.json pins that format) since the store has no
 * constructor from explicit keys.
 */
export function prekeyStoreFrom(r: Vec, device: DeviceIdentity, provider: CryptoProvider): PreKeyStore {
  const maxId = (keys: Vec[]) => Math.max(0, ...keys.map((k: Vec) => k.id));
  const lastResort = r.kemPreKeys.find((k: Vec) => k.lastResort);
  const record = encodeCbor([
    'parley/prekey-store',
    1,
    [maxId(r.signedPreKeys) + 1, maxId(r.oneTimePreKeys) + 1, maxId(r.kemPreKeys) + 1, maxId(r.signedPreKeys), lastResort.id],
    r.signedPreKeys.map((k: Vec) => [k.id, fromHex(k.privateKey), fromHex(k.publicKey), fromHex(k.signature)]),
    r.oneTimePreKeys.map((k: Vec) => [k.id, fromHex(k.privateKey), fromHex(k.publicKey)]),
    r.kemPreKeys.map((k: Vec) => [
      k.id,
      fromHex(k.publicKey),
      provider.backend.mlkemKeygen(fromHex(k.seed)).secretKey,
      k.lastResort,
      fromHex(k.signature),
    ]),
    [],
  ]);
  return PreKeyStore.deserialize(record, device, provider);
}

export interface Replay {
  /** Serialized records and the responder's prekey store after step i (index 0: after setup). */
  snapshots: { initiator: string | null; responder: string | null; prekeys: string }[];
  /** The responder's device. */
  responder: DeviceIdentity;
}

/**
 * Replays a ratchet.json conversation through SessionRecord with the
 * vector's random values: every sent message must equal the vector's bytes
 * and every received one must give its plaintext.
 */
export function replayConversation(group: Vec, test: Vec, backend: CryptoBackend): Replay {
  const rng = new VectorRandom(backend);
  const p = rng.provider;
  const aliceDevice = deviceFrom(group.initiator, p);
  const bobDevice = deviceFrom(group.responder, p);
  const prekeys = prekeyStoreFrom(group.responder, bobDevice, p);
  const s = test.setup;
  rng.push(s.ephemeralPrivateKey, s.kemEncapsulationRandomness, s.initiatorRatchetPrivateKey);
  const records: Record<string, SessionRecord> = {
    initiator: SessionRecord.initiate(aliceDevice, decodeBundle(fromHex(s.bundle)), {
      expectedAccountKey: fromHex(group.responder.accountKey),
      provider: p,
    }),
    responder: new SessionRecord(p),
  };
  rng.expectUsed();
  const snap = () => ({
    initiator: toHex(records.initiator!.serialize()),
    responder: records.responder!.hasSession ? toHex(records.responder!.serialize()) : null,
    prekeys: toHex(prekeys.serialize()),
  });
  const snapshots = [snap()];
  const sent = new Map<string, string>();
  for (const step of test.steps) {
    if (step.action === 'send') {
      const out = records[step.sender]!.encrypt(fromHex(step.plaintext));
      expect(toHex(out), `step ${step.step}: ${step.name}`).toBe(step.message);
      sent.set(step.name, step.message);
    } else {
      rng.push(step.dhRatchet?.newRatchetPrivateKey);
      const context =
        step.path === 'newSession' ? { device: bobDevice, prekeys, expectedAccountKey: fromHex(group.initiator.accountKey) } : {};
      const result = records[step.recipient]!.decrypt(fromHex(sent.get(step.name)!), context);
      expect(toHex(result.plaintext), `step ${step.step}: ${step.name}`).toBe(step.plaintext);
      rng.expectUsed();
    }
    snapshots.push(snap());
  }
  return { snapshots, responder: bobDevice };
}
