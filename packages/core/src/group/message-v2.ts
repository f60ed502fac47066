/**
 * The version-2 group message: the v1 message with a franking tag in the
 * signed header and a franking key in the encrypted body.
 * spec/design/formats-v2.md §8.1, §6.1.
 *
 *   GroupMessageV2 = [version: 2, type: 3, header: bstr .cbor GroupHeaderV2,
 *                     ciphertext: bstr, signature: bstr .size 64]
 *   GroupHeaderV2  = [groupId, epoch, sender: Member, generation, iteration,
 *                     frankingTag: bstr .size 32]
 *   GroupBodyV2    = [frankingKey: bstr .size 32, plaintext: bstr,
 *                     attestation: bstr .size 64 / null]
 *
 *   ciphertext = ChaCha20-Poly1305(MK_i, N_i, pad(GroupBodyV2), ad = header)
 *   signature  = Ed25519(chain signing key, CBOR(["Parley v2 group message", header, ciphertext]))
 *
 * Chains, keys and distributions are those of v1 (08 §3-§4). This module
 * only encodes and decodes.
 */
import { type CborValue, decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import { ED25519_SIGNATURE_BYTES } from '../crypto/backend.ts';
import { FRANKING_KEY_BYTES, FRANKING_TAG_BYTES } from '../franking/tag.ts';
import { Label, MessageType } from '../labels.ts';
import { MAX_PLAINTEXT_BYTES } from '../limits.ts';
import { GROUP_ID_BYTES, MAX_GROUP_COUNTER, MAX_GROUP_MESSAGE_BYTES } from './limits.ts';
import { memberFromCbor, memberToCbor } from './member.ts';
import { type GroupHeader, decodeGroupFrame, peekGroupMessage } from './message.ts';

/** Wire version of the structures in this module. */
export const GROUP_MESSAGE_VERSION_2 = 2;

/** Largest encoded v2 header: under 130 bytes in practice (v1's 90 plus a 34-byte tag); §8.1 bounds it at 160. */
export const MAX_GROUP_HEADER_V2_BYTES = 160;

/** Bytes of an attestation (an Ed25519 signature, §6.3). */
export const ATTESTATION_BYTES = ED25519_SIGNATURE_BYTES;

export interface GroupHeaderV2 extends GroupHeader {
  readonly frankingTag: Uint8Array;
}

export interface GroupBodyV2 {
  readonly frankingKey: Uint8Array;
  readonly plaintext: Uint8Array;
  /** The sender's attestation under its moderator-token key (§6.3); null on identified sends. */
  readonly attestation: Uint8Array | null;
}

export interface GroupMessageV2 {
  readonly header: GroupHeaderV2;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeGroupHeaderV2(h: GroupHeaderV2): Uint8Array {
  return encodeCbor([h.groupId, h.epoch, memberToCbor(h.sender), h.generation, h.iteration, h.frankingTag]);
}

export function decodeGroupHeaderV2(bytes: Uint8Array): GroupHeaderV2 {
  const f = readArray(decodeCbor(bytes, 'GroupHeaderV2', MAX_GROUP_HEADER_V2_BYTES), 'GroupHeaderV2', 6);
  return {
    groupId: readBytes(f[0], 'header.groupId', GROUP_ID_BYTES),
    epoch: readUint(f[1], 'header.epoch', MAX_GROUP_COUNTER),
    sender: memberFromCbor(f[2], 'header.sender'),
    generation: readUint(f[3], 'header.generation', MAX_GROUP_COUNTER),
    iteration: readUint(f[4], 'header.iteration', MAX_GROUP_COUNTER),
    frankingTag: readBytes(f[5], 'header.frankingTag', FRANKING_TAG_BYTES),
  };
}

export function encodeGroupBodyV2(body: GroupBodyV2): Uint8Array {
  const v: CborValue = [body.frankingKey, body.plaintext, body.attestation];
  return encodeCbor(v);
}

/**
 * Strict decoding of an unpadded body. Only the sender can have produced
 * it (it authenticated under the chain's key), so a body that does not
 * decode is MALFORMED, as in 1:1 (§4.4).
 */
export function decodeGroupBodyV2(bytes: Uint8Array): GroupBodyV2 {
  const f = readArray(decodeCbor(bytes, 'GroupBodyV2', MAX_PLAINTEXT_BYTES + 128), 'GroupBodyV2', 3);
  return {
    frankingKey: readBytes(f[0], 'body.frankingKey', FRANKING_KEY_BYTES),
    plaintext: readBytes(f[1], 'body.plaintext', { max: MAX_PLAINTEXT_BYTES }),
    attestation: f[2] === null ? null : readBytes(f[2], 'body.attestation', ATTESTATION_BYTES),
  };
}

/** The bytes the chain's signing key signs: a v2 label, so no v1 signature verifies as v2 or the reverse. */
export function groupSignedBytesV2(headerBytes: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return encodeCbor([Label.groupMessage2, headerBytes, ciphertext]);
}

export function encodeGroupMessageV2(headerBytes: Uint8Array, ciphertext: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeCbor([GROUP_MESSAGE_VERSION_2, MessageType.group, headerBytes, ciphertext, signature]);
}

/** Decodes and checks every field's shape. Throws MALFORMED, OVERSIZED or UNSUPPORTED_VERSION. */
export function decodeGroupMessageV2(bytes: Uint8Array): GroupMessageV2 {
  const frame = decodeGroupFrame(bytes, 'GroupMessageV2', GROUP_MESSAGE_VERSION_2, MAX_GROUP_HEADER_V2_BYTES);
  return { header: decodeGroupHeaderV2(frame.headerBytes), ...frame };
}

/**
 * The wire version of a group message, read from its first two bytes
 * (`0x85`, then a version below 24) without decoding it; null when the bytes
 * do not start like a group message (the v1 decoder then says why).
 */
export function groupMessageVersion(bytes: Uint8Array): number | null {
  return bytes.length >= 2 && bytes[0] === 0x85 && (bytes[1] as number) < 24 ? (bytes[1] as number) : null;
}

/** The header of a group message of either version (all public), for routing it to the right `GroupSession`. */
export function peekAnyGroupMessage(bytes: Uint8Array): GroupHeader {
  return groupMessageVersion(bytes) === GROUP_MESSAGE_VERSION_2 ? decodeGroupMessageV2(bytes).header : peekGroupMessage(bytes);
}
