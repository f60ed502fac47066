/**
 * Ratchet v2 as pure transitions: the Double Ratchet with encrypted headers
 * (Double Ratchet document §4, with fixed-length binary headers), KDF_RK2
 * mixing a post-quantum secret at DH steps, and BodyV2 carrying the franking
 * key and PQ chunks. spec/13-ratchet-v2.md (spec/design/formats-v2.md §4-§5).
 *
 * Every function returns a new state and never mutates its input, so a
 * failed decryption leaves the caller holding the old state, byte for byte.
 * Decryption draws randomness only for the DH step, and only after the body
 * authenticated, decoded, its franking tag matched and its PQ chunks were
 * accepted: every refusal draws nothing.
 *
 * This module knows nothing of sessions, handshakes or wire framing: it
 * turns (state, plaintext) into (state, encrypted header, ciphertext,
 * franking tag) and back.
 */
import { bytesEqual, concatBytes, constantTimeEqual, wipe } from '../../bytes.ts';
import type { CryptoBackend } from '../../crypto/backend.ts';
import type { CryptoProvider } from '../../crypto/provider.ts';
import { type DhKeyPair, dh, generateDhKeyPair } from '../../crypto/x25519.ts';
import { fail } from '../../errors.ts';
import { FRANKING_KEY_BYTES, type FrankingSender, checkFrankingTag, frankingTag } from '../../franking/tag.ts';
import { MAX_RECEIVER_CHAINS } from '../../limits.ts';
import { MAX_MESSAGE_COUNTER } from '../header.ts';
import type { MessageKeys } from '../kdf.ts';
import { messageKeys, nextChainKey } from '../kdf.ts';
import { pad, unpad } from '../padding.ts';
import { decodeBodyV2, encodeBodyV2 } from './body.ts';
import { skipAhead, walkChain } from '../chain.ts';
import { ENCRYPTED_HEADER_BYTES, type HeaderV2, decodeHeaderV2, encodeHeaderV2, headerNonce, openHeader, sealHeader } from './header.ts';
import { initialHeaderKeys, kdfRoot2 } from './kdf.ts';
import { type PqPort, defaultPqPort } from './pq-port.ts';
import { type RatchetStateV2, type ReceivingChainV2, type SkippedGroup, addSkippedV2, removeSkippedV2 } from './state.ts';

const NO_PQ_SECRET = new Uint8Array(0);

export interface RatchetV2Options {
  /** The PQ ratchet driven by this session (default: the one core ships). */
  readonly pq?: PqPort;
}

export interface InitiateV2Input {
  /** SK from the v2 handshake (PQXDH with Info.pqxdh2). */
  readonly sharedSecret: Uint8Array;
  /** AD2 of the session (formats-v2 §3.2). */
  readonly associatedData: Uint8Array;
  /** The responder's signed prekey: its first ratchet key. */
  readonly theirRatchetKey: Uint8Array;
  /** Our first ratchet key pair (drawn from the provider when absent). */
  readonly ownRatchetKey?: DhKeyPair;
}

export interface RespondV2Input {
  readonly sharedSecret: Uint8Array;
  readonly associatedData: Uint8Array;
  /** Our signed prekey pair: the first ratchet key the initiator used. */
  readonly ownSignedPreKey: DhKeyPair;
}

/** A v2 session's ratchet: its associated data and its state. */
export interface RatchetV2 {
  readonly associatedData: Uint8Array;
  readonly state: RatchetStateV2;
}

function checkAd(ad: Uint8Array): void {
  if (!(ad instanceof Uint8Array) || ad.length !== 32) throw new RangeError('"associatedData" expected 32 bytes');
}

/**
 * The initiator's ratchet after a v2 handshake: HKs = HKa, NHKr = NHKb, and
 * the first sending chain and NHKs from KDF_RK2(SK, DH(R_A, SPK_B), "").
 * @example
 * const a = initiateV2(p, { sharedSecret, associatedData, theirRatchetKey: bundle.signedPreKey.publicKey });
 */
export function initiateV2(p: CryptoProvider, input: InitiateV2Input, options: RatchetV2Options = {}): RatchetV2 {
  checkAd(input.associatedData);
  const b = p.backend;
  const own = input.ownRatchetKey ?? generateDhKeyPair(p);
  const { hka, nhkb } = initialHeaderKeys(b, input.sharedSecret);
  const dhOut = dh(b, own.privateKey, input.theirRatchetKey);
  const step = kdfRoot2(b, input.sharedSecret, dhOut, NO_PQ_SECRET);
  wipe(dhOut);
  const pq = options.pq ?? defaultPqPort;
  return {
    associatedData: input.associatedData,
    state: {
      rootKey: step.rootKey,
      rootEpoch: 0,
      sendingRatchetKey: own,
      sendingChain: { chainKey: step.chainKey, counter: 0, epoch: 0 },
      sendingHeaderKey: hka,
      nextSendingHeaderKey: step.nextHeaderKey,
      nextReceivingHeaderKey: nhkb,
      previousCounter: 0,
      receivingChains: [],
      skipped: [],
      pq: pq.initial(true),
    },
  };
}

