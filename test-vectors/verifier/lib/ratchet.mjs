/**
 * The Double Ratchet of spec/04-double-ratchet.md: KDF_RK and KDF_CK (§2),
 * padding (§5), and the send and receive transitions (§3-§4) as functions
 * that return a new state and never modify the old one.
 */
import { ChainConstant, Info, Limits } from './constants.mjs';
import { fail } from './errors.mjs';
import { concat, equal, toHex } from './hex.mjs';
import { dh, hkdf, hmac, open, seal, x25519PublicKey } from './primitives.mjs';
import { encodeHeader } from './structures.mjs';

// ---- KDFs (§2) ------------------------------------------------------------

export function kdfRoot(rootKey, dhOutput) {
  const out = hkdf(rootKey, dhOutput, Info.rootChain, 64);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32) };
}

export function kdfChain(chainKey) {
  return {
    messageKey: hmac(chainKey, ChainConstant.messageKey),
    nonce: hmac(chainKey, ChainConstant.messageNonce).slice(0, 12),
    nextChainKey: hmac(chainKey, ChainConstant.nextChainKey),
  };
}

// ---- padding (§5) ---------------------------------------------------------

const bitLength = (n) => n.toString(2).length;

/** The padded length for n = len(plaintext) + 1 bytes. */
export function paddedLength(n) {
  if (n <= 4096) return Math.max(160, Math.ceil(n / 160) * 160);
  const e = bitLength(n) - 1; // floor(log2 n)
  const s = bitLength(e); // floor(log2 e) + 1
  const unit = 2 ** (e - s);
  return Math.ceil(n / unit) * unit;
}

export function pad(plaintext) {
  const out = new Uint8Array(paddedLength(plaintext.length + 1));
  out.set(plaintext);
  out[plaintext.length] = 0x80;
  return out;
}

export function unpad(padded) {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) fail('BAD_PADDING', 'padding');
  return padded.slice(0, i);
}

// ---- state ----------------------------------------------------------------
// RatchetState = { rootKey, sending: { privateKey, publicKey }, sendingChain: { chainKey, counter } | null,
//                  previousCounter, receiving: [{ ratchetKey, chainKey, counter }] (oldest first),
//                  skipped: Map("hex(ratchetKey):counter" -> { ratchetKey, counter, key, nonce }) (oldest first) }

export const skippedId = (ratchetKey, counter) => `${toHex(ratchetKey)}:${counter}`;

export function initInitiator(sharedSecret, remoteRatchetKey, ownRatchetPrivateKey) {
  const own = { privateKey: ownRatchetPrivateKey, publicKey: x25519PublicKey(ownRatchetPrivateKey) };
  const dhOut = dh(own.privateKey, remoteRatchetKey);
  const { rootKey, chainKey } = kdfRoot(sharedSecret, dhOut);
  return {
    state: { rootKey, sending: own, sendingChain: { chainKey, counter: 0 }, previousCounter: 0, receiving: [], skipped: new Map() },
    dhOutput: dhOut,
  };
}

export function initResponder(sharedSecret, signedPreKey) {
  return { rootKey: sharedSecret, sending: signedPreKey, sendingChain: null, previousCounter: 0, receiving: [], skipped: new Map() };
}

/** Encrypts padded bytes; `ad` is the session's associated data. */
export function ratchetEncrypt(s, padded, ad) {
  const chain = s.sendingChain;
  if (!chain) fail('INVALID_STATE', 'no sending chain');
  const header = { ratchetKey: s.sending.publicKey, previousCounter: s.previousCounter, counter: chain.counter };
  const headerBytes = encodeHeader(header);
  const k = kdfChain(chain.chainKey);
  const aeadAd = concat(ad, headerBytes);
  const ciphertext = seal(k.messageKey, k.nonce, padded, aeadAd);
  return {
    state: { ...s, sendingChain: { chainKey: k.nextChainKey, counter: chain.counter + 1 } },
    header,
    headerBytes,
    chain,
    keys: k,
    aeadAd,
    ciphertext,
  };
}

function walk(chainKey, from, to) {
  if (to - from > Limits.MAX_FORWARD_JUMP) fail('TOO_FAR_AHEAD', `${to - from} ahead`);
  const skipped = [];
  let ck = chainKey;
  for (let i = from; i < to; i++) {
    const k = kdfChain(ck);
    skipped.push({ counter: i, key: k.messageKey, nonce: k.nonce });
    ck = k.nextChainKey;
  }
  const k = kdfChain(ck);
  return { skipped, keys: { counter: to, key: k.messageKey, nonce: k.nonce }, chainKeyAt: ck, chainKey: k.nextChainKey };
}

