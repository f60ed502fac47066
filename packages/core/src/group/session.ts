/**
 * GroupSession: one device's sender-key state for one group.
 * spec/08-groups.md (the whole chapter; §12 walks through the API).
 *
 * It wraps the pure transitions of send.ts, receive.ts and membership.ts
 * and swaps its state only when a call succeeds: every failed decrypt or
 * distribution leaves the session byte for byte as it was (compare
 * `serialize()`), so the caller can keep the input and retry later (for
 * example a message that arrived before its sender's distribution).
 *
 * It does not run the transport: distributions come out as plaintext bytes
 * plus their recipients, to be sent through one-to-one sessions
 * (`sealDistribution` does that), and go in with the certificate of the
 * session they arrived on. Membership is decided by the application.
 */
import { abytes } from '../bytes.ts';
import { decodeCbor } from '../codec/cbor.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import type { DeviceCertificate } from '../keys/certificate.ts';
import { fail } from '../errors.ts';
import { type DeviceIdentity, asRecordError } from '../keys/identity.ts';
import { inspectSymbol, redacted } from '../keys/redact.ts';
import { MAX_PLAINTEXT_BYTES, MAX_RECORD_BYTES } from '../limits.ts';
import {
  DEFAULT_ROTATE_AFTER_MESSAGES,
  GROUP_ID_BYTES,
  MAX_GROUP_JOIN_EPOCH,
  MAX_GROUP_MEMBER_DEVICES,
  MAX_ROTATE_AFTER_MESSAGES,
} from './limits.ts';
import { type GroupMember, checkMember, copyMember, memberKey, memberOf } from './member.ts';
import { GroupDistribution, type MembershipChange, changeMembers, othersOf, rotate } from './membership.ts';
import { GROUP_MESSAGE_VERSION_2, groupMessageVersion } from './message-v2.ts';
import { type DistributionAccepted, acceptDistribution, openGroupMessage } from './receive.ts';
import { openGroupMessageV2 } from './receive-v2.ts';
import { encodeMyDistribution, newSendingChain, sealGroupMessage } from './send.ts';
import { sealGroupMessageV2 } from './send-v2.ts';
import { type GroupState, commitReceive, groupStateFromCbor, serializeGroupState } from './state.ts';

export interface GroupSessionOptions {
  /** 32 bytes; a random id when omitted (a new group). Joining devices pass the group's id. */
  groupId?: Uint8Array;
  /** The group's current epoch (0 for a new group); joining devices pass the one the inviter reports. */
  epoch?: number;
  /** Rotate my chain on my own after this many messages (default DEFAULT_ROTATE_AFTER_MESSAGES). */
  rotateAfter?: number;
  provider?: CryptoProvider;
}

export interface GroupEncryptResult {
  /** The group message: send these same bytes to every other member device. */
  readonly message: Uint8Array;
  /**
   * Non-null when this message started a new chain (the rotation interval
   * was reached): send it to its recipients too, or they cannot read the
   * message.
   */
  readonly distribution: GroupDistribution | null;
  /**
   * Version 2 only (null for v1): the franking tag in the signed header, to
   * be sent with the envelope so the relay can frank it (formats-v2 §6.2).
   */
  readonly frankingTag: Uint8Array | null;
}

export interface GroupEncryptOptions {
  /** Wire version: 1 (default, as before) or 2, the franked format of formats-v2 §8.1. */
  readonly version?: 1 | 2;
  /** Version 2: the sender's attestation (64 bytes, formats-v2 §6.3) carried in the body. */
  readonly attestation?: Uint8Array;
}

export interface GroupDecryptOptions {
  /**
   * Version 2: the franking tag the relay delivered (and franked) with the
   * envelope; it must equal the signed one, else FRANKING_TAG_MISMATCH.
   */
  readonly frankingTag?: Uint8Array;
}

/** What a receiver keeps to report a v2 message (formats-v2 §6.5); deleted with the message. */
export interface GroupFranking {
  readonly key: Uint8Array;
  readonly tag: Uint8Array;
  readonly attestation: Uint8Array | null;
}

export interface GroupDecryptResult {
  readonly plaintext: Uint8Array;
  readonly sender: GroupMember;
  readonly epoch: number;
  readonly generation: number;
  readonly iteration: number;
  /** The message's wire version. */
  readonly version: 1 | 2;
  /** Version 2: the checked franking key and tag; null for v1, which has none. */
  readonly franking: GroupFranking | null;
}

export class GroupSession {
  #state: GroupState;
  readonly #provider: CryptoProvider;

  private constructor(state: GroupState, provider: CryptoProvider) {
    this.#state = state;
    this.#provider = provider;
  }

