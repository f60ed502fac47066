/** Labels, info strings and limits, copied from spec/01-conventions.md §5-§6 (not imported from core). */
import { utf8 } from './hex.mjs';

export const VERSION = 1;

/** Session records are at format version 2 (spec/13-ratchet-v2.md §8); other records stay at 1. */
export const SESSION_RECORD_VERSION = 2;

export const Label = {
  deviceCertificate: 'Parley v1 device certificate',
  signedPreKey: 'Parley v1 signed prekey',
  kemPreKey: 'Parley v1 KEM prekey',
  associatedData: 'Parley v1 associated data',
  safetyNumber: 'Parley v1 safety number',
  groupMessage: 'Parley v1 group message',
  groupChain: 'Parley v1 group chain',
};

export const Info = {
  pqxdh: utf8('Parley_v1_PQXDH_X25519_ML-KEM-768_SHA-256_ChaCha20-Poly1305'),
  rootChain: utf8('Parley v1 root chain'),
};

export const ChainConstant = { messageKey: Uint8Array.of(0x01), nextChainKey: Uint8Array.of(0x02), messageNonce: Uint8Array.of(0x03) };

export const MessageType = { preKey: 1, ratchet: 2 };

export const RecordTag = {
  account: 'parley/account',
  deviceIdentity: 'parley/device-identity',
  prekeyStore: 'parley/prekey-store',
  sessionRecord: 'parley/session-record',
};

export const Limits = {
  MAX_FORWARD_JUMP: 2000,
  MAX_SKIPPED_KEYS: 2000,
  MAX_RECEIVER_CHAINS: 5,
  MAX_ARCHIVED_SESSIONS: 40,
  MAX_MESSAGE_BYTES: 2 ** 20 + 2 ** 16 + 4096,
  MAX_BUNDLE_BYTES: 4096,
  MAX_RECORD_BYTES: 64 * 2 ** 20,
  MAX_REMEMBERED_BASE_KEYS: 10000,
  // 05 §6.4 (D9): what a prekey store holds at most.
  MAX_STORED_SIGNED_PREKEYS: 100,
  MAX_STORED_ONE_TIME_PREKEYS: 10000,
  MAX_STORED_KEM_PREKEYS: 1000,
  SAFETY_NUMBER_ITERATIONS: 5200,
  MAX_DEVICE_ID: 2 ** 31 - 1,
  MAX_PREKEY_ID: 2 ** 32 - 1,
  MAX_HEADER_BYTES: 64,
  MAX_MESSAGE_COUNTER: 2 ** 32 - 2,
  SAFETY_NUMBER_PAYLOAD_BYTES: 256,
};

export const Sizes = { mlkemPublicKey: 1184, mlkemSecretKey: 2400, mlkemCiphertext: 1088, tag: 16 };
