/**
 * Labels and limits of the seal and of delivery tokens.
 * spec/12-sealed-sender.md §2 (labels), §9 (limits).
 *
 * Kept here rather than in labels.ts/limits.ts so the v2 work landing in
 * parallel (ratchet v2, franking, versions) does not collide on one file;
 * every name is also listed in spec 12.
 */
import { MAX_MESSAGE_BYTES } from '../limits.ts';

/** Version field of a Seal (a v2 structure: it carries v1 and v2 messages alike). */
export const SEAL_VERSION = 2;
/** MessageType of a Seal (spec/design/formats-v2.md §2). */
export const SEAL_MESSAGE_TYPE = 5;

/** Seal modes: 1 = contact token (HPKE auth mode); 2 = group-member token (base mode, sender in the group layer). */
export const SealMode = { contact: 1, member: 2 } as const;
export type SealMode = (typeof SealMode)[keyof typeof SealMode];

export const SealLabel = {
  /** HPKE `info` of a seal: CBOR([label, recipientCertificateHash]). */
  seal: 'Parley v2 seal',
  /** HPKE exporter context of the seal's check value. */
  sealCheck: 'Parley v2 seal check',
  /** Delivery token hash: SHA-256(CBOR([label, recipientAccount, token])). */
  deliveryToken: 'Parley v2 delivery token',
} as const;

/** Bytes of a delivery token (random, drawn by the recipient's device). */
export const DELIVERY_TOKEN_BYTES = 32;
/** Bytes of a token hash, the only form the relay ever sees at rest. */
export const TOKEN_HASH_BYTES = 32;
/** Bytes of a franking tag carried in the seal's AAD (null until franking lands). */
export const FRANKING_TAG_BYTES = 32;
/** Bytes of the check value: enough to rule out a wrong candidate (2^-64), small on the wire. */
export const SEAL_CHECK_BYTES = 8;

/**
 * Most sender devices a mode-1 open tries. Equal to the relay's devices per
 * account (spec/09-relay.md §8), so every device of a contact can be tried;
 * each try is one X25519 and one HPKE key schedule, so a hostile seal costs
 * at most 32 of them.
 */
export const MAX_SEAL_CANDIDATES = 32;

/**
 * Largest Seal accepted: the largest message plus room for the seal's own
 * framing (about 70 bytes) and a SealedInner. Bounds decoding before any
 * crypto runs.
 */
export const MAX_SEAL_BYTES = MAX_MESSAGE_BYTES + 256;