/** The responder's ratchet: RK = SK, NHKs = NHKb, NHKr = HKa; no sending chain until the first DH step. */
export function respondV2(p: CryptoProvider, input: RespondV2Input, options: RatchetV2Options = {}): RatchetV2 {
  checkAd(input.associatedData);
  const { hka, nhkb } = initialHeaderKeys(p.backend, input.sharedSecret);
  const pq = options.pq ?? defaultPqPort;
  return {
    associatedData: input.associatedData,
    state: {
      rootKey: new Uint8Array(input.sharedSecret),
      rootEpoch: 0,
      sendingRatchetKey: input.ownSignedPreKey,
      sendingChain: null,
      sendingHeaderKey: null,
      nextSendingHeaderKey: nhkb,
      nextReceivingHeaderKey: hka,
      previousCounter: 0,
      receivingChains: [],
      skipped: [],
      pq: pq.initial(false),
    },
  };
}

export interface EncryptV2Input {
  readonly plaintext: Uint8Array;
  /** This device: the sender the franking tag commits to. */
  readonly sender: FrankingSender;
  /** The sender attestation of a sealed send (formats-v2 §6.3), or absent. */
  readonly attestation?: Uint8Array | null;
}

export interface EncryptedV2 {
  readonly state: RatchetStateV2;
  /** EncryptedHeader, 60 bytes. */
  readonly header: Uint8Array;
  /** Seal(MK, pad(BodyV2), AD2 || HeaderV2 || frankingTag), tag last. */
  readonly ciphertext: Uint8Array;
  /** Travels beside the message (relay request, delivered envelope); the receiver passes it to decrypt. */
  readonly frankingTag: Uint8Array;
}

/**
 * Encrypts one message: draws the franking key, asks the PQ ratchet for
 * chunks, builds and pads BodyV2, seals it with AD2 || HeaderV2 ||
 * frankingTag, then seals the header with the body tag as nonce.
 */
export function ratchetEncryptV2(p: CryptoProvider, r: RatchetV2, input: EncryptV2Input, options: RatchetV2Options = {}): EncryptedV2 {
  const s = r.state;
  const chain = s.sendingChain;
  if (!chain || !s.sendingHeaderKey) fail('INVALID_STATE', 'session has no sending chain yet');
  if (chain.counter > MAX_MESSAGE_COUNTER) fail('INVALID_STATE', 'sending chain exhausted');
  const b = p.backend;
  const pq = options.pq ?? defaultPqPort;
  const frankingKey = p.random(FRANKING_KEY_BYTES);
  const tag = frankingTag(b, frankingKey, input.sender, input.plaintext);
  const pqOut = pq.onSend(p, s.pq);
  const body = encodeBodyV2({ frankingKey, pq: pqOut.chunks, plaintext: input.plaintext, attestation: input.attestation ?? null });
  const header = encodeHeaderV2({
    ratchetKey: s.sendingRatchetKey.publicKey,
    previousCounter: s.previousCounter,
    counter: chain.counter,
    pqEpoch: chain.epoch,
  });
  const mk = messageKeys(b, chain.chainKey);
  const padded = pad(body);
  const ciphertext = b.aeadSeal(mk.key, mk.nonce, padded, concatBytes(r.associatedData, header, tag));
  // `body` is not wiped: it may view the CBOR encoder's shared buffer; `padded` holds its copy.
  wipe(mk.key, mk.nonce, padded, frankingKey);
  const encryptedHeader = sealHeader(b, s.sendingHeaderKey, header, ciphertext, r.associatedData);
  const state: RatchetStateV2 = {
    ...s,
    sendingChain: { chainKey: nextChainKey(b, chain.chainKey), counter: chain.counter + 1, epoch: chain.epoch },
    pq: pqOut.state,
  };
  return { state, header: encryptedHeader, ciphertext, frankingTag: tag };
}

/** Which of a state's header keys opened a header. */
export type HeaderKeyRole =
  | { readonly kind: 'chain'; readonly index: number }
  | { readonly kind: 'skipped'; readonly group: SkippedGroup }
  | { readonly kind: 'next' };

