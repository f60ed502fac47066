/**
 * The PQ ratchet of spec/design/formats-v2.md §5.3-§5.6, written again for
 * the verifier from the spec: PqChunks, the stored state, and the three
 * transitions (send, receive, the halves of a DH step). Plain objects, no
 * code from packages/core; ML-KEM through lib/primitives.mjs (noble), the
 * erasure code's field arithmetic from lib/erasure.mjs.
 */
import { encode, decode as decodeCbor } from './cbor.mjs';
import { mul } from './erasure.mjs';
import { ProtocolError } from './errors.mjs';
import { concat, utf8 } from './hex.mjs';
import { hkdf, mlkemDecapsulate, mlkemEncapsulate, mlkemKeygen, sha256 } from './primitives.mjs';

export const EK_BYTES = 1184;
export const CT_BYTES = 1088;
const K_EK = 19;
const K_CT = 17;
const MAX_CHUNKS = 8;
const MAX_EXCHANGE = 0xfffffffe;
const QUIET_RATIO = 4;
const CHUNKS_NORMAL = 2;
const CHUNKS_BURST = 8;
/** spec 16 §3: at most 2k chunks of the current payload between two received messages. */
const UNANSWERED = { 1: 2 * K_EK, 6: 2 * K_CT };
/** 1 + 5 + 1 + 1 + 8 x (1 + 2 + 2 + 64): the largest encoding of 8 chunks. */
const MAX_PQ_CHUNKS_BYTES = 560;
const MAX_STATE_BYTES = 1400;
const INFO = utf8('Parley v2 pq exchange');

/** A refusal with a details.reason, as the vectors name it. */
function refuse(code, reason, message) {
  const e = new ProtocolError(code, message);
  e.reason = reason;
  throw e;
}
const chunkInvalid = (reason, message) => refuse('PQ_CHUNK_INVALID', reason, message);

// ---- erasure code, with weights computed once per target ------------------

function inverse(a) {
  for (let x = 1; x < 256; x++) if (mul(a, x) === 1) return x;
  throw new Error('0 has no inverse');
}

function weights(xs, at) {
  return xs.map((xn, n) => {
    let num = 1;
    let den = 1;
    xs.forEach((xl, l) => {
      if (l !== n) {
        num = mul(num, at ^ xl);
        den = mul(den, xn ^ xl);
      }
    });
    return mul(num, inverse(den));
  });
}

function interpolate(xs, rows, at) {
  const w = weights(xs, at);
  const out = new Uint8Array(64);
  for (let j = 0; j < 64; j++) {
    let s = 0;
    for (let n = 0; n < xs.length; n++) s ^= mul(w[n], rows[n][j]);
    out[j] = s;
  }
  return out;
}

function dataRows(payload) {
  const k = Math.ceil(payload.length / 64);
  const p = new Uint8Array(64 * k);
  p.set(payload);
  return Array.from({ length: k }, (_, m) => p.slice(64 * m, 64 * m + 64));
}

function chunkAt(payload, index) {
  const rows = dataRows(payload);
  if (index < rows.length) return rows[index];
  return interpolate(
    rows.map((_, m) => m),
    rows,
    index,
  );
}

function decodePayload(chunks, length) {
  const k = Math.ceil(length / 64);
  const sorted = [...chunks].sort((a, b) => a.index - b.index).slice(0, k);
  const xs = sorted.map((c) => c.index);
  const rows = sorted.map((c) => c.bytes);
  const out = new Uint8Array(64 * k);
  for (let m = 0; m < k; m++) out.set(interpolate(xs, rows, m), 64 * m);
  return out.slice(0, length);
}

// ---- PqChunks (§5.3) -------------------------------------------------------

function readChunksValue(v) {
  if (!Array.isArray(v) || v.length !== 3) chunkInvalid('shape', 'not [exchange, kind, chunks]');
  const [exchange, kind, list] = v;
  if (typeof exchange !== 'number' || exchange < 1 || exchange > MAX_EXCHANGE) chunkInvalid('exchange', 'exchange');
  if (kind !== 1 && kind !== 2) chunkInvalid('kind', 'kind');
  if (!Array.isArray(list)) chunkInvalid('shape', 'chunks not a list');
  if (list.length === 0 || list.length > MAX_CHUNKS) chunkInvalid('count', 'chunk count');
  const seen = new Set();
  const chunks = list.map((c) => {
    if (!Array.isArray(c) || c.length !== 2) chunkInvalid('shape', 'chunk shape');
    const [index, bytes] = c;
    if (typeof index !== 'number' || index > 254) chunkInvalid('index', 'index');
    if (!(bytes instanceof Uint8Array) || bytes.length !== 64) chunkInvalid('length', 'length');
    if (seen.has(index)) chunkInvalid('duplicate', 'duplicate');
    seen.add(index);
    return { index, bytes };
  });
  return { exchange, kind, chunks };
}

export function decodeChunks(bytes) {
  return readChunksValue(decodeCbor(bytes, 'PqChunks', MAX_PQ_CHUNKS_BYTES));
}

