/**
 * Peer: Signal's libsignal-client 0.103 (Rust, through its Node native
 * module), driven with in-memory stores that extend its abstract store
 * classes. Issue 5 (peers: libsignal-client session setup, same-direction,
 * ping-pong, sender-key group encrypt/decrypt).
 *
 * Not like for like, in both directions: every session is PQXDH with
 * ML-KEM-1024 (Parley: ML-KEM-768), and every message also carries its
 * post-quantum ratchet (SPQR), which cannot be turned off; on the other
 * hand its crypto is native Rust, and its stores are async (four promise
 * round trips per message, each cloning the session record), which is how
 * applications must call it. The in-memory stores keep the objects they are
 * given (no serialization), the cheapest store possible.
 */
import {
  CiphertextMessageType,
  type Direction,
  IdentityChange,
  IdentityKeyPair,
  IdentityKeyStore,
  KEMKeyPair,
  KyberPreKeyRecord,
  KyberPreKeyStore,
  PreKeyBundle,
  PreKeyRecord,
  PreKeySignalMessage,
  PreKeyStore,
  PrivateKey,
  ProtocolAddress,
  type PublicKey,
  SenderKeyDistributionMessage,
  type SenderKeyRecord,
  SenderKeyStore,
  type SessionRecord,
  SessionStore,
  SignalMessage,
  SignedPreKeyRecord,
  SignedPreKeyStore,
  type Uuid,
  groupDecrypt,
  groupEncrypt,
  processPreKeyBundle,
  processSenderKeyDistributionMessage,
  signalDecrypt,
  signalDecryptPreKey,
  signalEncrypt,
} from '@signalapp/libsignal-client';
import type { Entry } from '../runner.ts';
import type { PeerSet } from './types.ts';

const SUBJECT = { section: 'peers', subject: 'libsignal-client' } as const;
const PQ_NOTE = 'always PQXDH with ML-KEM-1024, plus its SPQR post-quantum ratchet on every message (no switch to turn it off)';

const key = (a: ProtocolAddress) => `${a.name()}.${a.deviceId()}`;

class MemorySessionStore extends SessionStore {
  readonly #sessions = new Map<string, SessionRecord>();
  async saveSession(name: ProtocolAddress, record: SessionRecord): Promise<void> {
    this.#sessions.set(key(name), record);
  }
  async getSession(name: ProtocolAddress): Promise<SessionRecord | null> {
    return this.#sessions.get(key(name)) ?? null;
  }
  async getExistingSessions(addresses: ProtocolAddress[]): Promise<SessionRecord[]> {
    return addresses.map((a) => {
      const s = this.#sessions.get(key(a));
      if (!s) throw new Error(`no session for ${key(a)}`);
      return s;
    });
  }
}

class MemoryIdentityStore extends IdentityKeyStore {
  readonly #known = new Map<string, PublicKey>();
  constructor(
    readonly identity: IdentityKeyPair,
    readonly registrationId: number,
  ) {
    super();
  }
  async getIdentityKey(): Promise<PrivateKey> {
    return this.identity.privateKey;
  }
  async getLocalRegistrationId(): Promise<number> {
    return this.registrationId;
  }
  async saveIdentity(name: ProtocolAddress, k: PublicKey): Promise<IdentityChange> {
    const old = this.#known.get(key(name));
    this.#known.set(key(name), k);
    return old && !old.equals(k) ? IdentityChange.ReplacedExisting : IdentityChange.NewOrUnchanged;
  }
  async isTrustedIdentity(name: ProtocolAddress, k: PublicKey, _direction: Direction): Promise<boolean> {
    const old = this.#known.get(key(name));
    return !old || old.equals(k);
  }
  async getIdentity(name: ProtocolAddress): Promise<PublicKey | null> {
    return this.#known.get(key(name)) ?? null;
  }
}