export interface OpenedHeader {
  readonly header: HeaderV2;
  /** The 44 header bytes, authenticated again as part of the body's AD. */
  readonly headerBytes: Uint8Array;
  readonly role: HeaderKeyRole;
}

/**
 * Header trial (formats-v2 §4.6 step 2, spec/13-ratchet-v2.md §5): the
 * distinct keys among the newest receiving chain's header key, NHKr, the
 * older chains' header keys (newest first) and the skipped groups' header
 * keys (newest first); one 60-byte AEAD open each, at most
 * MAX_HEADER_TRIALS_PER_SESSION. Returns null when none opens: nothing else
 * was computed. Throws only for a header that opened but does not parse
 * (BAD_PUBLIC_KEY, OVERSIZED), which only a holder of the key can produce.
 */
export function trialOpenHeader(b: CryptoBackend, r: RatchetV2, encryptedHeader: Uint8Array, ciphertext: Uint8Array): OpenedHeader | null {
  if (encryptedHeader.length !== ENCRYPTED_HEADER_BYTES) {
    fail('MALFORMED', `EncryptedHeader: expected ${ENCRYPTED_HEADER_BYTES} bytes`, { length: encryptedHeader.length });
  }
  const nonce = headerNonce(ciphertext);
  const s = r.state;
  const tried: Uint8Array[] = [];
  const attempt = (key: Uint8Array, role: HeaderKeyRole): OpenedHeader | null => {
    // The same key is never tried twice (a held chain's group shares its key).
    for (const t of tried) if (constantTimeEqual(t, key)) return null;
    tried.push(key);
    const opened = openHeader(b, key, encryptedHeader, nonce, r.associatedData);
    return opened ? { header: decodeHeaderV2(opened), headerBytes: opened, role } : null;
  };
  // Order is cost only (the keys are distinct, so at most one opens): the newest chain and NHKr
  // first, since in-order traffic opens with one of them, then the older chains newest first,
  // then the groups of dropped chains. Of the first two, the likelier goes first, so in-order
  // traffic costs one open: once we have sent on our current chain the peer's next chain (NHKr)
  // answers it (ping-pong); before that, the peer is still on its newest chain (same direction).
  const newest = s.receivingChains.length - 1;
  const answerExpected = s.sendingChain !== null && s.sendingChain.counter > 0;
  if (answerExpected) {
    const next = attempt(s.nextReceivingHeaderKey, { kind: 'next' });
    if (next) return next;
  }
  if (newest >= 0) {
    const found = attempt((s.receivingChains[newest] as ReceivingChainV2).headerKey, { kind: 'chain', index: newest });
    if (found) return found;
  }
  if (!answerExpected) {
    const next = attempt(s.nextReceivingHeaderKey, { kind: 'next' });
    if (next) return next;
  }
  for (let i = newest - 1; i >= 0; i--) {
    const found = attempt((s.receivingChains[i] as ReceivingChainV2).headerKey, { kind: 'chain', index: i });
    if (found) return found;
  }
  for (let i = s.skipped.length - 1; i >= 0; i--) {
    const group = s.skipped[i] as SkippedGroup;
    const found = attempt(group.headerKey, { kind: 'skipped', group });
    if (found) return found;
  }
  return null;
}

export interface DecryptV2Input {
  readonly header: Uint8Array;
  readonly ciphertext: Uint8Array;
  /** The franking tag delivered beside the message. */
  readonly frankingTag: Uint8Array;
  /** The peer device: the sender the tag must commit to. */
  readonly sender: FrankingSender;
}

export interface DecryptedV2 {
  readonly state: RatchetStateV2;
  readonly plaintext: Uint8Array;
  readonly frankingKey: Uint8Array;
  readonly attestation: Uint8Array | null;
}

/**
 * Decrypts a v2 message: header trial, then the steps of formats-v2 §4.6.
 * Throws HEADER_DECRYPT_FAILED, DECRYPT_FAILED, DUPLICATE_MESSAGE,
 * TOO_FAR_AHEAD, PQ_EPOCH_INVALID, BAD_PADDING, MALFORMED,
 * FRANKING_TAG_MISMATCH, PQ_CHUNK_INVALID, BAD_PUBLIC_KEY, OVERSIZED or
 * WEAK_KEY; the input is never modified.
 */
export function ratchetDecryptV2(p: CryptoProvider, r: RatchetV2, input: DecryptV2Input, options: RatchetV2Options = {}): DecryptedV2 {
  const opened = trialOpenHeader(p.backend, r, input.header, input.ciphertext);
  if (!opened) fail('HEADER_DECRYPT_FAILED', 'no header key of this session opens the header');
  return decryptOpened(p, r, opened, input, options);
}