export function encodeChunks(c) {
  return encode([c.exchange, c.kind, c.chunks.map((x) => [x.index, x.bytes])]);
}

// ---- state (§5.4, §5.6) ----------------------------------------------------

const isX = (role, exchange) => (exchange % 2 === 1) === (role === 0);

export function initialState(role) {
  return role === 0
    ? { role, quiet: 0, phase: 1, exchange: 1, seed: null, ek: null, next: 0, unanswered: 0 }
    : { role, quiet: 0, phase: 4, exchange: 1, chunks: [] };
}

function start(role, exchange, quiet) {
  const s = initialState(isX(role, exchange) ? 0 : 1);
  return { ...s, role, exchange, quiet };
}

const chunkList = (chunks) => chunks.map((c) => [c.index, c.bytes]);

export function encodeState(s) {
  const head = [s.role, s.quiet, s.phase, s.exchange];
  const tail = {
    1: () => [s.seed, s.ek, s.next, ...(s.unanswered > 0 ? [s.unanswered] : [])],
    2: () => [s.seed, s.ekHash, chunkList(s.chunks)],
    3: () => [s.secret],
    4: () => [chunkList(s.chunks)],
    5: () => [s.ek],
    6: () => [s.ct, s.secret, s.next, ...(s.unanswered > 0 ? [s.unanswered] : [])],
  }[s.phase]();
  return encode([...head, ...tail]);
}

function bytesOf(v, n) {
  if (!(v instanceof Uint8Array) || v.length !== n) throw new ProtocolError('BAD_RECORD', `expected ${n} bytes`);
  return v;
}

function uintOf(v, max) {
  if (typeof v !== 'number' || v > max) throw new ProtocolError('BAD_RECORD', 'integer out of range');
  return v;
}

function heldChunks(v, k) {
  if (!Array.isArray(v) || v.length >= k) throw new ProtocolError('BAD_RECORD', 'held chunks');
  const seen = new Set();
  return v.map((c) => {
    if (!Array.isArray(c) || c.length !== 2) throw new ProtocolError('BAD_RECORD', 'held chunk');
    const index = uintOf(c[0], 254);
    if (seen.has(index)) throw new ProtocolError('BAD_RECORD', 'repeated held chunk');
    seen.add(index);
    return { index, bytes: bytesOf(c[1], 64) };
  });
}

/** FIPS 203 §7.2: noble refuses such a key at encapsulation. */
export function ekValid(ek) {
  try {
    mlkemEncapsulate(ek, new Uint8Array(32));
    return true;
  } catch {
    return false;
  }
}

export function decodeState(bytes) {
  let v;
  try {
    v = decodeCbor(bytes, 'PqState', MAX_STATE_BYTES);
  } catch (e) {
    throw new ProtocolError('BAD_RECORD', e.message);
  }
  const bad = (m) => {
    throw new ProtocolError('BAD_RECORD', m);
  };
  if (!Array.isArray(v) || v.length < 4) bad('not an array');
  const [role, quiet, phase, exchange, ...f] = v;
  uintOf(role, 1);
  uintOf(quiet, 255);
  uintOf(phase, 6);
  uintOf(exchange, MAX_EXCHANGE);
  if (phase < 1 || exchange < 1) bad('phase / exchange 0');
  const fields = { 1: 4, 2: 3, 3: 1, 4: 1, 5: 1, 6: 4 }[phase];
  // Sending phases store `unanswered` only when above 0 (absent: 0; a written 0 is refused).
  if (f.length === fields && (phase === 1 || phase === 6) && f[3] === 0) bad('unanswered 0 written');
  if (f.length === fields - 1 && (phase === 1 || phase === 6)) f.push(0);
  if (f.length !== fields) bad('field count');
  if (phase <= 3 !== isX(role, exchange)) bad('phase of the other role');
  const c = { role, quiet, phase, exchange };
  switch (phase) {
    case 1:
      if ((f[0] === null) !== (f[1] === null)) bad('seed and ek together');
      return {
        ...c,
        seed: f[0] && bytesOf(f[0], 64),
        ek: f[1] && bytesOf(f[1], EK_BYTES),
        next: uintOf(f[2], 254),
        unanswered: uintOf(f[3], UNANSWERED[1]),
      };
    case 2:
      return { ...c, seed: bytesOf(f[0], 64), ekHash: bytesOf(f[1], 32), chunks: heldChunks(f[2], K_CT) };
    case 3:
      return { ...c, secret: bytesOf(f[0], 32) };
    case 4:
      return { ...c, chunks: heldChunks(f[0], K_EK) };
    case 5:
      if (!ekValid(bytesOf(f[0], EK_BYTES))) bad('stored ek fails the modulus check');
      return { ...c, ek: f[0] };
    default:
      return {
        ...c,
        ct: bytesOf(f[0], CT_BYTES),
        secret: bytesOf(f[1], 32),
        next: uintOf(f[2], 254),
        unanswered: uintOf(f[3], UNANSWERED[6]),
      };
  }
}