  /**
   * Starts this device's state for a group: a new group (random id, epoch 0)
   * or one it is joining (the id and epoch from the invitation). `members`
   * lists the member devices; this device is added if absent. Send
   * `distribution()` to the others next.
   *
   * @example
   * const group = GroupSession.create(aliceDevice, [bobPhone, bobLaptop]);
   * for (const { recipient, message } of sealDistribution(group.distribution(), sessionWith)) send(recipient, message);
   * const { message } = group.encrypt(utf8('hello group')); // the same bytes to every member device
   */
  static create(device: DeviceIdentity, members: readonly GroupMember[], options: GroupSessionOptions = {}): GroupSession {
    const p = resolveProvider(options.provider ?? device.provider);
    if (!Array.isArray(members)) throw new TypeError('"members" expected an array of { accountKey, deviceId }');
    const groupId =
      options.groupId === undefined ? p.random(GROUP_ID_BYTES) : new Uint8Array(abytes(options.groupId, 'groupId', GROUP_ID_BYTES));
    const epoch = options.epoch ?? 0;
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError('"epoch" expected a non-negative integer');
    // The joining epoch comes from the inviter (peer data): out of range is a typed refusal, not misuse.
    if (epoch > MAX_GROUP_JOIN_EPOCH) {
      fail('INVALID_STATE', `a joining epoch above ${MAX_GROUP_JOIN_EPOCH} would leave too few removals`, {
        epoch,
        limit: MAX_GROUP_JOIN_EPOCH,
      });
    }
    const rotateAfter = options.rotateAfter ?? DEFAULT_ROTATE_AFTER_MESSAGES;
    if (!Number.isInteger(rotateAfter) || rotateAfter < 1 || rotateAfter > MAX_ROTATE_AFTER_MESSAGES) {
      throw new RangeError(`"rotateAfter" expected an integer in 1..${MAX_ROTATE_AFTER_MESSAGES}`);
    }
    const self = copyMember(memberOf(device.certificate));
    const selfKey = memberKey(self);
    const all = new Map<string, GroupMember>([[selfKey, self]]);
    members.forEach((m, i) => {
      const member = checkMember(m, `members[${i}]`);
      const key = memberKey(member);
      if (key !== selfKey && all.has(key)) throw new RangeError('"members" names a device twice');
      if (key !== selfKey) all.set(key, member);
    });
    if (all.size > MAX_GROUP_MEMBER_DEVICES) {
      fail('OVERSIZED', `a group holds at most ${MAX_GROUP_MEMBER_DEVICES} member devices`, { limit: MAX_GROUP_MEMBER_DEVICES });
    }
    const state: GroupState = {
      groupId,
      epoch,
      rotateAfter,
      self,
      selfKey,
      members: all,
      sending: newSendingChain(p, 0, epoch),
      receiving: new Map(),
      skipped: new Map(),
    };
    return new GroupSession(state, p);
  }