class MemoryPreKeyStore extends PreKeyStore {
  readonly keys = new Map<number, PreKeyRecord>();
  async savePreKey(id: number, record: PreKeyRecord): Promise<void> {
    this.keys.set(id, record);
  }
  async getPreKey(id: number): Promise<PreKeyRecord> {
    const k = this.keys.get(id);
    if (!k) throw new Error(`no prekey ${id}`);
    return k;
  }
  async removePreKey(id: number): Promise<void> {
    this.keys.delete(id);
  }
}

class MemorySignedPreKeyStore extends SignedPreKeyStore {
  readonly keys = new Map<number, SignedPreKeyRecord>();
  async saveSignedPreKey(id: number, record: SignedPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
  }
  async getSignedPreKey(id: number): Promise<SignedPreKeyRecord> {
    const k = this.keys.get(id);
    if (!k) throw new Error(`no signed prekey ${id}`);
    return k;
  }
}

class MemoryKyberPreKeyStore extends KyberPreKeyStore {
  readonly keys = new Map<number, KyberPreKeyRecord>();
  async saveKyberPreKey(id: number, record: KyberPreKeyRecord): Promise<void> {
    this.keys.set(id, record);
  }
  async getKyberPreKey(id: number): Promise<KyberPreKeyRecord> {
    const k = this.keys.get(id);
    if (!k) throw new Error(`no kyber prekey ${id}`);
    return k;
  }
  async markKyberPreKeyUsed(id: number, _signedPreKeyId: number, _baseKey: PublicKey): Promise<void> {
    // One-time Kyber prekeys are deleted once used, as Parley deletes its one-time KEM prekeys.
    this.keys.delete(id);
  }
}

class MemorySenderKeyStore extends SenderKeyStore {
  readonly #keys = new Map<string, SenderKeyRecord>();
  async saveSenderKey(sender: ProtocolAddress, distributionId: Uuid, record: SenderKeyRecord): Promise<void> {
    this.#keys.set(`${key(sender)}/${distributionId}`, record);
  }
  async getSenderKey(sender: ProtocolAddress, distributionId: Uuid): Promise<SenderKeyRecord | null> {
    return this.#keys.get(`${key(sender)}/${distributionId}`) ?? null;
  }
}

interface Device {
  readonly address: ProtocolAddress;
  readonly identity: MemoryIdentityStore;
  sessions: MemorySessionStore;
  readonly preKeys: MemoryPreKeyStore;
  readonly signedPreKeys: MemorySignedPreKeyStore;
  readonly kyberPreKeys: MemoryKyberPreKeyStore;
}

function device(name: string, registrationId: number): Device {
  return {
    address: ProtocolAddress.new(name, 1),
    identity: new MemoryIdentityStore(IdentityKeyPair.generate(), registrationId),
    sessions: new MemorySessionStore(),
    preKeys: new MemoryPreKeyStore(),
    signedPreKeys: new MemorySignedPreKeyStore(),
    kyberPreKeys: new MemoryKyberPreKeyStore(),
  };
}

interface BundleKeys {
  readonly preKeyId: number;
  readonly preKey: PublicKey;
  readonly kyberId: number;
  readonly kyberPublic: ReturnType<KEMKeyPair['getPublicKey']>;
  readonly kyberSignature: Uint8Array<ArrayBuffer>;
}

const SIGNED_ID = 1;
let nextId = 1;

/** Bob publishes a signed prekey once and a one-time EC + Kyber prekey per session. */
function publishSignedPreKey(bob: Device): { publicKey: PublicKey; signature: Uint8Array<ArrayBuffer> } {
  const priv = PrivateKey.generate();
  const signature = bob.identity.identity.privateKey.sign(priv.getPublicKey().serialize());
  bob.signedPreKeys.keys.set(SIGNED_ID, SignedPreKeyRecord.new(SIGNED_ID, Date.now(), priv.getPublicKey(), priv, signature));
  return { publicKey: priv.getPublicKey(), signature };
}

