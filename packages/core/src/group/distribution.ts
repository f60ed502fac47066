/**
 * The sender-key distribution message. spec/08-groups.md §4.
 *
 *   SenderKeyDistribution = [version: 1, type: 4, groupId: bstr .size 32,
 *                            epoch: uint, sender: Member, generation: uint,
 *                            iteration: uint, chainKey: bstr .size 32,
 *                            signingKey: bstr .size 32]
 *
 * It hands one sender chain to one member device: the chain key for message
 * `iteration` (so earlier messages stay out of reach) and the public key that
 * signs the chain's messages. It holds a secret and is never sent in the
 * clear: it is the plaintext of a one-to-one session message, and the
 * receiver checks `sender` against that session's peer certificate.
 *
 * This module only encodes and decodes; the acceptance rules live in
 * receive.ts.
 */
import { wipe } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint, readVersion } from '../codec/fields.ts';
import { fail } from '../errors.ts';
import { MessageType, PROTOCOL_VERSION } from '../labels.ts';
import { GROUP_ID_BYTES, MAX_DISTRIBUTION_BYTES, MAX_GROUP_COUNTER } from './limits.ts';
import { type GroupMember, memberFromCbor, memberToCbor } from './member.ts';

/** The decoded distribution, secret included. Internal: the public view is `DistributionInfo`. */
export interface SenderKeyDistribution extends DistributionInfo {
  readonly chainKey: Uint8Array;
}

/** The public fields of a distribution: enough to route it to the right group. */
export interface DistributionInfo {
  readonly groupId: Uint8Array;
  readonly epoch: number;
  readonly sender: GroupMember;
  readonly generation: number;
  readonly iteration: number;
  /** Ed25519 public key that signs this chain's messages. */
  readonly signingKey: Uint8Array;
}

export function encodeDistribution(d: SenderKeyDistribution): Uint8Array {
  return encodeCbor([
    PROTOCOL_VERSION,
    MessageType.distribution,
    d.groupId,
    d.epoch,
    memberToCbor(d.sender),
    d.generation,
    d.iteration,
    d.chainKey,
    d.signingKey,
  ]);
}

/** Decodes and checks every field's shape. Throws MALFORMED, OVERSIZED or UNSUPPORTED_VERSION. */
export function decodeDistribution(bytes: Uint8Array): SenderKeyDistribution {
  const v = decodeCbor(bytes, 'SenderKeyDistribution', MAX_DISTRIBUTION_BYTES);
  if (!Array.isArray(v) || v.length < 2) fail('MALFORMED', 'SenderKeyDistribution: expected an array with version and type');
  readVersion(v[0], 'SenderKeyDistribution', [PROTOCOL_VERSION]);
  if (v[1] !== MessageType.distribution) fail('MALFORMED', 'SenderKeyDistribution: wrong message type');
  const f = readArray(v, 'SenderKeyDistribution', 9);
  return {
    groupId: readBytes(f[2], 'distribution.groupId', GROUP_ID_BYTES),
    epoch: readUint(f[3], 'distribution.epoch', MAX_GROUP_COUNTER),
    sender: memberFromCbor(f[4], 'distribution.sender'),
    generation: readUint(f[5], 'distribution.generation', MAX_GROUP_COUNTER),
    iteration: readUint(f[6], 'distribution.iteration', MAX_GROUP_COUNTER),
    chainKey: readBytes(f[7], 'distribution.chainKey', 32),
    signingKey: readBytes(f[8], 'distribution.signingKey', 32),
  };
}

/**
 * The public fields of a distribution (which group, which sender), for
 * routing it to the right `GroupSession`. The chain key is not returned.
 */
export function peekDistribution(bytes: Uint8Array): DistributionInfo {
  const d = decodeDistribution(bytes);
  wipe(d.chainKey);
  return {
    groupId: d.groupId,
    epoch: d.epoch,
    sender: d.sender,
    generation: d.generation,
    iteration: d.iteration,
    signingKey: d.signingKey,
  };
}
