/**
 * Peer: @privacyresearch/libsignal-protocol-typescript 0.0.16, a pure
 * TypeScript port of the Signal protocol (X3DH + Double Ratchet), with an
 * in-memory SignalProtocolStore of our own. Issue 5 (peers: privacyresearch
 * setup, same-direction, ping-pong).
 *
 * Not like for like: X3DH only (no post-quantum KEM). Its curve is an
 * asm.js curve25519-donna (milliseconds per DH) and its HMAC, AES and SHA go
 * through WebCrypto, so every call is a promise. It is slow enough that its
 * rows use one operation per sample.
 */
import {
  type Direction,
  KeyHelper,
  type KeyPairType,
  SessionBuilder,
  SessionCipher,
  SignalProtocolAddress,
  type StorageType,
} from '@privacyresearch/libsignal-protocol-typescript';
import type { Entry } from '../runner.ts';
import type { PeerSet } from './types.ts';

const SUBJECT = { section: 'peers', subject: 'privacyresearch' } as const;
const NOTE = 'X3DH only (no post-quantum KEM); asm.js curve, WebCrypto HMAC/AES';

function equalBuffers(a: ArrayBuffer, b: ArrayBuffer): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** In-memory store: trust on first use, like a fresh app install. */
class MemoryStore implements StorageType {
  readonly preKeys = new Map<string, KeyPairType>();
  readonly signedPreKeys = new Map<string, KeyPairType>();
  sessions = new Map<string, string>();
  readonly #identities = new Map<string, ArrayBuffer>();

  constructor(
    readonly identity: KeyPairType,
    readonly registrationId: number,
  ) {}

  async getIdentityKeyPair() {
    return this.identity;
  }
  async getLocalRegistrationId() {
    return this.registrationId;
  }
  async isTrustedIdentity(identifier: string, identityKey: ArrayBuffer, _direction: Direction) {
    const known = this.#identities.get(identifier.split('.')[0] as string);
    return !known || equalBuffers(known, identityKey);
  }
  async saveIdentity(encodedAddress: string, publicKey: ArrayBuffer) {
    const name = encodedAddress.split('.')[0] as string;
    const known = this.#identities.get(name);
    this.#identities.set(name, publicKey);
    return !!known && !equalBuffers(known, publicKey);
  }
  async loadPreKey(keyId: string | number) {
    return this.preKeys.get(String(keyId));
  }
  async storePreKey(keyId: number | string, keyPair: KeyPairType) {
    this.preKeys.set(String(keyId), keyPair);
  }
  async removePreKey(keyId: number | string) {
    this.preKeys.delete(String(keyId));
  }
  async storeSession(encodedAddress: string, record: string) {
    this.sessions.set(encodedAddress, record);
  }
  async loadSession(encodedAddress: string) {
    return this.sessions.get(encodedAddress);
  }
  async loadSignedPreKey(keyId: number | string) {
    return this.signedPreKeys.get(String(keyId));
  }
  async storeSignedPreKey(keyId: number | string, keyPair: KeyPairType) {
    this.signedPreKeys.set(String(keyId), keyPair);
  }
  async removeSignedPreKey(keyId: number | string) {
    this.signedPreKeys.delete(String(keyId));
  }
}

interface Party {
  readonly address: SignalProtocolAddress;
  readonly store: MemoryStore;
}

async function party(name: string): Promise<Party> {
  const store = new MemoryStore(await KeyHelper.generateIdentityKeyPair(), KeyHelper.generateRegistrationId());
  return { address: new SignalProtocolAddress(name, 1), store };
}

function buffer(length: number): ArrayBuffer {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out.buffer;
}

function expectLength(plaintext: ArrayBuffer, length: number): void {
  if (plaintext.byteLength !== length)
    throw new Error(`privacyresearch round trip returned ${plaintext.byteLength} bytes, expected ${length}`);
}

let nextPreKeyId = 1;
const SIGNED_ID = 1;

interface Published {
  readonly signedPreKey: { keyId: number; publicKey: ArrayBuffer; signature: ArrayBuffer };
  readonly preKey: { keyId: number; publicKey: ArrayBuffer };
}

