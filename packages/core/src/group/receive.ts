/**
 * The receiving side as pure functions: accept a sender-key distribution,
 * decrypt a group message. spec/08-groups.md §4.2 (distribution rules) and
 * §5.3 (message rules).
 *
 * Neither function modifies the state it is given; each returns a
 * `ReceiveChange` that the caller commits only when the whole receive has
 * succeeded. So every failure (bad signature, duplicate, stale epoch, ...)
 * leaves the group state exactly as it was.
 *
 * This module does not know how distributions travel: the caller passes the
 * certificate of the one-to-one session the distribution arrived on.
 */
import { bytesEqual, wipe } from '../bytes.ts';
import { fail } from '../errors.ts';
import type { DeviceCertificate } from '../keys/certificate.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { unpad } from '../ratchet/padding.ts';
import { type SenderKeyDistribution, decodeDistribution } from './distribution.ts';
import { walkGroupChain } from './kdf.ts';
import { EPOCH_GRACE_EPOCHS, EPOCH_GRACE_MESSAGES, MAX_CHAINS_PER_SENDER } from './limits.ts';
import { type GroupHeader, decodeGroupMessage, groupSignedBytes } from './message.ts';
import { type GroupMember, memberKey, sameMember } from './member.ts';
import { type GroupState, type ReceiveChange, type ReceivingChain, type SenderChains, type SkippedKey, skippedKeyId } from './state.ts';

/** Largest value a stored graceEnd may take (uint32). */
const MAX_GRACE_END = 0xffffffff;

export function graceEndFrom(iteration: number): number {
  return Math.min(iteration + EPOCH_GRACE_MESSAGES, MAX_GRACE_END);
}

/** What `acceptDistribution` reports (no secrets). */
export interface DistributionAccepted {
  readonly sender: GroupMember;
  readonly epoch: number;
  readonly generation: number;
  readonly iteration: number;
}

/**
 * Checks a distribution that arrived inside a one-to-one session whose peer
 * is `certificate` (the `DecryptResult.sender` of that session), and
 * computes the chain to install.
 */
export function acceptDistribution(
  state: GroupState,
  bytes: Uint8Array,
  certificate: DeviceCertificate,
): { accepted: DistributionAccepted; change: ReceiveChange } {
  if (typeof certificate !== 'object' || certificate === null || !(certificate.accountKey instanceof Uint8Array)) {
    throw new TypeError('"certificate" expected the DeviceCertificate of the session the distribution arrived on');
  }
  const d = decodeDistribution(bytes);
  try {
    return checkDistribution(state, d, certificate);
  } catch (e) {
    wipe(d.chainKey); // refused: the decoded chain key goes nowhere (best effort)
    throw e;
  }
}

