/**
 * The protocol's derivations spelled out step by step with a crypto backend,
 * so the generator can write every intermediate value into the vectors and
 * check that core's sessions produced exactly the bytes these steps give.
 * spec/03-handshake.md §3-§4 and spec/04-double-ratchet.md §2.
 */
import {
  type CryptoBackend,
  type DeviceCertificate,
  Label,
  certificateToCbor,
  concatBytes,
  encodeCbor,
  isLowOrderX25519,
} from '@parley/core';
import { ChainConstant, Info } from '../../../packages/core/src/labels.ts';

export { Info };

export function dh(b: CryptoBackend, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  if (isLowOrderX25519(publicKey)) throw new Error('generator: low-order key in a valid vector');
  return b.x25519(privateKey, publicKey);
}

export interface PqxdhValues {
  dh1: Uint8Array;
  dh2: Uint8Array;
  dh3: Uint8Array;
  dh4: Uint8Array | null;
  kemCiphertext: Uint8Array;
  kemSharedSecret: Uint8Array;
  ikm: Uint8Array;
  salt: Uint8Array;
  info: Uint8Array;
  sharedSecret: Uint8Array;
  associatedDataInput: Uint8Array;
  associatedData: Uint8Array;
}

/** The initiator's view of PQXDH from explicit keys and randomness. */
export function pqxdh(
  b: CryptoBackend,
  args: {
    initiatorIdentityPrivateKey: Uint8Array;
    ephemeralPrivateKey: Uint8Array;
    kemEncapsulationRandomness: Uint8Array;
    initiatorCertificate: DeviceCertificate;
    responderCertificate: DeviceCertificate;
    signedPreKey: Uint8Array;
    oneTimePreKey: Uint8Array | null;
    kemPreKey: Uint8Array;
  },
): PqxdhValues {
  const dh1 = dh(b, args.initiatorIdentityPrivateKey, args.signedPreKey);
  const dh2 = dh(b, args.ephemeralPrivateKey, args.responderCertificate.identityKey);
  const dh3 = dh(b, args.ephemeralPrivateKey, args.signedPreKey);
  const dh4 = args.oneTimePreKey ? dh(b, args.ephemeralPrivateKey, args.oneTimePreKey) : null;
  const kem = b.mlkemEncapsulate(args.kemPreKey, args.kemEncapsulationRandomness);
  const ikm = concatBytes(new Uint8Array(32).fill(0xff), dh1, dh2, dh3, ...(dh4 ? [dh4] : []), kem.sharedSecret);
  const salt = new Uint8Array(32);
  const sharedSecret = b.hkdfSha256(ikm, salt, Info.pqxdh, 32);
  const associatedDataInput = encodeCbor([
    Label.associatedData,
    certificateToCbor(args.initiatorCertificate),
    certificateToCbor(args.responderCertificate),
  ]);
  return {
    dh1,
    dh2,
    dh3,
    dh4,
    kemCiphertext: kem.ciphertext,
    kemSharedSecret: kem.sharedSecret,
    ikm,
    salt,
    info: Info.pqxdh,
    sharedSecret,
    associatedDataInput,
    associatedData: b.sha256(associatedDataInput),
  };
}

/** KDF_RK: HKDF-SHA256(salt = root key, ikm = DH output, info = "Parley v1 root chain", 64) split in two. */
export function kdfRoot(b: CryptoBackend, rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const out = b.hkdfSha256(dhOutput, rootKey, Info.rootChain, 64);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32) };
}

/** KDF_CK: a chain key's message key, nonce and successor. */
export function chainStep(b: CryptoBackend, chainKey: Uint8Array): { messageKey: Uint8Array; nonce: Uint8Array; nextChainKey: Uint8Array } {
  return {
    messageKey: b.hmacSha256(chainKey, ChainConstant.messageKey),
    nonce: b.hmacSha256(chainKey, ChainConstant.messageNonce).slice(0, 12),
    nextChainKey: b.hmacSha256(chainKey, ChainConstant.nextChainKey),
  };
}
