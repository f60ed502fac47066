/**
 * One device's state for one group, and its stored form.
 * spec/08-groups.md §2 (state) and §8 (record format).
 *
 *   GroupRecord   = ["parley/group-session", version: 1, groupId: bstr .size 32,
 *                    epoch: uint, rotateAfter: uint, self: Member, members: [* Member],
 *                    sending: SendingChain, receiving: [* SenderChains], skipped: [* SkippedKey]]
 *   SendingChain  = [generation, epoch, iteration, chainKey: bstr .size 32, signingSeed: bstr .size 32]
 *   SenderChains  = [member: Member, floor: uint, chains: [* ReceivingChain]]      (newest generation first)
 *   ReceivingChain = [generation, epoch, iteration, chainKey: bstr .size 32,
 *                     signingKey: bstr .size 32, graceEnd: uint / null]
 *   SkippedKey    = [member: Member, generation, iteration, key: bstr .size 32, nonce: bstr .size 12]
 *
 * Transitions (send.ts, receive.ts, membership.ts) never modify a state they
 * are given. Receiving is the one exception to "return a new state": a
 * receive computes a small `ReceiveChange` (one sender's chains, the skipped
 * keys used or added) and `commitReceive` applies it in place, after every
 * check has passed. Copying the per-sender map for each message would make
 * decryption O(group size): measured at about 80 us for 1,000 entries, more
 * than the message's own crypto. The maps are owned by exactly one
 * `GroupSession`, which is the only caller of `commitReceive`.
 */
import { wipe } from '../bytes.ts';
import { type CborValue, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readOptional, readTag, readUint, readVersion } from '../codec/fields.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { fail } from '../errors.ts';
import { Ed25519KeyPair } from '../keys/identity.ts';
import { PROTOCOL_VERSION } from '../labels.ts';
import type { MessageKeys } from '../ratchet/kdf.ts';
import {
  GROUP_ID_BYTES,
  MAX_CHAINS_PER_SENDER,
  MAX_GROUP_COUNTER,
  MAX_GROUP_MEMBER_DEVICES,
  MAX_GROUP_SKIPPED_KEYS,
  MAX_ROTATE_AFTER_MESSAGES,
} from './limits.ts';
import { type GroupMember, memberFromCbor, memberKey, memberToCbor } from './member.ts';

export const GROUP_RECORD_TAG = 'parley/group-session';

/** My chain: the keys of the next message I send to the group. */
export interface SendingChain {
  /** Counts my chains in this group: 0 for the first, +1 at every rotation. */
  readonly generation: number;
  /** The group epoch this chain was created in. */
  readonly epoch: number;
  /** Index of the next message. */
  readonly iteration: number;
  /** Chain key for message `iteration`. */
  readonly chainKey: Uint8Array;
  /** Signs this chain's messages; rotates with the chain. */
  readonly signing: Ed25519KeyPair;
}

/** Another member device's chain, as far as I have read it. */
export interface ReceivingChain {
  readonly generation: number;
  readonly epoch: number;
  /** Index of the next message not yet read (lower ones survive only as skipped keys). */
  readonly iteration: number;
  /** Chain key for message `iteration`. */
  readonly chainKey: Uint8Array;
  /** The sender's public key for this chain. */
  readonly signingKey: Uint8Array;
  /**
   * Null while the chain's epoch is current (or ahead of mine). Once my epoch
   * has moved past it, the first iteration no longer accepted (the grace
   * window, spec/08-groups.md §6.4).
   */
  readonly graceEnd: number | null;
}

/** Every chain I hold for one sender device. */
export interface SenderChains {
  readonly member: GroupMember;
  /** Lowest generation a distribution may still install (older ones were dropped). */
  readonly floor: number;
  /** Newest generation first; at most MAX_CHAINS_PER_SENDER. */
  readonly chains: readonly ReceivingChain[];
}

export interface SkippedKey {
  readonly member: GroupMember;
  readonly generation: number;
  readonly iteration: number;
  readonly keys: MessageKeys;
}

