/** Sealed sender: the seal and delivery tokens. spec/12-sealed-sender.md. */
export {
  DELIVERY_TOKEN_BYTES,
  FRANKING_TAG_BYTES,
  MAX_SEAL_BYTES,
  MAX_SEAL_CANDIDATES,
  SEAL_CHECK_BYTES,
  SEAL_MESSAGE_TYPE,
  SEAL_VERSION,
  SealLabel,
  SealMode,
  TOKEN_HASH_BYTES,
} from './constants.ts';
export { type Seal, type SealedInner, decodeSeal, decodeSealedInner, encodeSeal, encodeSealedInner, looksLikeSeal } from './format.ts';
export {
  type OpenContactSealParams,
  type OpenedSeal,
  type SealCandidate,
  type SealContactParams,
  assertSealSender,
  openContactSeal,
  sealAad,
  sealInfo,
  sealToContact,
} from './seal.ts';
export { deliveryTokenHash, newDeliveryToken } from './token.ts';
export {
  GROUP_KEY_WRAP_BYTES,
  GROUP_KEY_WRAP_TYPE,
  GROUP_PAYLOAD_LABEL,
  type GroupKeyWrap,
  MAX_SEALED_GROUP_ENVELOPE_BYTES,
  SEALED_GROUP_ENVELOPE_TYPE,
  type SealedGroupEnvelope,
  decodeGroupKeyWrap,
  decodeSealedGroupEnvelope,
  encodeGroupKeyWrap,
  encodeSealedGroupEnvelope,
  isGroupKeyWrap,
  looksLikeSealedGroupEnvelope,
  openGroupPayload,
  sealGroupPayload,
} from './group.ts';