/** Steps 3-8 of formats-v2 §4.6, for a header that one of this state's keys opened. */
export function decryptOpened(
  p: CryptoProvider,
  r: RatchetV2,
  opened: OpenedHeader,
  input: DecryptV2Input,
  options: RatchetV2Options = {},
): DecryptedV2 {
  const b = p.backend;
  const pq = options.pq ?? defaultPqPort;
  const s = r.state;
  const h = opened.header;
  const ad = concatBytes(r.associatedData, opened.headerBytes, input.frankingTag);
  if (input.frankingTag.length !== 32) fail('MALFORMED', 'frankingTag: expected 32 bytes', { length: input.frankingTag.length });
  const role = opened.role;

  // A key skipped earlier, held under the header key that opened this header.
  const group = findGroup(s, role);
  if (group && bytesEqual(group.ratchetKey, h.ratchetKey)) {
    const mk = group.keys.get(h.counter);
    if (mk) {
      const body = openBody(b, mk, input, ad, h, pq, s.pq, epochOfGroup(s, group, h));
      return { ...body, state: { ...s, skipped: removeSkippedV2(s.skipped, group, h.counter), pq: body.pq } };
    }
  }

  // A chain we hold (a group whose chain is held shares its key, and the trial tries chains first).
  if (role.kind === 'chain') {
    const index = role.index;
    const chain = s.receivingChains[index] as ReceivingChainV2;
    if (!bytesEqual(chain.ratchetKey, h.ratchetKey)) fail('DECRYPT_FAILED', "header's ratchet key is not its chain's");
    if (h.pqEpoch !== chain.epoch) fail('PQ_EPOCH_INVALID', "header's PQ epoch is not its chain's", { epoch: h.pqEpoch });
    if (h.counter < chain.counter) fail('DUPLICATE_MESSAGE', 'message was already received', { counter: h.counter });
    const walk = walkChain(b, chain.chainKey, chain.counter, h.counter);
    const body = openBody(b, walk.keys, input, ad, h, pq, s.pq, chain.epoch);
    const receivingChains = s.receivingChains.slice();
    receivingChains[index] = { ...chain, chainKey: walk.chainKey, counter: h.counter + 1 };
    return {
      ...body,
      state: {
        ...s,
        receivingChains,
        skipped: addSkippedV2(s.skipped, chain.headerKey, chain.ratchetKey, chain.counter, walk.skipped),
        pq: body.pq,
      },
    };
  }

  if (role.kind === 'skipped') {
    // The header key of a chain no longer held, and no key for this message: it was received before.
    fail('DUPLICATE_MESSAGE', 'message was already received or its key evicted', { counter: h.counter });
  }

  return dhStep(p, r, h, input, ad, pq);
}

