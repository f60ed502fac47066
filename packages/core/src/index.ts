/**
 * @parley/core: the Parley protocol. No I/O, no clock, no global state.
 * Start with spec/README.md; every module cites the section it implements.
 */
export { ErrorCode, ParleyError, isParleyError, type ErrorDetails } from './errors.ts';
export { bytesEqual, compareBytes, concatBytes, constantTimeEqual, fromHex, fromUtf8, toHex, utf8 } from './bytes.ts';
export type { CryptoBackend, KemKeyPair, KemEncapsulation } from './crypto/backend.ts';
export { nobleBackend } from './crypto/noble.ts';
export { type WebCryptoCurves, webCryptoCurves } from './crypto/webcrypto.ts';
export {
  type AsyncCurveOptions,
  type AsyncCurveStats,
  type AsyncCurves,
  MAX_ASYNC_CURVE_OPS,
  type PreparedCurves,
  prepareAsyncCurves,
  runWithAsyncCurves,
} from './crypto/async-curves.ts';
export { type CryptoProvider, type RandomSource, cryptoProvider, defaultProvider } from './crypto/provider.ts';
export { checkX25519PublicKey, isLowOrderX25519 } from './crypto/x25519.ts';
export { type StreamingDigest, streamingSha256 } from './crypto/streaming-sha256.ts';
export { encodeCbor, decodeCbor, type CborValue } from './codec/cbor.ts';
/** decodeCbor without its copies (the same decoder; byte strings are views into the input): the relay's per-frame path. */
export { type ReadCborOptions, readCbor } from './codec/cbor-reader.ts';
/** The field readers core decodes with (spec/01-conventions.md §2.3), for the SDK's own structures to throw the same codes. */
export * as fields from './codec/fields.ts';
export * as limits from './limits.ts';
export { Label, PROTOCOL_VERSION, MessageType } from './labels.ts';
export {
  type DeviceCertificate,
  decodeCertificate,
  encodeCertificate,
  verifyCertificate,
  certificateFromCbor,
  certificateToCbor,
  certificatesEqual,
} from './keys/certificate.ts';
export { Account, DeviceIdentity, Ed25519KeyPair, X25519KeyPair } from './keys/identity.ts';
export {
  type DeviceList,
  type ListVerdict,
  DEVICE_LIST_LABEL,
  DEVICE_LIST_VERSION,
  MAX_DEVICE_LIST_BYTES,
  MAX_DEVICE_LIST_REVISION,
  MAX_LISTED_DEVICES,
  certificateHash,
  compareDeviceLists,
  decodeSignedDeviceList,
  listsCertificate,
  listsCertificateHash,
  signDeviceList,
} from './keys/device-list.ts';
export {
  type AnyPreKeyBundle,
  type KemPreKeyPublic,
  type OneTimePreKeyPublic,
  type PreKeyBundle,
  type PreKeyBundleV2,
  type SignedPreKeyV2Public,
  BUNDLE_V2_VERSION,
  decodeAnyBundle,
  decodeSignedPreKeyV2,
  encodeSignedPreKeyV2,
  isBundleV2,
  verifySignedPreKeyV2,
  type PreKeyGenerationOptions,
  type PreKeyUse,
  type SignedPreKeyPublic,
  PreKeyStore,
  decodeBundle,
  decodeKemPreKey,
  decodeOneTimePreKey,
  decodeSignedPreKey,
  encodeBundle,
  encodeKemPreKey,
  encodeOneTimePreKey,
  encodeSignedPreKey,
  verifyBundle,
  verifyKemPreKey,
  verifySignedPreKey,
} from './keys/prekeys.ts';
export { type SafetyNumber, safetyNumber, verifyScannedSafetyNumber } from './keys/safety-number.ts';
export { MAX_ADVERTISED_VERSIONS, SUPPORTED_VERSIONS } from './keys/versions.ts';
export { pad, unpad, paddedLength } from './ratchet/padding.ts';
export { type Message, type PreKeyMessage, type RatchetMessage, decodeMessage } from './session/messages.ts';
export {
  type DecryptContext,
  type DecryptResult,
  type EncryptedMessage,
  type InitiateOptions,
  type NewSessionV2,
  SESSION_RECORD_VERSION,
  SessionRecord,
} from './session/record.ts';
export { type PreKeyMessageV2, type RatchetMessageV2, encodePreKeyMessageV2 } from './session/messages.ts';
export { type InitiateV2Input, type RatchetV2, type RespondV2Input, initiateV2, respondV2 } from './ratchet/v2/ratchet.ts';
export { MAX_HEADER_TRIALS_PER_SESSION, MAX_SKIPPED_HEADER_KEYS } from './ratchet/v2/limits.ts';
export { type FrankingSender, checkFrankingTag, frankingTag } from './franking/tag.ts';
export * from './group/index.ts';
export * from './franking/index.ts';
export * as seal from './seal/index.ts';
/** The attachment format's shared pieces (spec/11-attachments.md): the client encrypts with them, the relay checks reported files. */
export * as attachment from './attachment/index.ts';