function publishOneTimeKeys(bob: Device): BundleKeys {
  const id = nextId++;
  const priv = PrivateKey.generate();
  bob.preKeys.keys.set(id, PreKeyRecord.new(id, priv.getPublicKey(), priv));
  const kyber = KEMKeyPair.generate();
  const kyberSignature = bob.identity.identity.privateKey.sign(kyber.getPublicKey().serialize());
  bob.kyberPreKeys.keys.set(id, KyberPreKeyRecord.new(id, Date.now(), kyber, kyberSignature));
  return { preKeyId: id, preKey: priv.getPublicKey(), kyberId: id, kyberPublic: kyber.getPublicKey(), kyberSignature };
}

async function encrypt(from: Device, to: Device, message: Uint8Array<ArrayBuffer>) {
  return signalEncrypt(message, to.address, from.address, from.sessions, from.identity);
}

async function decrypt(to: Device, from: Device, bytes: Uint8Array<ArrayBuffer>, type: number): Promise<Uint8Array> {
  if (type === CiphertextMessageType.PreKey) {
    return signalDecryptPreKey(
      PreKeySignalMessage.deserialize(bytes),
      from.address,
      to.address,
      to.sessions,
      to.identity,
      to.preKeys,
      to.signedPreKeys,
      to.kyberPreKeys,
    );
  }
  return signalDecrypt(SignalMessage.deserialize(bytes), from.address, to.address, to.sessions, to.identity);
}

function expectLength(plaintext: Uint8Array, length: number): void {
  if (plaintext.length !== length) throw new Error(`libsignal round trip returned ${plaintext.length} bytes, expected ${length}`);
}

function bytes(length: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + 7) & 0xff;
  return out;
}

/** Bob's bundle from his signed prekey and one set of one-time keys. */
function bundleOf(bob: Device, spk: { publicKey: PublicKey; signature: Uint8Array<ArrayBuffer> }, k: BundleKeys): PreKeyBundle {
  return PreKeyBundle.new(
    bob.identity.registrationId,
    1,
    k.preKeyId,
    k.preKey,
    SIGNED_ID,
    spk.publicKey,
    spk.signature,
    bob.identity.identity.publicKey,
    k.kyberId,
    k.kyberPublic,
    k.kyberSignature,
  );
}

/** Alice and Bob with a session each way, past the PreKey stage. */
async function establish(alice: Device, bob: Device, spk: { publicKey: PublicKey; signature: Uint8Array<ArrayBuffer> }) {
  const k = publishOneTimeKeys(bob);
  const bundle = bundleOf(bob, spk, k);
  await processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identity);
  const first = await encrypt(alice, bob, bytes(16));
  await decrypt(bob, alice, first.serialize(), first.type());
  const reply = await encrypt(bob, alice, bytes(16));
  await decrypt(alice, bob, reply.serialize(), reply.type());
}

/** A fresh Alice and Bob (own identities and stores), so interleaved scenarios never share state. */
function pair(): { alice: Device; bob: Device; spk: { publicKey: PublicKey; signature: Uint8Array<ArrayBuffer> } } {
  const alice = device('alice', 1001);
  const bob = device('bob', 1002);
  return { alice, bob, spk: publishSignedPreKey(bob) };
}

/**
 * Bytes per message on the wire (the serialized SignalMessage), averaged over `messages` sent
 * untimed from a fresh session: `ping-pong` alternates senders, `same-direction` sends one way.
 * SPQR's chunks ride on these messages, so the average counts them once enough messages are sent
 * for its ML-KEM exchanges to complete (issue 17: bytes per message next to Parley v1 and v2).
 */
export async function libsignalMessageBytes(kind: 'ping-pong' | 'same-direction', messages: number, length = 100): Promise<number[]> {
  const { alice, bob, spk } = pair();
  await establish(alice, bob, spk);
  const body = bytes(length);
  const sizes: number[] = [];
  for (let i = 0; i < messages; i++) {
    const [from, to] = kind === 'ping-pong' && i % 2 === 1 ? [bob, alice] : [alice, bob];
    const m = await encrypt(from, to, body);
    sizes.push(m.serialize().length);
    expectLength(await decrypt(to, from, m.serialize(), m.type()), length);
  }
  return sizes;
}