function checkDistribution(
  state: GroupState,
  d: SenderKeyDistribution,
  certificate: DeviceCertificate,
): { accepted: DistributionAccepted; change: ReceiveChange } {
  if (!bytesEqual(d.groupId, state.groupId)) fail('UNKNOWN_GROUP', 'distribution is for another group');
  const details = { deviceId: d.sender.deviceId, generation: d.generation };
  // The one rule that makes distributions unforgeable: a device may only describe its own chain.
  if (d.sender.deviceId !== certificate.deviceId || !bytesEqual(d.sender.accountKey, certificate.accountKey)) {
    fail('FORGED_DISTRIBUTION', 'distribution names another device than the session it arrived on', details);
  }
  const senderKey = memberKey(d.sender);
  if (senderKey === state.selfKey) fail('FORGED_DISTRIBUTION', 'distribution claims to describe this device', details);
  const member = state.members.get(senderKey);
  if (!member) fail('UNKNOWN_SENDER', 'distribution from a device that is not a member', details);
  if (d.epoch + EPOCH_GRACE_EPOCHS < state.epoch) {
    fail('STALE_EPOCH', `distribution is for epoch ${d.epoch}, outside the grace window of epoch ${state.epoch}`, {
      ...details,
      epoch: d.epoch,
      current: state.epoch,
    });
  }

  const entry: SenderChains = state.receiving.get(senderKey) ?? { member, floor: 0, chains: [] };
  const held = entry.chains.find((c) => c.generation === d.generation);
  if (held) {
    if (held.epoch === d.epoch && bytesEqual(held.signingKey, d.signingKey)) {
      fail('DUPLICATE_MESSAGE', 'this chain is already held', details);
    }
    fail('FORGED_DISTRIBUTION', 'distribution conflicts with the chain already held for this generation', details);
  }
  if (d.generation < entry.floor) fail('UNKNOWN_CHAIN', 'distribution for a chain already superseded and dropped', details);

  const chain: ReceivingChain = {
    generation: d.generation,
    epoch: d.epoch,
    iteration: d.iteration,
    chainKey: d.chainKey,
    signingKey: d.signingKey,
    graceEnd: d.epoch < state.epoch ? graceEndFrom(d.iteration) : null,
  };
  const chains = [...entry.chains, chain].sort((a, b) => b.generation - a.generation);
  let floor = entry.floor;
  let deleteSkipped: string[] = [];
  const retired: Uint8Array[] = [];
  if (chains.length > MAX_CHAINS_PER_SENDER) {
    const evicted = chains.pop() as ReceivingChain;
    if (evicted === chain) fail('UNKNOWN_CHAIN', 'distribution for a chain older than every chain kept for this sender', details);
    floor = evicted.generation + 1;
    deleteSkipped = skippedIdsOf(state, senderKey, evicted.generation);
    retired.push(evicted.chainKey);
  }
  return {
    accepted: { sender: member, epoch: d.epoch, generation: d.generation, iteration: d.iteration },
    change: { senderKey, chains: { member, floor, chains }, deleteSkipped, addSkipped: [], retired },
  };
}

function skippedIdsOf(state: GroupState, senderKey: string, generation: number): string[] {
  const prefix = skippedKeyId(senderKey, generation, 0).slice(0, -1);
  const out: string[] = [];
  for (const id of state.skipped.keys()) if (id.startsWith(prefix)) out.push(id);
  return out;
}

/** What `openGroupMessage` returns on success. */
export interface GroupOpened {
  readonly plaintext: Uint8Array;
  readonly header: GroupHeader;
  readonly sender: GroupMember;
  readonly change: ReceiveChange;
}

