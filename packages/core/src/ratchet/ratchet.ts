/**
 * The Double Ratchet as pure transitions: each function takes a state and
 * returns a new one, never mutating its input. That is what makes decryption
 * a transaction: on any failure the caller still holds the old state,
 * untouched. spec/04-double-ratchet.md §3-§4.
 *
 * This module knows nothing of sessions, handshakes or wire messages beyond
 * the header; padding and message framing are the session layer's job.
 */
import { bytesEqual, concatBytes, toHex, wipe } from '../bytes.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import type { CryptoProvider } from '../crypto/provider.ts';
import { type DhKeyPair, dh, generateDhKeyPair } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { MAX_FORWARD_JUMP, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS } from '../limits.ts';
import { type Header, MAX_MESSAGE_COUNTER, encodeHeader } from './header.ts';
import { skipAhead, walkChain } from './chain.ts';
import { type MessageKeys, kdfRoot, messageKeys, nextChainKey } from './kdf.ts';

export interface ChainState {
  readonly chainKey: Uint8Array;
  /** Index of the next message in this chain. */
  readonly counter: number;
}

export interface ReceivingChain extends ChainState {
  /** The peer's ratchet public key that identifies this chain. */
  readonly ratchetKey: Uint8Array;
}

export interface RatchetState {
  readonly rootKey: Uint8Array;
  readonly sendingRatchetKey: DhKeyPair;
  /** Null only for a responder that has not yet received (never observable: sessions are created on receipt). */
  readonly sendingChain: ChainState | null;
  /** Length of our previous sending chain (PN in the header). */
  readonly previousCounter: number;
  /** Newest last; at most MAX_RECEIVER_CHAINS. */
  readonly receivingChains: readonly ReceivingChain[];
  /** Keys of messages skipped over, oldest first; at most MAX_SKIPPED_KEYS. */
  readonly skipped: ReadonlyMap<string, MessageKeys>;
}

export function skippedKeyId(ratchetKey: Uint8Array, counter: number): string {
  return `${toHex(ratchetKey)}:${counter}`;
}

/** Initiator: the first sending chain comes from a DH with the responder's signed prekey. */
export function initInitiator(
  p: CryptoProvider,
  sharedSecret: Uint8Array,
  remoteRatchetKey: Uint8Array,
  ownRatchetKey: DhKeyPair,
): RatchetState {
  const dhOut = dh(p.backend, ownRatchetKey.privateKey, remoteRatchetKey);
  const { rootKey, chainKey } = kdfRoot(p.backend, sharedSecret, dhOut);
  wipe(dhOut);
  return {
    rootKey,
    sendingRatchetKey: ownRatchetKey,
    sendingChain: { chainKey, counter: 0 },
    previousCounter: 0,
    receivingChains: [],
    skipped: new Map(),
  };
}

/** Responder: the signed prekey is the first ratchet key; chains start at the first received message. */
export function initResponder(sharedSecret: Uint8Array, signedPreKey: DhKeyPair): RatchetState {
  return {
    rootKey: sharedSecret,
    sendingRatchetKey: signedPreKey,
    sendingChain: null,
    previousCounter: 0,
    receivingChains: [],
    skipped: new Map(),
  };
}