/** Formats-v2 §4.6 step 4 (NHKr) to step 8: a DH ratchet step. */
function dhStep(p: CryptoProvider, r: RatchetV2, h: HeaderV2, input: DecryptV2Input, ad: Uint8Array, pq: PqPort): DecryptedV2 {
  const b = p.backend;
  const s = r.state;
  // The epoch rule (formats-v2 §5.5): the root's epoch, or the next one with its secret held.
  let pqState = s.pq;
  let receiveSecret: Uint8Array = NO_PQ_SECRET;
  let rootEpoch = s.rootEpoch;
  if (h.pqEpoch !== s.rootEpoch) {
    const taken = h.pqEpoch === s.rootEpoch + 1 ? pq.takeReceiveSecret(pqState, h.pqEpoch) : null;
    if (!taken) fail('PQ_EPOCH_INVALID', "header's PQ epoch is neither the root's nor a held next one", { epoch: h.pqEpoch });
    pqState = taken.state;
    receiveSecret = taken.secret;
    rootEpoch = h.pqEpoch;
  }

  // Keep the keys of the peer's previous chain not yet seen (its counter .. PN-1)
  // and close it at PN, so its late messages decrypt only with stored keys, once.
  let skipped = s.skipped;
  let chains: readonly ReceivingChainV2[] = s.receivingChains;
  const currentIndex = chains.length - 1;
  const current = chains[currentIndex];
  if (current && h.previousCounter > current.counter) {
    const rest = skipAhead(b, current.chainKey, current.counter, h.previousCounter);
    skipped = addSkippedV2(skipped, current.headerKey, current.ratchetKey, current.counter, rest.skipped);
    const closed = chains.slice();
    closed[currentIndex] = { ...current, chainKey: rest.chainKey, counter: h.previousCounter };
    chains = closed;
  }
  const dhReceive = dh(b, s.sendingRatchetKey.privateKey, h.ratchetKey);
  const receiving = kdfRoot2(b, s.rootKey, dhReceive, receiveSecret);
  wipe(dhReceive);
  const walk = walkChain(b, receiving.chainKey, 0, h.counter);
  // The PQ secrets belong to the port's (immutable) states: not wiped here,
  // since the caller's old state may still hold the same bytes.
  const body = openBody(b, walk.keys, input, ad, h, pq, pqState, h.pqEpoch);

  // Only now, with the message authenticated and every check passed, turn
  // the sending side; a PQ secret completed by this very message mixes here.
  const own = generateDhKeyPair(p);
  let sendState = body.pq;
  let sendSecret: Uint8Array = NO_PQ_SECRET;
  let sendEpoch = rootEpoch;
  const mine = pq.takeSendSecret(sendState, rootEpoch);
  if (mine) {
    sendState = mine.state;
    sendSecret = mine.secret;
    sendEpoch = rootEpoch + 1;
  }
  const dhSend = dh(b, own.privateKey, h.ratchetKey);
  const sending = kdfRoot2(b, receiving.rootKey, dhSend, sendSecret);
  wipe(dhSend);
  const receivingChains = [
    ...chains,
    {
      ratchetKey: h.ratchetKey,
      chainKey: walk.chainKey,
      counter: h.counter + 1,
      epoch: h.pqEpoch,
      headerKey: s.nextReceivingHeaderKey,
    },
  ].slice(-MAX_RECEIVER_CHAINS);
  return {
    plaintext: body.plaintext,
    frankingKey: body.frankingKey,
    attestation: body.attestation,
    state: {
      rootKey: sending.rootKey,
      rootEpoch: sendEpoch,
      sendingRatchetKey: own,
      sendingChain: { chainKey: sending.chainKey, counter: 0, epoch: sendEpoch },
      sendingHeaderKey: s.nextSendingHeaderKey,
      nextSendingHeaderKey: sending.nextHeaderKey,
      nextReceivingHeaderKey: receiving.nextHeaderKey,
      previousCounter: s.sendingChain?.counter ?? 0,
      receivingChains,
      skipped: addSkippedV2(skipped, s.nextReceivingHeaderKey, h.ratchetKey, 0, walk.skipped),
      pq: sendState,
    },
  };
}

function findGroup(s: RatchetStateV2, role: HeaderKeyRole): SkippedGroup | null {
  if (role.kind === 'skipped') return role.group;
  if (role.kind === 'chain') {
    const key = (s.receivingChains[role.index] as ReceivingChainV2).headerKey;
    return s.skipped.find((g) => constantTimeEqual(g.headerKey, key)) ?? null;
  }
  return null;
}

function chainIndexOf(s: RatchetStateV2, headerKey: Uint8Array): number {
  return s.receivingChains.findIndex((c) => constantTimeEqual(c.headerKey, headerKey));
}

/** A skipped key's chain epoch: the held chain's, else the header's (it opened under that chain's key). */
function epochOfGroup(s: RatchetStateV2, group: SkippedGroup, h: HeaderV2): number {
  const i = chainIndexOf(s, group.headerKey);
  return i >= 0 ? (s.receivingChains[i] as ReceivingChainV2).epoch : h.pqEpoch;
}

/** Steps 5-7: open the body, unpad, decode, check the franking tag, hand the PQ chunks over. */
function openBody(
  b: CryptoBackend,
  mk: MessageKeys,
  input: DecryptV2Input,
  ad: Uint8Array,
  h: HeaderV2,
  pq: PqPort,
  pqState: RatchetStateV2['pq'],
  chainEpoch: number,
): { plaintext: Uint8Array; frankingKey: Uint8Array; attestation: Uint8Array | null; pq: RatchetStateV2['pq'] } {
  const padded = b.aeadOpen(mk.key, mk.nonce, input.ciphertext, ad);
  if (!padded) fail('DECRYPT_FAILED', 'message authentication failed', { counter: h.counter });
  const body = decodeBodyV2(unpad(padded));
  wipe(padded);
  if (!checkFrankingTag(b, body.frankingKey, input.sender, body.plaintext, input.frankingTag)) {
    fail('FRANKING_TAG_MISMATCH', 'the franking tag does not commit to this body and sender');
  }
  const next = pq.onReceive(b, pqState, body.pq, chainEpoch);
  return { plaintext: body.plaintext, frankingKey: body.frankingKey, attestation: body.attestation, pq: next };
}