// ---- transitions -------------------------------------------------------------

const be32 = (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

/** pqSecret_x = HKDF(0^32, ss, "Parley v2 pq exchange" || be32(x) || SHA-256(ek) || SHA-256(ct), 32). */
export function exchangeSecret(exchange, ekHash, ct, ss) {
  return hkdf(new Uint8Array(32), ss, concat(INFO, be32(exchange), ekHash, sha256(ct)), 32);
}

function indicesFrom(next, count) {
  return { indices: Array.from({ length: count }, (_, i) => (next + i) % 255), next: (next + count) % 255 };
}

/** pqOnSend: `draw(n)` gives the random bytes. Returns { chunks (bytes or null), state }. */
export function send(s0, draw) {
  const count = s0.quiet >= QUIET_RATIO ? CHUNKS_BURST : CHUNKS_NORMAL;
  let s = { ...s0, quiet: 0 };
  if (s.phase === 1 && s.seed === null) {
    const seed = draw(64);
    s = { ...s, seed, ek: mlkemKeygen(seed).publicKey };
  }
  if (s.phase === 5) {
    const { ciphertext, sharedSecret } = mlkemEncapsulate(s.ek, draw(32));
    s = {
      role: s.role,
      quiet: 0,
      phase: 6,
      exchange: s.exchange,
      ct: ciphertext,
      secret: exchangeSecret(s.exchange, sha256(s.ek), ciphertext, sharedSecret),
      next: 0,
      unanswered: 0,
    };
  }
  if (s.phase !== 1 && s.phase !== 6) return { chunks: null, state: s };
  const allowed = Math.min(count, UNANSWERED[s.phase] - s.unanswered);
  if (allowed <= 0) return { chunks: null, state: s };
  const payload = s.phase === 1 ? s.ek : s.ct;
  const { indices, next } = indicesFrom(s.next, allowed);
  const chunks = {
    exchange: s.exchange,
    kind: s.phase === 1 ? 1 : 2,
    chunks: indices.map((index) => ({ index, bytes: chunkAt(payload, index) })),
  };
  return { chunks: encodeChunks(chunks), state: { ...s, next, unanswered: s.unanswered + allowed } };
}

function merge(held, incoming, k) {
  const out = [...held];
  for (const c of incoming) {
    if (out.length >= k) break;
    if (!out.some((h) => h.index === c.index)) out.push(c);
  }
  return out;
}

/** pqOnReceive of decoded chunks (or null). */
export function receive(s0, c) {
  const s = { ...s0, quiet: Math.min(s0.quiet + 1, QUIET_RATIO) };
  // A message from the peer answers what this side sent.
  if (s.phase === 1 || s.phase === 6) s.unanswered = 0;
  if (c === null || c.exchange < s.exchange) return s;
  if (c.exchange > s.exchange) chunkInvalid('future_exchange', 'future exchange');
  const x = isX(s.role, s.exchange);
  if (c.kind !== (x ? 2 : 1)) chunkInvalid('kind', 'kind');
  if (s.phase === 1 && s.seed === null) chunkInvalid('premature', 'ct before the key');
  if (s.phase === 1 || s.phase === 2) {
    const base =
      s.phase === 1 ? { role: s.role, quiet: s.quiet, phase: 2, exchange: s.exchange, seed: s.seed, ekHash: sha256(s.ek), chunks: [] } : s;
    const chunks = merge(base.chunks, c.chunks, K_CT);
    if (chunks.length < K_CT) return { ...base, chunks };
    const ct = decodePayload(chunks, CT_BYTES);
    const ss = mlkemDecapsulate(ct, mlkemKeygen(base.seed).secretKey);
    return { role: s.role, quiet: s.quiet, phase: 3, exchange: s.exchange, secret: exchangeSecret(s.exchange, base.ekHash, ct, ss) };
  }
  if (s.phase === 4) {
    const chunks = merge(s.chunks, c.chunks, K_EK);
    if (chunks.length < K_EK) return { ...s, chunks };
    const ek = decodePayload(chunks, EK_BYTES);
    if (!ekValid(ek)) chunkInvalid('bad_key', 'decoded ek fails the modulus check');
    return { role: s.role, quiet: s.quiet, phase: 5, exchange: s.exchange, ek };
  }
  return s;
}

/** A half of a DH step: returns { secret, epoch, state }. */
export function step(s, side, epoch) {
  const root = s.exchange - 1;
  const mix = () => ({ secret: s.secret, epoch: s.exchange, state: start(s.role, s.exchange + 1, s.quiet) });
  if (side === 'send') return s.phase === 3 ? mix() : { secret: new Uint8Array(0), epoch: root, state: s };
  if (epoch === root) return { secret: new Uint8Array(0), epoch: root, state: s };
  if (epoch === s.exchange && s.phase === 6) return mix();
  return refuse('PQ_EPOCH_INVALID', undefined, 'epoch');
}