export interface Encrypted {
  readonly state: RatchetState;
  readonly headerBytes: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/** Encrypts already-padded bytes. `adPrefix` is the session's associated data. */
export function ratchetEncrypt(p: CryptoProvider, s: RatchetState, padded: Uint8Array, adPrefix: Uint8Array): Encrypted {
  const chain = s.sendingChain;
  if (!chain) fail('INVALID_STATE', 'session has no sending chain yet');
  if (chain.counter > MAX_MESSAGE_COUNTER) fail('INVALID_STATE', 'sending chain exhausted');
  const b = p.backend;
  const headerBytes = encodeHeader({
    ratchetKey: s.sendingRatchetKey.publicKey,
    previousCounter: s.previousCounter,
    counter: chain.counter,
  });
  const mk = messageKeys(b, chain.chainKey);
  const ciphertext = b.aeadSeal(mk.key, mk.nonce, padded, concatBytes(adPrefix, headerBytes));
  // The message key is used exactly once and is not kept (best effort: spec/07-security.md §12).
  wipe(mk.key, mk.nonce);
  const state: RatchetState = { ...s, sendingChain: { chainKey: nextChainKey(b, chain.chainKey), counter: chain.counter + 1 } };
  return { state, headerBytes, ciphertext };
}

export interface Decrypted {
  /** The new state; final only after `commitDecrypted`. */
  readonly state: RatchetState;
  /** Still padded. */
  readonly plaintext: Uint8Array;
  /** The skipped key this message used, still in `state` until committed. */
  readonly usedSkippedKey?: string;
}

/**
 * Makes a successful decryption final and returns the new state. A message
 * decrypted with a stored skipped key leaves `state` equal to the input
 * state; its key is deleted here, in place, and wiped. The caller must
 * therefore commit only a result it keeps, and drop the old state: the
 * skipped-key map is shared between successive states of one session.
 * SessionRecord does exactly that, which keeps a late message O(1).
 */
export function commitDecrypted(d: Decrypted): RatchetState {
  if (d.usedSkippedKey !== undefined) {
    const skipped = d.state.skipped as Map<string, MessageKeys>;
    const mk = skipped.get(d.usedSkippedKey);
    skipped.delete(d.usedSkippedKey);
    if (mk) wipe(mk.key, mk.nonce);
  }
  return d.state;
}

/**
 * Decrypts a message. Throws DECRYPT_FAILED, DUPLICATE_MESSAGE,
 * TOO_FAR_AHEAD or WEAK_KEY; the input state is never modified.
 */
export function ratchetDecrypt(
  p: CryptoProvider,
  s: RatchetState,
  header: Header,
  headerBytes: Uint8Array,
  ciphertext: Uint8Array,
  adPrefix: Uint8Array,
): Decrypted {
  const b = p.backend;
  const ad = concatBytes(adPrefix, headerBytes);

  // 1. A key we skipped over earlier: use it once and delete it.
  if (s.skipped.size > 0) {
    const id = skippedKeyId(header.ratchetKey, header.counter);
    const mk = s.skipped.get(id);
    if (mk) {
      const plaintext = open(b, mk, ciphertext, ad, header);
      // Copying the map here would cost O(stored keys) per late message, so the
      // deletion is deferred to commitDecrypted (see there).
      return { state: s, plaintext, usedSkippedKey: id };
    }
  }

  // 2. A chain we already have.
  const index = s.receivingChains.findIndex((c) => bytesEqual(c.ratchetKey, header.ratchetKey));
  if (index >= 0) {
    const chain = s.receivingChains[index] as ReceivingChain;
    if (header.counter < chain.counter) {
      fail('DUPLICATE_MESSAGE', 'message was already received', { counter: header.counter });
    }
    const walk = walkChain(b, chain.chainKey, chain.counter, header.counter);
    const plaintext = open(b, walk.keys, ciphertext, ad, header);
    wipe(walk.keys.key, walk.keys.nonce);
    const receivingChains = s.receivingChains.slice();
    receivingChains[index] = { ratchetKey: chain.ratchetKey, chainKey: walk.chainKey, counter: header.counter + 1 };
    return {
      state: { ...s, receivingChains, skipped: addSkipped(s.skipped, chain.ratchetKey, chain.counter, walk.skipped) },
      plaintext,
    };
  }

  // 3. A new ratchet key from the peer: a DH ratchet step.
  let skipped = s.skipped;
  let previousChains: readonly ReceivingChain[] = s.receivingChains;
  const currentIndex = s.receivingChains.length - 1;
  const current = s.receivingChains[currentIndex];
  if (current && header.previousCounter > current.counter) {
    // Keep the keys of the peer's previous chain (counters current.counter .. PN-1)
    // that we have not seen yet, and close that chain at PN, so a message from it
    // can only ever be decrypted with its stored key, once.
    const rest = skipAhead(b, current.chainKey, current.counter, header.previousCounter);
    skipped = addSkipped(skipped, current.ratchetKey, current.counter, rest.skipped);
    const closed = s.receivingChains.slice();
    closed[currentIndex] = { ratchetKey: current.ratchetKey, chainKey: rest.chainKey, counter: header.previousCounter };
    previousChains = closed;
  }
  const dhReceive = dh(b, s.sendingRatchetKey.privateKey, header.ratchetKey);
  const receiving = kdfRoot(b, s.rootKey, dhReceive);
  wipe(dhReceive);
  const walk = walkChain(b, receiving.chainKey, 0, header.counter);
  const plaintext = open(b, walk.keys, ciphertext, ad, header);
  wipe(walk.keys.key, walk.keys.nonce);

  // Only now, with the message authenticated, turn the sending side.
  const ownRatchetKey = generateDhKeyPair(p);
  const dhSend = dh(b, ownRatchetKey.privateKey, header.ratchetKey);
  const sending = kdfRoot(b, receiving.rootKey, dhSend);
  wipe(dhSend);
  const receivingChains = [
    ...previousChains,
    { ratchetKey: header.ratchetKey, chainKey: walk.chainKey, counter: header.counter + 1 },
  ].slice(-MAX_RECEIVER_CHAINS);
  return {
    state: {
      rootKey: sending.rootKey,
      sendingRatchetKey: ownRatchetKey,
      sendingChain: { chainKey: sending.chainKey, counter: 0 },
      previousCounter: s.sendingChain?.counter ?? 0,
      receivingChains,
      skipped: addSkipped(skipped, header.ratchetKey, 0, walk.skipped),
    },
    plaintext,
  };
}

function open(b: CryptoBackend, mk: MessageKeys, ciphertext: Uint8Array, ad: Uint8Array, header: Header): Uint8Array {
  const plaintext = b.aeadOpen(mk.key, mk.nonce, ciphertext, ad);
  if (!plaintext) fail('DECRYPT_FAILED', 'message authentication failed', { counter: header.counter });
  return plaintext;
}

function addSkipped(
  map: ReadonlyMap<string, MessageKeys>,
  ratchetKey: Uint8Array,
  firstCounter: number,
  keys: readonly MessageKeys[],
): ReadonlyMap<string, MessageKeys> {
  if (keys.length === 0) return map;
  const out = new Map(map);
  for (let i = 0; i < keys.length; i++) out.set(skippedKeyId(ratchetKey, firstCounter + i), keys[i] as MessageKeys);
  // Oldest first: a Map iterates in insertion order.
  for (const id of out.keys()) {
    if (out.size <= MAX_SKIPPED_KEYS) break;
    out.delete(id);
  }
  return out;
}
