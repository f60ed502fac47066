/**
 * Ratchet v2 of spec/13-ratchet-v2.md, written from the spec: KDF_RK2 and the
 * header keys (§2), HeaderV2 and its encryption (§3), BodyV2 and the franking
 * tag (§4), decryption with bounded header trial (§5). States are plain
 * objects; every transition returns a new one. The PQ ratchet is outside:
 * the caller passes the secrets mixed at each half of a DH step.
 */
import { decode, encode, readArray, readBytes } from './cbor.mjs';
import { ChainConstant, Limits } from './constants.mjs';
import { fail } from './errors.mjs';
import { concat, equal, utf8 } from './hex.mjs';
import { checkX25519PublicKey, dh, hkdf, hmac, open, seal, x25519PublicKey } from './primitives.mjs';
import { pad, unpad } from './ratchet.mjs';

const INFO_ROOT2 = utf8('Parley v2 root chain');
const INFO_HEADER_KEYS = utf8('Parley v2 header keys');
const LABEL_FRANKING_TAG = 'Parley v2 franking tag';
const MAX_COUNTER = 0xfffffffe;
const MAX_SKIPPED_HEADER_KEYS = 8;
const MAX_RECEIVER_CHAINS = 5;
const MAX_FORWARD_JUMP = 2000;
const MAX_SKIPPED_KEYS = 2000;

export function kdfRoot2(rootKey, dhOutput, pq) {
  const out = hkdf(rootKey, concat(dhOutput, pq), INFO_ROOT2, 96);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32, 64), nextHeaderKey: out.slice(64, 96) };
}

export function headerKeys(sharedSecret) {
  const out = hkdf(new Uint8Array(32), sharedSecret, INFO_HEADER_KEYS, 64);
  return { hka: out.slice(0, 32), nhkb: out.slice(32) };
}

function chainStep(ck) {
  return {
    key: hmac(ck, ChainConstant.messageKey),
    nonce: hmac(ck, ChainConstant.messageNonce).slice(0, 12),
    next: hmac(ck, ChainConstant.nextChainKey),
  };
}

const u32 = (n) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

export const encodeHeaderV2 = (h) => concat(h.ratchetKey, u32(h.previousCounter), u32(h.counter), u32(h.pqEpoch));

export function parseHeaderV2(bytes) {
  if (bytes.length !== 44) fail('MALFORMED', 'HeaderV2 length');
  const v = new DataView(bytes.buffer, bytes.byteOffset, 44);
  const h = { previousCounter: v.getUint32(32), counter: v.getUint32(36), pqEpoch: v.getUint32(40) };
  if (h.previousCounter > MAX_COUNTER || h.counter > MAX_COUNTER || h.pqEpoch > MAX_COUNTER) fail('OVERSIZED', 'header field');
  return { ratchetKey: checkX25519PublicKey(bytes.slice(0, 32), 'header.ratchetKey'), ...h };
}

export const frankingTag = (fk, sender, plaintext) => hmac(fk, encode([LABEL_FRANKING_TAG, sender.accountKey, sender.deviceId, plaintext]));

function decodeBody(bytes) {
  const f = readArray(decode(bytes, 'BodyV2', Limits.MAX_MESSAGE_BYTES), 'BodyV2', 4);
  return {
    frankingKey: readBytes(f[0], 'frankingKey', 32),
    pq: f[1],
    plaintext: readBytes(f[2], 'plaintext', { max: 1 << 20 }),
    attestation: f[3] === null ? null : readBytes(f[3], 'attestation', 64),
  };
}

// ---- state ----------------------------------------------------------------
// { ad, rootKey, rootEpoch, dhs: {privateKey, publicKey}, sendingChain: {chainKey, counter, epoch} | null,
//   hks, nhks, nhkr, previousCounter, receiving: [{ratchetKey, chainKey, counter, epoch, hk}] (oldest first),
//   skipped: [{hk, ratchetKey, keys: Map(counter -> {key, nonce})}] (oldest first) }

export function initiator(sharedSecret, ad, theirRatchetKey, ownPrivate) {
  const { hka, nhkb } = headerKeys(sharedSecret);
  const dhs = { privateKey: ownPrivate, publicKey: x25519PublicKey(ownPrivate) };
  const step = kdfRoot2(sharedSecret, dh(ownPrivate, theirRatchetKey), new Uint8Array(0));
  return {
    ad,
    rootKey: step.rootKey,
    rootEpoch: 0,
    dhs,
    sendingChain: { chainKey: step.chainKey, counter: 0, epoch: 0 },
    hks: hka,
    nhks: step.nextHeaderKey,
    nhkr: nhkb,
    previousCounter: 0,
    receiving: [],
    skipped: [],
  };
}