function store(map, ratchetKey, entries) {
  if (entries.length === 0) return map;
  const out = new Map(map);
  for (const e of entries) out.set(skippedId(ratchetKey, e.counter), { ratchetKey, counter: e.counter, key: e.key, nonce: e.nonce });
  for (const id of out.keys()) {
    if (out.size <= Limits.MAX_SKIPPED_KEYS) break;
    out.delete(id);
  }
  return out;
}

function openWith(keys, ciphertext, aeadAd) {
  const padded = open(keys.key, keys.nonce, ciphertext, aeadAd);
  if (!padded) fail('DECRYPT_FAILED', 'authentication');
  return padded;
}

/**
 * Decrypts a message (§4). `newRatchetPrivateKey()` is called only when a DH
 * ratchet step authenticates. Returns the new state, the padded plaintext
 * and a trace of what was derived.
 */
export function ratchetDecrypt(s, header, headerBytes, ciphertext, ad, newRatchetPrivateKey) {
  const aeadAd = concat(ad, headerBytes);
  const id = skippedId(header.ratchetKey, header.counter);
  const stored = s.skipped.get(id);
  if (stored) {
    const padded = openWith(stored, ciphertext, aeadAd);
    const skipped = new Map(s.skipped);
    skipped.delete(id);
    return { state: { ...s, skipped }, padded, trace: { path: 'storedKey', keys: stored, stored: [] } };
  }

  const index = s.receiving.findIndex((c) => equal(c.ratchetKey, header.ratchetKey));
  if (index >= 0) {
    const chain = s.receiving[index];
    if (header.counter < chain.counter) fail('DUPLICATE_MESSAGE', `counter ${header.counter}`);
    const w = walk(chain.chainKey, chain.counter, header.counter);
    const padded = openWith(w.keys, ciphertext, aeadAd);
    const receiving = s.receiving.slice();
    receiving[index] = { ratchetKey: chain.ratchetKey, chainKey: w.chainKey, counter: header.counter + 1 };
    const storedNow = w.skipped.map((e) => ({ ratchetKey: chain.ratchetKey, ...e }));
    return {
      state: { ...s, receiving, skipped: store(s.skipped, chain.ratchetKey, w.skipped) },
      padded,
      trace: { path: 'currentChain', keys: w.keys, stored: storedNow },
    };
  }

  // A DH ratchet step. Step 1: finish the previous receiving chain.
  let skipped = s.skipped;
  let chains = s.receiving;
  const storedNow = [];
  const current = s.receiving[s.receiving.length - 1];
  if (current && header.previousCounter > current.counter) {
    const rest = walk(current.chainKey, current.counter, header.previousCounter);
    skipped = store(skipped, current.ratchetKey, rest.skipped);
    storedNow.push(...rest.skipped.map((e) => ({ ratchetKey: current.ratchetKey, ...e })));
    // The chain itself moves to previousCounter, so replaying a message whose stored key was used is a duplicate.
    chains = [...chains.slice(0, -1), { ratchetKey: current.ratchetKey, chainKey: rest.chainKeyAt, counter: header.previousCounter }];
  }
  const previousChainStored = storedNow.length;
  const dhReceive = dh(s.sending.privateKey, header.ratchetKey);
  const receivingRoot = kdfRoot(s.rootKey, dhReceive);
  const w = walk(receivingRoot.chainKey, 0, header.counter);
  const padded = openWith(w.keys, ciphertext, aeadAd);
  storedNow.push(...w.skipped.map((e) => ({ ratchetKey: header.ratchetKey, ...e })));

  const priv = newRatchetPrivateKey();
  const own = { privateKey: priv, publicKey: x25519PublicKey(priv) };
  const dhSend = dh(own.privateKey, header.ratchetKey);
  const sendingRoot = kdfRoot(receivingRoot.rootKey, dhSend);
  const previousCounter = s.sendingChain?.counter ?? 0;
  const state = {
    rootKey: sendingRoot.rootKey,
    sending: own,
    sendingChain: { chainKey: sendingRoot.chainKey, counter: 0 },
    previousCounter,
    receiving: [...chains, { ratchetKey: header.ratchetKey, chainKey: w.chainKey, counter: header.counter + 1 }].slice(
      -Limits.MAX_RECEIVER_CHAINS,
    ),
    skipped: store(skipped, header.ratchetKey, w.skipped),
  };
  return {
    state,
    padded,
    trace: {
      path: 'newChain',
      keys: w.keys,
      stored: storedNow,
      dhRatchet: {
        rootKey: s.rootKey,
        sendingRatchetPrivateKey: s.sending.privateKey,
        previousChainKeysStored: previousChainStored,
        dhReceive,
        rootKeyAfterReceive: receivingRoot.rootKey,
        receivingChainKey: receivingRoot.chainKey,
        newRatchetPrivateKey: own.privateKey,
        newRatchetKey: own.publicKey,
        dhSend,
        rootKeyAfterSend: sendingRoot.rootKey,
        sendingChainKey: sendingRoot.chainKey,
        previousCounter,
      },
    },
  };
}