/** The libsignal-client entries: setup, same-direction, ping-pong, sender-key group message. */
export async function libsignalEntries(quick: boolean): Promise<PeerSet> {
  const small = bytes(100);
  const entries: Entry[] = [];

  {
    const { alice, bob, spk } = pair();
    entries.push({
      meta: { ...SUBJECT, op: 'setup', label: 'setup: bundle, PQXDH, 1st msg, responder', note: PQ_NOTE },
      task: {
        async: true,
        prepare: (n: number) => Array.from({ length: n }, () => publishOneTimeKeys(bob)),
        async run(keys: BundleKeys[], i: number) {
          const k = keys[i] as BundleKeys;
          // Fresh session stores: each setup starts from no session, as Parley's does.
          alice.sessions = new MemorySessionStore();
          bob.sessions = new MemorySessionStore();
          const bundle = bundleOf(bob, spk, k);
          await processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identity);
          const first = await encrypt(alice, bob, small);
          if (first.type() !== CiphertextMessageType.PreKey) throw new Error('expected a PreKey message');
          expectLength(await decrypt(bob, alice, first.serialize(), first.type()), 100);
        },
      },
      overrides: { maxIterations: quick ? 5 : 40 },
    });
  }

  for (const [op, length, label] of [
    ['same-direction-100', 100, 'same-direction encrypt+decrypt, 100 B'],
    ['same-direction-1024', 1024, 'same-direction encrypt+decrypt, 1 KiB'],
  ] as const) {
    const { alice, bob, spk } = pair();
    await establish(alice, bob, spk);
    const body = bytes(length);
    const probe = await encrypt(alice, bob, body);
    await decrypt(bob, alice, probe.serialize(), probe.type());
    entries.push({
      meta: { ...SUBJECT, op, label, note: `${probe.serialize().length} B on the wire; ${PQ_NOTE}` },
      task: {
        async: true,
        async run() {
          const m = await encrypt(alice, bob, body);
          expectLength(await decrypt(bob, alice, m.serialize(), m.type()), length);
        },
      },
    });
  }

  {
    const { alice, bob, spk } = pair();
    await establish(alice, bob, spk);
    let turn = 0;
    entries.push({
      meta: { ...SUBJECT, op: 'ping-pong', label: 'ping-pong, 100 B (DH ratchet step per message)', note: PQ_NOTE },
      task: {
        async: true,
        async run() {
          // A turn counter, not the sample index: samples may hold an odd number of iterations.
          const [from, to] = turn++ % 2 === 0 ? [alice, bob] : [bob, alice];
          const m = await encrypt(from, to, small);
          expectLength(await decrypt(to, from, m.serialize(), m.type()), 100);
        },
      },
      // Whole SPQR periods in every sample (about 90 messages here), as Parley v2's row (parley/ratchet-v2.ts).
      overrides: { minIterations: 100 },
    });
  }

  {
    const { alice } = pair();
    const distributionId: Uuid = '4f1c2b3a-5d6e-4f70-8a9b-0c1d2e3f4a5b';
    const aliceKeys = new MemorySenderKeyStore();
    const bobKeys = new MemorySenderKeyStore();
    const distribution = await SenderKeyDistributionMessage.create(alice.address, distributionId, aliceKeys);
    await processSenderKeyDistributionMessage(alice.address, SenderKeyDistributionMessage.deserialize(distribution.serialize()), bobKeys);
    entries.push({
      meta: {
        ...SUBJECT,
        op: 'group-message',
        label: 'sender-key encrypt + one member decrypt, 100 B',
        note: 'any group size: one ciphertext per message; every message XEdDSA-signed and verified',
      },
      task: {
        async: true,
        async run() {
          const m = await groupEncrypt(alice.address, distributionId, aliceKeys, small);
          expectLength(await groupDecrypt(alice.address, bobKeys, m.serialize()), 100);
        },
      },
    });
  }
  return { entries };
}