export function responder(sharedSecret, ad, signedPreKeyPrivate) {
  const { hka, nhkb } = headerKeys(sharedSecret);
  return {
    ad,
    rootKey: sharedSecret,
    rootEpoch: 0,
    dhs: { privateKey: signedPreKeyPrivate, publicKey: x25519PublicKey(signedPreKeyPrivate) },
    sendingChain: null,
    hks: null,
    nhks: nhkb,
    nhkr: hka,
    previousCounter: 0,
    receiving: [],
    skipped: [],
  };
}

/** Encrypts a given (unpadded) body whose franking key and plaintext make `tag`. */
export function encryptV2(s, body, tag) {
  const chain = s.sendingChain;
  const header = encodeHeaderV2({
    ratchetKey: s.dhs.publicKey,
    previousCounter: s.previousCounter,
    counter: chain.counter,
    pqEpoch: chain.epoch,
  });
  const mk = chainStep(chain.chainKey);
  const ciphertext = seal(mk.key, mk.nonce, pad(body), concat(s.ad, header, tag));
  const nonce = ciphertext.slice(ciphertext.length - 16, ciphertext.length - 4);
  const encryptedHeader = seal(s.hks, nonce, header, s.ad);
  return {
    state: { ...s, sendingChain: { ...chain, chainKey: mk.next, counter: chain.counter + 1 } },
    header,
    messageKey: mk,
    encryptedHeader,
    ciphertext,
  };
}

function addSkipped(groups, hk, ratchetKey, from, keys) {
  if (keys.length === 0) return groups;
  const i = groups.findIndex((g) => equal(g.hk, hk));
  const map = new Map(i >= 0 ? groups[i].keys : []);
  keys.forEach((k, j) => map.set(from + j, k));
  let out = [...groups.filter((_, j) => j !== i), { hk, ratchetKey, keys: map }].slice(-MAX_SKIPPED_HEADER_KEYS);
  let total = out.reduce((n, g) => n + g.keys.size, 0);
  while (total > MAX_SKIPPED_KEYS) {
    const first = new Map(out[0].keys);
    first.delete(first.keys().next().value);
    total--;
    out = first.size ? [{ ...out[0], keys: first }, ...out.slice(1)] : out.slice(1);
  }
  return out;
}

/** The keys of messages from..to-1 and the chain key at `to` (spec/04 §4.4 bound). */
function skipTo(ck, from, to) {
  if (to - from > MAX_FORWARD_JUMP) fail('TOO_FAR_AHEAD', 'jump');
  const keys = [];
  let c = ck;
  for (let i = from; i < to; i++) {
    const st = chainStep(c);
    keys.push({ key: st.key, nonce: st.nonce });
    c = st.next;
  }
  return { skipped: keys, chainKey: c };
}

/** As skipTo, plus the keys of message `to` and the chain key after it. */
function walk(ck, from, to) {
  const ahead = skipTo(ck, from, to);
  const last = chainStep(ahead.chainKey);
  return { skipped: ahead.skipped, mk: { key: last.key, nonce: last.nonce }, next: last.next };
}

/**
 * Decrypts; `random` = { newRatchetPrivateKey, pqSecretReceive, pqSecretSend } for a DH step (secrets: null or
 * 32 bytes, as the PQ ratchet hands them over). Returns { state, plaintext, opensWith, header, trials }.
 */