/** A decoded group message of either version: what the checks below need. */
export interface DecodedGroupMessage {
  readonly header: GroupHeader;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Verifies and decrypts a group message. The checks run cheapest first and
 * the signature before the AEAD, so a forgery costs one verification and
 * never advances a chain. Throws UNKNOWN_GROUP, STALE_EPOCH, UNKNOWN_SENDER,
 * UNKNOWN_CHAIN, BAD_SIGNATURE, DUPLICATE_MESSAGE, TOO_FAR_AHEAD,
 * DECRYPT_FAILED, BAD_PADDING, or a decoding error.
 */
export function openGroupMessage(p: CryptoProvider, state: GroupState, bytes: Uint8Array): GroupOpened {
  const m = decodeGroupMessage(bytes);
  const { padded, ...rest } = openVerified(p, state, m, groupSignedBytes(m.headerBytes, m.ciphertext));
  return { ...rest, plaintext: unpad(padded) };
}

/**
 * The checks and the decryption shared by both versions (08 §5.3 steps
 * 1-12), given the bytes the signature covers. Returns the padded body;
 * the caller unpads and, for v2, checks the franking tag before anything is
 * committed.
 */
export function openVerified(
  p: CryptoProvider,
  state: GroupState,
  m: DecodedGroupMessage,
  signedBytes: Uint8Array,
): Omit<GroupOpened, 'plaintext'> & { readonly padded: Uint8Array } {
  const b = p.backend;
  const h = m.header;
  if (!bytesEqual(h.groupId, state.groupId)) fail('UNKNOWN_GROUP', 'message is for another group');
  const details = { deviceId: h.sender.deviceId, generation: h.generation, iteration: h.iteration };
  if (h.epoch + EPOCH_GRACE_EPOCHS < state.epoch) {
    fail('STALE_EPOCH', `message is from epoch ${h.epoch}, outside the grace window of epoch ${state.epoch}`, {
      ...details,
      epoch: h.epoch,
      current: state.epoch,
    });
  }
  const senderKey = memberKey(h.sender);
  if (senderKey === state.selfKey) fail('UNKNOWN_SENDER', 'message claims to be from this device', details);
  const member = state.members.get(senderKey);
  if (!member) fail('UNKNOWN_SENDER', 'message from a device that is not a member', details);
  const entry = state.receiving.get(senderKey);
  const index = entry ? entry.chains.findIndex((c) => c.generation === h.generation) : -1;
  if (!entry || index < 0) fail('UNKNOWN_CHAIN', 'no chain held for this sender and generation (distribution not received?)', details);
  const chain = entry.chains[index] as ReceivingChain;

  // Only the holder of the chain's signing key can have made this message:
  // another member knows the chain key, never the signing key.
  if (!b.ed25519Verify(chain.signingKey, signedBytes, m.signature)) {
    fail('BAD_SIGNATURE', 'group message signature does not verify', details);
  }
  if (h.epoch !== chain.epoch) fail('STALE_EPOCH', "message epoch differs from its chain's epoch", { ...details, epoch: h.epoch });
  if (chain.graceEnd !== null && h.iteration >= chain.graceEnd) {
    fail('STALE_EPOCH', 'message from a previous epoch is past the grace window', { ...details, epoch: h.epoch });
  }

  // 1. An earlier message whose key was kept when the chain stepped over it: use it once.
  if (h.iteration < chain.iteration) {
    const id = skippedKeyId(senderKey, h.generation, h.iteration);
    const kept = state.skipped.get(id);
    if (!kept) fail('DUPLICATE_MESSAGE', 'message was already received (or its key was evicted)', details);
    const padded = open(p, kept.keys.key, kept.keys.nonce, m.ciphertext, m.headerBytes, details);
    return { padded, header: h, sender: member, change: { senderKey, chains: entry, deleteSkipped: [id], addSkipped: [], retired: [] } };
  }

  // 2. This message or a later one: step the chain forward, keeping the keys stepped over.
  const walk = walkGroupChain(b, chain.chainKey, chain.iteration, h.iteration);
  const padded = open(p, walk.keys.key, walk.keys.nonce, m.ciphertext, m.headerBytes, details);
  const chains = entry.chains.slice();
  chains[index] = { ...chain, iteration: h.iteration + 1, chainKey: walk.chainKey };
  const addSkipped = walk.skipped.map((keys, i): readonly [string, SkippedKey] => {
    const iteration = chain.iteration + i;
    return [skippedKeyId(senderKey, h.generation, iteration), { member, generation: h.generation, iteration, keys }];
  });
  return {
    padded,
    header: h,
    sender: member,
    change: { senderKey, chains: { ...entry, chains }, deleteSkipped: [], addSkipped, retired: [chain.chainKey, walk.keys.key] },
  };
}

function open(
  p: CryptoProvider,
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  headerBytes: Uint8Array,
  details: Record<string, number>,
): Uint8Array {
  const padded = p.backend.aeadOpen(key, nonce, ciphertext, headerBytes);
  if (!padded) fail('DECRYPT_FAILED', 'group message authentication failed', details);
  return padded;
}

/** True when `m` names the same device as `certificate` (exported for the fan-out helper). */
export function certificateNames(certificate: DeviceCertificate, m: GroupMember): boolean {
  return sameMember({ accountKey: certificate.accountKey, deviceId: certificate.deviceId }, m);
}