async function publish(bob: Party): Promise<Published> {
  let signed = bob.store.signedPreKeys.get(String(SIGNED_ID));
  let signature = signedSignature.get(bob);
  if (!signed || !signature) {
    const spk = await KeyHelper.generateSignedPreKey(bob.store.identity, SIGNED_ID);
    await bob.store.storeSignedPreKey(SIGNED_ID, spk.keyPair);
    signed = spk.keyPair;
    signature = spk.signature;
    signedSignature.set(bob, signature);
  }
  const id = nextPreKeyId++;
  const pk = await KeyHelper.generatePreKey(id);
  await bob.store.storePreKey(id, pk.keyPair);
  return {
    signedPreKey: { keyId: SIGNED_ID, publicKey: signed.pubKey, signature },
    preKey: { keyId: id, publicKey: pk.keyPair.pubKey },
  };
}
const signedSignature = new WeakMap<Party, ArrayBuffer>();

async function startSession(alice: Party, bob: Party, keys: Published): Promise<void> {
  await new SessionBuilder(alice.store, bob.address).processPreKey({
    identityKey: bob.store.identity.pubKey,
    registrationId: bob.store.registrationId,
    signedPreKey: keys.signedPreKey,
    preKey: keys.preKey,
  });
}

async function send(from: Party, to: Party, message: ArrayBuffer): Promise<ArrayBuffer> {
  const m = await new SessionCipher(from.store, to.address).encrypt(message);
  const cipher = new SessionCipher(to.store, from.address);
  return m.type === 3
    ? cipher.decryptPreKeyWhisperMessage(m.body as string, 'binary')
    : cipher.decryptWhisperMessage(m.body as string, 'binary');
}

/** A fresh Alice and Bob, so interleaved scenarios never share state. */
async function pair(): Promise<{ alice: Party; bob: Party }> {
  return { alice: await party('alice'), bob: await party('bob') };
}

/** Alice and Bob with a session each way, past the PreKey stage. */
async function establishedPair(): Promise<{ alice: Party; bob: Party }> {
  const { alice, bob } = await pair();
  await startSession(alice, bob, await publish(bob));
  await send(alice, bob, buffer(16));
  await send(bob, alice, buffer(16));
  return { alice, bob };
}

/** The privacyresearch entries: setup, same-direction, ping-pong. */
export async function privacyResearchEntries(quick: boolean): Promise<PeerSet> {
  const small = buffer(100);
  // One operation per sample: a setup costs tens of milliseconds here.
  const slow = { maxIterations: 1, samples: quick ? 3 : 7, minSamples: 3, warmupSamples: 1 };
  const entries: Entry[] = [];

  {
    const { alice, bob } = await pair();
    entries.push({
      meta: { ...SUBJECT, op: 'setup', label: 'setup: bundle, X3DH, 1st msg, responder', note: NOTE },
      task: {
        async: true,
        prepare: async (n: number) => {
          const keys: Published[] = [];
          for (let i = 0; i < n; i++) keys.push(await publish(bob));
          return keys;
        },
        async run(keys: Published[], i: number) {
          // Fresh sessions: each setup starts from none, as Parley's does.
          alice.store.sessions = new Map();
          bob.store.sessions = new Map();
          await startSession(alice, bob, keys[i] as Published);
          expectLength(await send(alice, bob, small), 100);
        },
      },
      overrides: slow,
    });
  }

  for (const [op, length, label] of [
    ['same-direction-100', 100, 'same-direction encrypt+decrypt, 100 B'],
    ['same-direction-1024', 1024, 'same-direction encrypt+decrypt, 1 KiB'],
  ] as const) {
    const { alice, bob } = await establishedPair();
    const body = buffer(length);
    entries.push({
      meta: { ...SUBJECT, op, label, note: NOTE },
      task: {
        async: true,
        async run() {
          expectLength(await send(alice, bob, body), length);
        },
      },
      overrides: { ...slow, maxIterations: 4 },
    });
  }

  {
    const { alice, bob } = await establishedPair();
    let turn = 0;
    entries.push({
      meta: { ...SUBJECT, op: 'ping-pong', label: 'ping-pong, 100 B (DH ratchet step per message)', note: NOTE },
      task: {
        async: true,
        async run() {
          // A turn counter, not the sample index: samples may hold an odd number of iterations.
          const [from, to] = turn++ % 2 === 0 ? [alice, bob] : [bob, alice];
          expectLength(await send(from, to, small), 100);
        },
      },
      overrides: { ...slow, maxIterations: 2 },
    });
  }
  return { entries };
}