export interface GroupState {
  readonly groupId: Uint8Array;
  /** Advances by one at every membership change that removes a device. */
  readonly epoch: number;
  /** My chain rotates on its own after this many messages. */
  readonly rotateAfter: number;
  readonly self: GroupMember;
  readonly selfKey: string;
  /** Every member device, self included, by memberKey, in the order they joined. */
  readonly members: ReadonlyMap<string, GroupMember>;
  readonly sending: SendingChain;
  /** By memberKey; members other than self whose distribution has arrived. */
  readonly receiving: ReadonlyMap<string, SenderChains>;
  /** By skippedKeyId, oldest first; at most MAX_GROUP_SKIPPED_KEYS. */
  readonly skipped: ReadonlyMap<string, SkippedKey>;
}

/** Names one skipped message key (public values only). */
export function skippedKeyId(senderKey: string, generation: number, iteration: number): string {
  return `${senderKey}/${generation}/${iteration}`;
}

/** What a successful receive (message or distribution) changes. */
export interface ReceiveChange {
  readonly senderKey: string;
  /** The sender's chains after the receive (replaces the entry). */
  readonly chains: SenderChains;
  /** Skipped keys used (deleted on use) or dropped with an evicted chain. */
  readonly deleteSkipped: readonly string[];
  /** Keys of messages stepped over, to keep for their late arrival. */
  readonly addSkipped: readonly (readonly [string, SkippedKey])[];
  /** Buffers no longer referenced once the change is applied (best-effort wipe). */
  readonly retired: readonly Uint8Array[];
}

/**
 * Applies a receive's change to the state it was computed from, in place.
 * Cannot fail. Only `GroupSession` calls it, on state it owns exclusively.
 */
export function commitReceive(state: GroupState, change: ReceiveChange): void {
  const receiving = state.receiving as Map<string, SenderChains>;
  const skipped = state.skipped as Map<string, SkippedKey>;
  receiving.set(change.senderKey, change.chains);
  const retired: (Uint8Array | undefined)[] = [...change.retired];
  for (const id of change.deleteSkipped) {
    const k = skipped.get(id);
    retired.push(k?.keys.key);
    skipped.delete(id);
  }
  for (const [id, k] of change.addSkipped) skipped.set(id, k);
  // Oldest first: a Map iterates in insertion order.
  for (const [id, k] of skipped) {
    if (skipped.size <= MAX_GROUP_SKIPPED_KEYS) break;
    retired.push(k.keys.key);
    skipped.delete(id);
  }
  wipe(...retired);
}

// ---- stored form -------------------------------------------------------------

export function serializeGroupState(s: GroupState): Uint8Array {
  const receiving: CborValue[] = [];
  for (const entry of s.receiving.values()) {
    receiving.push([
      memberToCbor(entry.member),
      entry.floor,
      entry.chains.map((c) => [c.generation, c.epoch, c.iteration, c.chainKey, c.signingKey, c.graceEnd]),
    ]);
  }
  const skipped: CborValue[] = [];
  for (const k of s.skipped.values()) skipped.push([memberToCbor(k.member), k.generation, k.iteration, k.keys.key, k.keys.nonce]);
  const c = s.sending;
  return encodeCbor([
    GROUP_RECORD_TAG,
    PROTOCOL_VERSION,
    s.groupId,
    s.epoch,
    s.rotateAfter,
    memberToCbor(s.self),
    [...s.members.values()].map(memberToCbor),
    [c.generation, c.epoch, c.iteration, c.chainKey, c.signing.seed],
    receiving,
    skipped,
  ]);
}

const counter = (v: unknown, field: string) => readUint(v, field, MAX_GROUP_COUNTER);
/** A chain's next iteration may be one past the largest counter a message can carry. */
const position = (v: unknown, field: string) => readUint(v, field, MAX_GROUP_COUNTER + 1);

/**
 * Parses a decoded record and checks its invariants (members unique and
 * including self, chains only for members, generations ordered and above the
 * floor, skipped keys only for held chains). Throws ParleyError; the caller
 * maps it to BAD_RECORD.
 */
