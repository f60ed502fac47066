// v2 sessions at the record level, with the test standing in for the v2 handshake
// (handshake/ will call startSessionV2 / acceptSessionV2 the same way): each
// initiation draws SK and AD2 and remembers them by base key, so the responder's
// side can accept the first PreKeyMessageV2.
import { type CryptoProvider, type DecryptResult, SessionRecord, decodeMessage } from '../../src/index.ts';
import { type DhKeyPair, generateDhKeyPair } from '../../src/crypto/x25519.ts';
import { initiateV2, respondV2 } from '../../src/ratchet/v2/ratchet.ts';
import type { Party } from './parties.ts';
import { toHex } from '../../src/index.ts';

export interface SentV2 {
  message: Uint8Array;
  frankingTag: Uint8Array;
}

interface Pending {
  sharedSecret: Uint8Array;
  associatedData: Uint8Array;
  spk: DhKeyPair;
}

const versions = { local: [1, 2], remote: [1, 2] };

/** The shared handshake secrets of every initiation in a test, by base key. */
export class HandshakeStandIn {
  readonly #byBaseKey = new Map<string, Pending>();
  constructor(readonly p: CryptoProvider) {}

  /** `from` starts a v2 session to `to` on `record`. */
  start(record: SessionRecord, from: Party, to: Party): void {
    const p = this.p;
    const pending: Pending = { sharedSecret: p.random(32), associatedData: p.random(32), spk: generateDhKeyPair(p) };
    const baseKey = generateDhKeyPair(p).publicKey;
    this.#byBaseKey.set(toHex(baseKey), pending);
    record.startSessionV2(
      {
        remoteCertificate: to.device.certificate,
        localCertificate: from.device.certificate,
        ratchet: initiateV2(from.provider, { ...pending, theirRatchetKey: pending.spk.publicKey }),
        baseKey,
        use: { baseKey, signedPreKeyId: 1, oneTimePreKeyId: null, kemPreKeyId: 1 },
        kemCiphertext: new Uint8Array(1088),
        versions,
      },
      { allowIdentityChange: true },
    );
  }

  /** Delivers to `record` of `me`: a first PreKeyMessageV2 of an unknown session goes through acceptSessionV2. */
  deliver(record: SessionRecord, me: Party, m: SentV2): DecryptResult {
    const decoded = decodeMessage(m.message);
    if (decoded.type === 'prekey2' && !record.hasBaseKey(decoded.use.baseKey)) {
      const pending = this.#byBaseKey.get(toHex(decoded.use.baseKey));
      if (!pending) throw new Error('unknown base key');
      return record.acceptSessionV2(
        decoded,
        {
          ratchet: respondV2(me.provider, { ...pending, ownSignedPreKey: pending.spk }),
          localCertificate: me.device.certificate,
          versions,
          frankingTag: m.frankingTag,
        },
        me.prekeys,
        { allowIdentityChange: true },
      );
    }
    return record.decrypt(m.message, { frankingTag: m.frankingTag });
  }
}

export function sendV2(record: SessionRecord, plaintext: Uint8Array): SentV2 {
  const out = record.encryptWithTag(plaintext);
  if (!out.frankingTag) throw new Error('not a v2 session');
  return { message: out.message, frankingTag: out.frankingTag };
}

/** Alice starts a v2 session to Bob and Bob accepts her first message. */
export function establishV2(hs: HandshakeStandIn, alice: Party, bob: Party): { a: SessionRecord; b: SessionRecord } {
  const a = new SessionRecord(alice.provider);
  hs.start(a, alice, bob);
  const b = new SessionRecord(bob.provider);
  hs.deliver(b, bob, sendV2(a, new Uint8Array([0])));
  return { a, b };
}