  get groupId(): Uint8Array {
    return new Uint8Array(this.#state.groupId);
  }
  get epoch(): number {
    return this.#state.epoch;
  }
  get self(): GroupMember {
    return copyMember(this.#state.self);
  }
  /** Every member device, this one included. */
  get members(): GroupMember[] {
    return [...this.#state.members.values()].map(copyMember);
  }
  isMember(member: GroupMember): boolean {
    return this.#state.members.has(memberKey(checkMember(member)));
  }
  /** True once a distribution from `member` has been accepted (its messages can be read). */
  hasChainFrom(member: GroupMember): boolean {
    return (this.#state.receiving.get(memberKey(checkMember(member)))?.chains.length ?? 0) > 0;
  }
  /** My chain's generation and position (public counters, for logs and tests). */
  get sendingPosition(): { readonly generation: number; readonly epoch: number; readonly iteration: number } {
    const { generation, epoch, iteration } = this.#state.sending;
    return { generation, epoch, iteration };
  }

  /**
   * My current chain at its current position, for `recipients` (default:
   * every other member). Used after `create`, and to re-send my chain to a
   * device that lost it; it never reveals messages already sent.
   */
  distribution(recipients?: readonly GroupMember[]): GroupDistribution {
    const list = recipients ? recipients.map((m, i) => checkMember(m, `recipients[${i}]`)) : othersOf(this.#state);
    // My chain reads every message I send from now on: it goes to other members only.
    for (const m of list) {
      const key = memberKey(m);
      if (key === this.#state.selfKey || !this.#state.members.has(key))
        throw new RangeError('"recipients" names a device that is not another member');
    }
    return new GroupDistribution(encodeMyDistribution(this.#state), list);
  }

  /**
   * Encrypts one message for the whole group: one AEAD and one signature,
   * whatever the group size. Rotates first when the rotation interval is
   * reached (then `distribution` is non-null and must be sent as well).
   */
  encrypt(plaintext: Uint8Array, options: GroupEncryptOptions = {}): GroupEncryptResult {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('"plaintext" expected Uint8Array');
    const version = options.version ?? 1;
    if (version !== 1 && version !== GROUP_MESSAGE_VERSION_2) throw new RangeError('"version" expected 1 or 2');
    if (options.attestation !== undefined) {
      if (version !== 2) throw new RangeError('"attestation" is carried by version 2 only');
      abytes(options.attestation, 'attestation', 64);
    }
    if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new RangeError(`"plaintext" exceeds ${MAX_PLAINTEXT_BYTES} bytes`);
    const p = this.#provider;
    let state = this.#state;
    let distribution: GroupDistribution | null = null;
    if (state.sending.iteration >= state.rotateAfter) ({ state, distribution } = rotate(p, state));
    if (version === 2) {
      const out = sealGroupMessageV2(p, state, plaintext, options.attestation ?? null);
      this.#state = { ...state, sending: out.sending };
      return { message: out.message, distribution, frankingTag: out.frankingTag };
    }
    const out = sealGroupMessage(p, state, plaintext);
    this.#state = { ...state, sending: out.sending };
    return { message: out.message, distribution, frankingTag: null };
  }

  /**
   * Verifies and decrypts a group message. On any failure (a typed
   * ParleyError) nothing changes; UNKNOWN_CHAIN usually means the sender's
   * distribution has not arrived yet: keep the message and retry after it.
   */
  decrypt(bytes: Uint8Array, options: GroupDecryptOptions = {}): GroupDecryptResult {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
    if (options.frankingTag !== undefined) abytes(options.frankingTag, 'frankingTag');
    if (groupMessageVersion(bytes) === GROUP_MESSAGE_VERSION_2) {
      const opened = openGroupMessageV2(this.#provider, this.#state, bytes, options.frankingTag ?? null);
      commitReceive(this.#state, opened.change);
      const h = opened.header;
      return {
        plaintext: opened.plaintext,
        sender: copyMember(opened.sender),
        epoch: h.epoch,
        generation: h.generation,
        iteration: h.iteration,
        version: 2,
        franking: { key: opened.frankingKey, tag: new Uint8Array(h.frankingTag), attestation: opened.attestation },
      };
    }
    const opened = openGroupMessage(this.#provider, this.#state, bytes);
    commitReceive(this.#state, opened.change);
    const h = opened.header;
    return {
      plaintext: opened.plaintext,
      sender: copyMember(opened.sender),
      epoch: h.epoch,
      generation: h.generation,
      iteration: h.iteration,
      version: 1,
      franking: null,
    };
  }

  /**
   * Accepts a sender-key distribution: `bytes` is the plaintext of a
   * one-to-one message and `sender` the `DecryptResult.sender` certificate
   * of the session it arrived on. A distribution describing any other device
   * is FORGED_DISTRIBUTION; one from a non-member UNKNOWN_SENDER (apply the
   * membership change first, then retry); one already held DUPLICATE_MESSAGE.
   */
  processDistribution(bytes: Uint8Array, sender: DeviceCertificate): DistributionAccepted {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('"bytes" expected Uint8Array');
    const { accepted, change } = acceptDistribution(this.#state, bytes, sender);
    commitReceive(this.#state, change);
    return { ...accepted, sender: copyMember(accepted.sender) };
  }

  /** Adds member devices; returns my current chain for the newcomers only. */
  addMembers(members: readonly GroupMember[]): GroupDistribution {
    return this.changeMembers({ add: members });
  }

  /** Removes member devices: epoch + 1 and a new chain for every remaining device. */
  removeMembers(members: readonly GroupMember[]): GroupDistribution {
    return this.changeMembers({ remove: members });
  }

  /**
   * Removes and adds in one step (for example an account's device list
   * changed). With removals, the new chain goes to every remaining and new
   * device; with additions only, the current chain goes to the newcomers.
   */
  changeMembers(change: MembershipChange): GroupDistribution {
    const out = changeMembers(this.#provider, this.#state, change);
    this.#state = out.state;
    return out.distribution;
  }

  /** Starts a new chain (same epoch) now, for every other member. */
  rotate(): GroupDistribution {
    const out = rotate(this.#provider, this.#state);
    this.#state = out.state;
    return out.distribution;
  }

  serialize(): Uint8Array {
    return serializeGroupState(this.#state);
  }

  /** Loads a record; anything malformed is BAD_RECORD (unknown versions UNSUPPORTED_VERSION), never a partial load. */
  static deserialize(bytes: Uint8Array, provider?: CryptoProvider): GroupSession {
    const p = resolveProvider(provider);
    try {
      return new GroupSession(groupStateFromCbor(decodeCbor(bytes, 'GroupRecord', MAX_RECORD_BYTES), p), p);
    } catch (e) {
      throw asRecordError(e, 'GroupRecord');
    }
  }

  toString(): string {
    const s = this.#state;
    return redacted('GroupSession', {
      epoch: s.epoch,
      members: s.members.size,
      generation: s.sending.generation,
      iteration: s.sending.iteration,
    });
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}
