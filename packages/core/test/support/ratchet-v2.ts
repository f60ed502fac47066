// Two ratchet v2 peers wired directly (no handshake): what the ratchet tests drive.
import type { CryptoProvider } from '../../src/crypto/provider.ts';
import { generateDhKeyPair } from '../../src/crypto/x25519.ts';
import type { FrankingSender } from '../../src/franking/tag.ts';
import type { PqPort } from '../../src/ratchet/v2/pq-port.ts';
import {
  type RatchetV2,
  type RatchetV2Options,
  initiateV2,
  ratchetDecryptV2,
  ratchetEncryptV2,
  respondV2,
} from '../../src/ratchet/v2/ratchet.ts';

export interface WireV2 {
  header: Uint8Array;
  ciphertext: Uint8Array;
  frankingTag: Uint8Array;
}

/** One side of a v2 conversation: holds its ratchet and replaces it only on success. */
export class PeerV2 {
  constructor(
    readonly p: CryptoProvider,
    public r: RatchetV2,
    readonly self: FrankingSender,
    readonly peer: FrankingSender,
    readonly options: RatchetV2Options = {},
  ) {}
  send(plaintext: Uint8Array): WireV2 {
    const out = ratchetEncryptV2(this.p, this.r, { plaintext, sender: this.self }, this.options);
    this.r = { ...this.r, state: out.state };
    return { header: out.header, ciphertext: out.ciphertext, frankingTag: out.frankingTag };
  }
  receive(m: WireV2): Uint8Array {
    const out = ratchetDecryptV2(this.p, this.r, { ...m, sender: this.peer }, this.options);
    this.r = { ...this.r, state: out.state };
    return out.plaintext;
  }
}

export const alice: FrankingSender = { accountKey: new Uint8Array(32).fill(0xa1), deviceId: 1 };
export const bob: FrankingSender = { accountKey: new Uint8Array(32).fill(0xb0), deviceId: 7 };

/** Alice initiates, Bob responds; Bob can send only after Alice's first message reached him. */
export function pairV2(p: CryptoProvider, pq?: PqPort, pb: CryptoProvider = p): { a: PeerV2; b: PeerV2 } {
  const sharedSecret = p.random(32);
  const associatedData = p.random(32);
  const spk = generateDhKeyPair(pb);
  const options = pq ? { pq } : {};
  const a = new PeerV2(p, initiateV2(p, { sharedSecret, associatedData, theirRatchetKey: spk.publicKey }, options), alice, bob, options);
  const b = new PeerV2(pb, respondV2(pb, { sharedSecret, associatedData, ownSignedPreKey: spk }, options), bob, alice, options);
  return { a, b };
}