export function decryptV2(s, m, sender, random) {
  if (m.ciphertext.length < 16) fail('MALFORMED', 'ciphertext');
  if (m.encryptedHeader.length !== 60) fail('MALFORMED', 'header');
  const nonce = m.ciphertext.slice(m.ciphertext.length - 16, m.ciphertext.length - 4);
  const candidates = [
    ...[...s.receiving].reverse().map((c, i) => ({ kind: 'chain', key: c.hk, index: s.receiving.length - 1 - i })),
    ...[...s.skipped].reverse().map((g) => ({ kind: 'skipped', key: g.hk, group: g })),
    { kind: 'next', key: s.nhkr },
  ];
  const tried = [];
  let found = null;
  let headerBytes = null;
  for (const c of candidates) {
    if (tried.some((k) => equal(k, c.key))) continue;
    tried.push(c.key);
    headerBytes = open(c.key, nonce, m.encryptedHeader, s.ad);
    if (headerBytes) {
      found = c;
      break;
    }
  }
  if (!found) fail('HEADER_DECRYPT_FAILED', 'no header key opens the header');
  const h = parseHeaderV2(headerBytes);
  const ad = concat(s.ad, headerBytes, m.frankingTag);
  const openBody = (mk) => {
    const padded = open(mk.key, mk.nonce, m.ciphertext, ad);
    if (!padded) fail('DECRYPT_FAILED', 'body');
    const body = decodeBody(unpad(padded));
    if (!equal(frankingTag(body.frankingKey, sender, body.plaintext), m.frankingTag)) fail('FRANKING_TAG_MISMATCH', 'tag');
    return body;
  };
  const result = (state, body) => ({ state, plaintext: body.plaintext, opensWith: found.kind, header: headerBytes, trials: tried.length });

  const group = found.kind === 'skipped' ? found.group : found.kind === 'chain' ? s.skipped.find((g) => equal(g.hk, found.key)) : null;
  if (group && equal(group.ratchetKey, h.ratchetKey) && group.keys.has(h.counter)) {
    const body = openBody(group.keys.get(h.counter));
    const keys = new Map(group.keys);
    keys.delete(h.counter);
    const skipped = s.skipped.flatMap((g) => (g === group ? (keys.size ? [{ ...g, keys }] : []) : [g]));
    return result({ ...s, skipped }, body);
  }
  if (found.kind === 'chain') {
    const c = s.receiving[found.index];
    if (!equal(c.ratchetKey, h.ratchetKey)) fail('DECRYPT_FAILED', 'ratchet key of another chain');
    if (h.pqEpoch !== c.epoch) fail('PQ_EPOCH_INVALID', 'epoch of another chain');
    if (h.counter < c.counter) fail('DUPLICATE_MESSAGE', 'already received');
    const w = walk(c.chainKey, c.counter, h.counter);
    const body = openBody(w.mk);
    const receiving = s.receiving.map((x, i) => (i === found.index ? { ...x, chainKey: w.next, counter: h.counter + 1 } : x));
    return result({ ...s, receiving, skipped: addSkipped(s.skipped, c.hk, c.ratchetKey, c.counter, w.skipped) }, body);
  }
  if (found.kind === 'skipped') fail('DUPLICATE_MESSAGE', 'chain gone, key used');

  // NHKr: a DH step.
  let recvPq = new Uint8Array(0);
  let rootEpoch = s.rootEpoch;
  if (h.pqEpoch !== s.rootEpoch) {
    if (h.pqEpoch !== s.rootEpoch + 1 || !random?.pqSecretReceive) fail('PQ_EPOCH_INVALID', 'epoch');
    recvPq = random.pqSecretReceive;
    rootEpoch = h.pqEpoch;
  }
  let skipped = s.skipped;
  let receiving = s.receiving;
  const cur = receiving[receiving.length - 1];
  if (cur && h.previousCounter > cur.counter) {
    const rest = skipTo(cur.chainKey, cur.counter, h.previousCounter);
    skipped = addSkipped(skipped, cur.hk, cur.ratchetKey, cur.counter, rest.skipped);
    receiving = [...receiving.slice(0, -1), { ...cur, chainKey: rest.chainKey, counter: h.previousCounter }];
  }
  const recv = kdfRoot2(s.rootKey, dh(s.dhs.privateKey, h.ratchetKey), recvPq);
  const w = walk(recv.chainKey, 0, h.counter);
  const body = openBody(w.mk);
  if (!random?.newRatchetPrivateKey) fail('INVALID_STATE', 'a DH step needs the new ratchet key');
  const own = { privateKey: random.newRatchetPrivateKey, publicKey: x25519PublicKey(random.newRatchetPrivateKey) };
  const sendPq = random.pqSecretSend ?? new Uint8Array(0);
  const sendEpoch = random.pqSecretSend ? rootEpoch + 1 : rootEpoch;
  const send = kdfRoot2(recv.rootKey, dh(own.privateKey, h.ratchetKey), sendPq);
  return result(
    {
      ad: s.ad,
      rootKey: send.rootKey,
      rootEpoch: sendEpoch,
      dhs: own,
      sendingChain: { chainKey: send.chainKey, counter: 0, epoch: sendEpoch },
      hks: s.nhks,
      nhks: send.nextHeaderKey,
      nhkr: recv.nextHeaderKey,
      previousCounter: s.sendingChain?.counter ?? 0,
      receiving: [...receiving, { ratchetKey: h.ratchetKey, chainKey: w.next, counter: h.counter + 1, epoch: h.pqEpoch, hk: s.nhkr }].slice(
        -MAX_RECEIVER_CHAINS,
      ),
      skipped: addSkipped(skipped, s.nhkr, h.ratchetKey, 0, w.skipped),
    },
    body,
  );
}
