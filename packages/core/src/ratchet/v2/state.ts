/**
 * RatchetStateV2: the v1 ratchet state plus header keys, PQ epochs and the
 * PQ ratchet's state. spec/13-ratchet-v2.md §5 (spec/design/formats-v2.md §4.5).
 *
 * Plain immutable data; the transitions in ratchet.ts return new states.
 * Skipped message keys are grouped by the header key of their chain, so a
 * header trial costs one open per group, not one per key.
 */
import { bytesEqual } from '../../bytes.ts';
import type { DhKeyPair } from '../../crypto/x25519.ts';
import { MAX_SKIPPED_KEYS } from '../../limits.ts';
import type { MessageKeys } from '../kdf.ts';
import { MAX_SKIPPED_HEADER_KEYS } from './limits.ts';
import type { PqState } from './pq-port.ts';

export interface SendingChainV2 {
  readonly chainKey: Uint8Array;
  /** Index of the next message in this chain. */
  readonly counter: number;
  /** PQ epoch of this chain: the last PQ exchange mixed into the root before it. */
  readonly epoch: number;
}

export interface ReceivingChainV2 extends SendingChainV2 {
  /** The peer's ratchet public key for this chain. */
  readonly ratchetKey: Uint8Array;
  /** HKr: the key that opens this chain's headers. */
  readonly headerKey: Uint8Array;
}

/** The skipped message keys of one peer chain, under that chain's header key. */
export interface SkippedGroup {
  readonly headerKey: Uint8Array;
  readonly ratchetKey: Uint8Array;
  /** Counter -> keys, oldest first. */
  readonly keys: ReadonlyMap<number, MessageKeys>;
}

export interface RatchetStateV2 {
  readonly rootKey: Uint8Array;
  /** PQ epoch of the root chain: the last exchange mixed. */
  readonly rootEpoch: number;
  readonly sendingRatchetKey: DhKeyPair;
  /** Null for a responder until its first DH step. */
  readonly sendingChain: SendingChainV2 | null;
  /** HKs: null for a responder until its first DH step. */
  readonly sendingHeaderKey: Uint8Array | null;
  /** NHKs: the header key of our next sending chain. */
  readonly nextSendingHeaderKey: Uint8Array;
  /** NHKr: the header key of the peer's next chain; a header it opens starts a DH step. */
  readonly nextReceivingHeaderKey: Uint8Array;
  readonly previousCounter: number;
  /** Oldest first; at most MAX_RECEIVER_CHAINS. */
  readonly receivingChains: readonly ReceivingChainV2[];
  /** Oldest group first; at most MAX_SKIPPED_HEADER_KEYS groups and MAX_SKIPPED_KEYS keys in all. */
  readonly skipped: readonly SkippedGroup[];
  /** The PQ ratchet's state (opaque here). */
  readonly pq: PqState;
}

export function skippedCount(groups: readonly SkippedGroup[]): number {
  let n = 0;
  for (const g of groups) n += g.keys.size;
  return n;
}

/**
 * Adds keys for counters firstCounter.. of one chain, then evicts: whole
 * oldest groups beyond MAX_SKIPPED_HEADER_KEYS, then oldest keys beyond
 * MAX_SKIPPED_KEYS. Returns new arrays and maps; the inputs are untouched.
 */
export function addSkippedV2(
  groups: readonly SkippedGroup[],
  headerKey: Uint8Array,
  ratchetKey: Uint8Array,
  firstCounter: number,
  keys: readonly MessageKeys[],
): readonly SkippedGroup[] {
  if (keys.length === 0) return groups;
  const index = groups.findIndex((g) => bytesEqual(g.headerKey, headerKey));
  const existing = index >= 0 ? (groups[index] as SkippedGroup) : null;
  const map = new Map(existing?.keys ?? []);
  for (let i = 0; i < keys.length; i++) map.set(firstCounter + i, keys[i] as MessageKeys);
  // A group that gains keys becomes the newest: its chain is the one in use.
  let out = groups.filter((_, i) => i !== index);
  out.push({ headerKey, ratchetKey, keys: map });
  out = out.slice(-MAX_SKIPPED_HEADER_KEYS);
  let excess = skippedCount(out) - MAX_SKIPPED_KEYS;
  while (excess > 0) {
    const oldest = out[0] as SkippedGroup;
    if (oldest.keys.size <= excess) {
      excess -= oldest.keys.size;
      out = out.slice(1);
      continue;
    }
    const trimmed = new Map(oldest.keys);
    for (const counter of oldest.keys.keys()) {
      if (excess === 0) break;
      trimmed.delete(counter);
      excess--;
    }
    out = [{ ...oldest, keys: trimmed }, ...out.slice(1)];
  }
  return out;
}

/** The groups without one used key (a group left empty is dropped). */
export function removeSkippedV2(groups: readonly SkippedGroup[], group: SkippedGroup, counter: number): readonly SkippedGroup[] {
  const keys = new Map(group.keys);
  keys.delete(counter);
  const out: SkippedGroup[] = [];
  for (const g of groups) {
    if (g !== group) out.push(g);
    else if (keys.size > 0) out.push({ ...g, keys });
  }
  return out;
}