export function groupStateFromCbor(v: unknown, provider: CryptoProvider): GroupState {
  // Tag and version first, so that a record of a future version reads as UNSUPPORTED_VERSION whatever its layout.
  if (!Array.isArray(v) || v.length < 2) fail('MALFORMED', 'GroupRecord: expected an array with format tag and version');
  readTag(v[0], 'GroupRecord', GROUP_RECORD_TAG);
  readVersion(v[1], 'GroupRecord', [PROTOCOL_VERSION]);
  const f = readArray(v, 'GroupRecord', 10);
  const groupId = readBytes(f[2], 'groupId', GROUP_ID_BYTES);
  const epoch = counter(f[3], 'epoch');
  const rotateAfter = readUint(f[4], 'rotateAfter', MAX_ROTATE_AFTER_MESSAGES);
  if (rotateAfter === 0) fail('MALFORMED', 'rotateAfter: must be at least 1');
  const self = memberFromCbor(f[5], 'self');
  const selfKey = memberKey(self);

  const members = new Map<string, GroupMember>();
  for (const m of readArray(f[6], 'members', { min: 1, max: MAX_GROUP_MEMBER_DEVICES })) {
    const member = memberFromCbor(m, 'member');
    const key = memberKey(member);
    if (members.has(key)) fail('MALFORMED', 'members: duplicate member');
    members.set(key, key === selfKey ? self : member);
  }
  if (!members.has(selfKey)) fail('MALFORMED', 'members: self is not a member');

  const sf = readArray(f[7], 'SendingChain', 5);
  const sending: SendingChain = {
    generation: counter(sf[0], 'sending.generation'),
    epoch: counter(sf[1], 'sending.epoch'),
    iteration: position(sf[2], 'sending.iteration'),
    chainKey: readBytes(sf[3], 'sending.chainKey', 32),
    signing: Ed25519KeyPair.fromSeed(readBytes(sf[4], 'sending.signingSeed', 32), provider),
  };

  const receiving = new Map<string, SenderChains>();
  for (const e of readArray(f[8], 'receiving', { min: 0, max: MAX_GROUP_MEMBER_DEVICES })) {
    const ef = readArray(e, 'SenderChains', 3);
    const key = memberKey(memberFromCbor(ef[0], 'SenderChains.member'));
    const member = members.get(key);
    if (!member || key === selfKey) fail('MALFORMED', 'receiving: chains for a device that is not another member');
    if (receiving.has(key)) fail('MALFORMED', 'receiving: duplicate sender');
    const floor = counter(ef[1], 'SenderChains.floor');
    const chains = readArray(ef[2], 'chains', { min: 0, max: MAX_CHAINS_PER_SENDER }).map(receivingChainFromCbor);
    for (let i = 0; i < chains.length; i++) {
      const c = chains[i] as ReceivingChain;
      const newer = chains[i - 1];
      if (c.generation < floor || (newer && newer.generation <= c.generation)) {
        fail('MALFORMED', 'chains: generations out of order or below the floor');
      }
    }
    receiving.set(key, { member, floor, chains });
  }

  const skipped = new Map<string, SkippedKey>();
  for (const e of readArray(f[9], 'skipped', { min: 0, max: MAX_GROUP_SKIPPED_KEYS })) {
    const kf = readArray(e, 'SkippedKey', 5);
    const key = memberKey(memberFromCbor(kf[0], 'SkippedKey.member'));
    const generation = counter(kf[1], 'SkippedKey.generation');
    const iteration = counter(kf[2], 'SkippedKey.iteration');
    const entry = receiving.get(key);
    const chain = entry?.chains.find((c) => c.generation === generation);
    if (!entry || !chain || iteration >= chain.iteration) fail('MALFORMED', 'skipped: key for a chain position not held');
    const id = skippedKeyId(key, generation, iteration);
    if (skipped.has(id)) fail('MALFORMED', 'skipped: duplicate key');
    skipped.set(id, {
      member: entry.member,
      generation,
      iteration,
      keys: { key: readBytes(kf[3], 'SkippedKey.key', 32), nonce: readBytes(kf[4], 'SkippedKey.nonce', 12) },
    });
  }

  return { groupId, epoch, rotateAfter, self, selfKey, members, sending, receiving, skipped };
}

function receivingChainFromCbor(v: unknown): ReceivingChain {
  const f = readArray(v, 'ReceivingChain', 6);
  return {
    generation: counter(f[0], 'chain.generation'),
    epoch: counter(f[1], 'chain.epoch'),
    iteration: position(f[2], 'chain.iteration'),
    chainKey: readBytes(f[3], 'chain.chainKey', 32),
    signingKey: readBytes(f[4], 'chain.signingKey', 32),
    graceEnd: readOptional(f[5], (x) => readUint(x, 'chain.graceEnd')),
  };
}
