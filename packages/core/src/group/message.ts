/**
 * The group message and its header. spec/08-groups.md §5.
 *
 *   GroupMessage = [version: 1, type: 3, header: bstr, ciphertext: bstr,
 *                   signature: bstr .size 64]
 *   GroupHeader  = [groupId: bstr .size 32, epoch: uint, sender: Member,
 *                   generation: uint, iteration: uint]
 *
 *   ciphertext = ChaCha20-Poly1305(message key, nonce, pad(plaintext), ad = header)
 *   signature  = Ed25519(chain signing key, CBOR(["Parley v1 group message", header, ciphertext]))
 *
 * The header travels as its own byte string so that the bytes authenticated
 * (AEAD associated data, signature) are exactly the bytes on the wire. One
 * message is encrypted once and sent unchanged to every member device.
 *
 * This module only encodes and decodes.
 */
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint, readVersion } from '../codec/fields.ts';
import { AEAD_TAG_BYTES, ED25519_SIGNATURE_BYTES } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { Label, MessageType, PROTOCOL_VERSION } from '../labels.ts';
import { GROUP_ID_BYTES, MAX_GROUP_COUNTER, MAX_GROUP_HEADER_BYTES, MAX_GROUP_MESSAGE_BYTES } from './limits.ts';
import { type GroupMember, memberFromCbor, memberToCbor } from './member.ts';

export interface GroupHeader {
  readonly groupId: Uint8Array;
  /** The sender's epoch when its chain was created. */
  readonly epoch: number;
  readonly sender: GroupMember;
  /** Which of the sender's chains (it starts a new one at every rotation). */
  readonly generation: number;
  /** The message's index in that chain. */
  readonly iteration: number;
}

export interface GroupMessage {
  readonly header: GroupHeader;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeGroupHeader(h: GroupHeader): Uint8Array {
  return encodeCbor([h.groupId, h.epoch, memberToCbor(h.sender), h.generation, h.iteration]);
}

export function decodeGroupHeader(bytes: Uint8Array): GroupHeader {
  const f = readArray(decodeCbor(bytes, 'GroupHeader', MAX_GROUP_HEADER_BYTES), 'GroupHeader', 5);
  return {
    groupId: readBytes(f[0], 'header.groupId', GROUP_ID_BYTES),
    epoch: readUint(f[1], 'header.epoch', MAX_GROUP_COUNTER),
    sender: memberFromCbor(f[2], 'header.sender'),
    generation: readUint(f[3], 'header.generation', MAX_GROUP_COUNTER),
    iteration: readUint(f[4], 'header.iteration', MAX_GROUP_COUNTER),
  };
}

/** The bytes the chain's signing key signs. */
export function groupSignedBytes(headerBytes: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return encodeCbor([Label.groupMessage, headerBytes, ciphertext]);
}

export function encodeGroupMessage(headerBytes: Uint8Array, ciphertext: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeCbor([PROTOCOL_VERSION, MessageType.group, headerBytes, ciphertext, signature]);
}

/**
 * The outer frame every group message version shares,
 * `[version, type, header, ciphertext, signature]`: checks the version
 * (only `version`), the type and each field's shape and bound. Throws
 * MALFORMED, OVERSIZED or UNSUPPORTED_VERSION.
 */
export function decodeGroupFrame(
  bytes: Uint8Array,
  name: string,
  version: number,
  maxHeaderBytes: number,
): { headerBytes: Uint8Array; ciphertext: Uint8Array; signature: Uint8Array } {
  const v = decodeCbor(bytes, name, MAX_GROUP_MESSAGE_BYTES);
  if (!Array.isArray(v) || v.length < 2) fail('MALFORMED', `${name}: expected an array with version and type`);
  readVersion(v[0], name, [version]);
  if (v[1] !== MessageType.group) fail('MALFORMED', `${name}: wrong message type`);
  const f = readArray(v, name, 5);
  return {
    headerBytes: readBytes(f[2], 'header', { max: maxHeaderBytes }),
    ciphertext: readBytes(f[3], 'ciphertext', { min: AEAD_TAG_BYTES, max: MAX_GROUP_MESSAGE_BYTES }),
    signature: readBytes(f[4], 'signature', ED25519_SIGNATURE_BYTES),
  };
}

/** Decodes and checks every field's shape. Throws MALFORMED, OVERSIZED or UNSUPPORTED_VERSION. */
export function decodeGroupMessage(bytes: Uint8Array): GroupMessage {
  const frame = decodeGroupFrame(bytes, 'GroupMessage', PROTOCOL_VERSION, MAX_GROUP_HEADER_BYTES);
  return { header: decodeGroupHeader(frame.headerBytes), ...frame };
}

/** The header of a group message (all public), for routing it to the right `GroupSession`. */
export function peekGroupMessage(bytes: Uint8Array): GroupHeader {
  return decodeGroupMessage(bytes).header;
}
