/**
 * Domain-separation labels and protocol constants that appear on the wire or
 * in key derivations. Changing any of them is a wire break.
 * spec/01-conventions.md §5 lists them.
 */
import { utf8 } from './bytes.ts';

/** Wire and record format version carried by every structure. */
export const PROTOCOL_VERSION = 1;

export const Label = {
  deviceCertificate: 'Parley v1 device certificate',
  signedPreKey: 'Parley v1 signed prekey',
  kemPreKey: 'Parley v1 KEM prekey',
  associatedData: 'Parley v1 associated data',
  safetyNumber: 'Parley v1 safety number',
  groupDistribution: 'Parley v1 group sender key',
  groupMessage: 'Parley v1 group message',
  groupChain: 'Parley v1 group chain',
  /** v2 franking tag (spec/design/formats-v2.md §6.1). */
  frankingTag: 'Parley v2 franking tag',
  /** v2 group message signature input (spec/design/formats-v2.md §8.1). */
  groupMessage2: 'Parley v2 group message',
  /** v2 relay frank (spec/design/formats-v2.md §6.2). */
  relayFrank: 'Parley v2 relay frank',
  /** v2 moderator token signature (spec/design/formats-v2.md §6.3). */
  moderatorToken: 'Parley v2 moderator token',
  /** v2 sender attestation over a franking tag (spec/design/formats-v2.md §6.3). */
  frankingSignature: 'Parley v2 franking signature',
  /** Signed prekey with the versions its device implements (spec/design/formats-v2.md §3.1). */
  signedPreKey2: 'Parley v2 signed prekey',
  /** Associated data of a version-2 session: both certificates and both version sets (§3.2). */
  associatedData2: 'Parley v2 associated data',
} as const;

/** HKDF `info` strings (bytes). */
export const Info = {
  pqxdh: utf8('Parley_v1_PQXDH_X25519_ML-KEM-768_SHA-256_ChaCha20-Poly1305'),
  rootChain: utf8('Parley v1 root chain'),
  /** Ratchet v2: the initial header keys from SK (spec/13-ratchet-v2.md §2). */
  headerKeys: utf8('Parley v2 header keys'),
  /** Ratchet v2: KDF_RK2 (spec/13-ratchet-v2.md §2). */
  rootChain2: utf8('Parley v2 root chain'),
  /** PQ ratchet: binds an exchange's ML-KEM secret to its number and transcript (formats-v2 §5.5). */
  pqExchange: utf8('Parley v2 pq exchange'),
  /** HKDF info of the version-2 handshake (spec/03-handshake.md §2.1 with this info). */
  pqxdh2: utf8('Parley_v2_PQXDH_X25519_ML-KEM-768_SHA-256_ChaCha20-Poly1305'),
} as const;

/** Chain-key HMAC inputs (Double Ratchet KDF_CK). Distinct single bytes. */
export const ChainConstant = {
  messageKey: Uint8Array.of(0x01),
  nextChainKey: Uint8Array.of(0x02),
  messageNonce: Uint8Array.of(0x03),
} as const;

/** Message type tags in wire messages. */
export const MessageType = {
  preKey: 1,
  ratchet: 2,
  group: 3,
  distribution: 4,
} as const;
