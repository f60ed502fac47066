/**
 * HPKE (RFC 9180), written again from the RFC for the verifier: suite
 * DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, modes base
 * (0) and auth (2), sequence number 0, exporter. HKDF's two halves come from
 * Node's HMAC here (Node has no expand-only HKDF call).
 */
import { ProtocolError } from './errors.mjs';
import { concat, utf8 } from './hex.mjs';
import { checkX25519PublicKey, dh, hmac, open, x25519PublicKey } from './primitives.mjs';

const i2osp = (n, w) => Uint8Array.from({ length: w }, (_, i) => (n >> (8 * (w - 1 - i))) & 0xff);
const KEM_SUITE = concat(utf8('KEM'), i2osp(0x20, 2));
const HPKE_SUITE = concat(utf8('HPKE'), i2osp(0x20, 2), i2osp(1, 2), i2osp(3, 2));
const EMPTY = new Uint8Array(0);

const extract = (salt, ikm) => hmac(salt.length ? salt : new Uint8Array(32), ikm);
function expand(prk, info, length) {
  const out = [];
  let t = EMPTY;
  for (let i = 1; out.length * 32 < length; i++) out.push((t = hmac(prk, concat(t, info, Uint8Array.of(i)))));
  return concat(...out).slice(0, length);
}
const labeledExtract = (suite, salt, label, ikm) => extract(salt, concat(utf8('HPKE-v1'), suite, utf8(label), ikm));
const labeledExpand = (suite, prk, label, info, length) =>
  expand(prk, concat(i2osp(length, 2), utf8('HPKE-v1'), suite, utf8(label), info), length);

/** DeriveKeyPair (RFC 9180 §7.1.3) for X25519. */
export function deriveKeyPair(ikm) {
  const sk = labeledExpand(KEM_SUITE, labeledExtract(KEM_SUITE, EMPTY, 'dkp_prk', ikm), 'sk', EMPTY, 32);
  return { sk, pk: x25519PublicKey(sk) };
}

/** A 32-byte X25519 key from outside: wrong length MALFORMED, else spec/02-keys.md §2.3. */
function publicKey(key, field) {
  if (key.length !== 32) throw new ProtocolError('MALFORMED', `${field}: not 32 bytes`);
  return checkX25519PublicKey(key, field);
}

function schedule(mode, dhOut, kemContext, info) {
  const shared = labeledExpand(KEM_SUITE, labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dhOut), 'shared_secret', kemContext, 32);
  const context = concat(
    Uint8Array.of(mode),
    labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY),
    labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', info),
  );
  const secret = labeledExtract(HPKE_SUITE, shared, 'secret', EMPTY);
  return {
    shared,
    context,
    secret,
    key: labeledExpand(HPKE_SUITE, secret, 'key', context, 32),
    baseNonce: labeledExpand(HPKE_SUITE, secret, 'base_nonce', context, 12),
    exporterSecret: labeledExpand(HPKE_SUITE, secret, 'exp', context, 32),
  };
}

/** The sender's schedule from skE (already derived), pkR and, in auth mode, skS. */
export function setupSender(skE, pkR, info, skS) {
  publicKey(pkR, 'pkR');
  const enc = x25519PublicKey(skE);
  const dhOut = skS ? concat(dh(skE, pkR), dh(skS, pkR)) : dh(skE, pkR);
  const kemContext = skS ? concat(enc, pkR, x25519PublicKey(skS)) : concat(enc, pkR);
  return { enc, ...schedule(skS ? 2 : 0, dhOut, kemContext, info) };
}

/** The receiver's schedule; `pkS` selects auth mode. */
export function setupReceiver(enc, skR, info, pkS) {
  publicKey(enc, 'enc');
  if (pkS) publicKey(pkS, 'pkS');
  const pkR = x25519PublicKey(skR);
  const dhOut = pkS ? concat(dh(skR, enc), dh(skR, pkS)) : dh(skR, enc);
  const kemContext = pkS ? concat(enc, pkR, pkS) : concat(enc, pkR);
  return schedule(pkS ? 2 : 0, dhOut, kemContext, info);
}

/** Open at sequence number 0: DECRYPT_FAILED when the tag does not verify. */
export function openOnce(s, aad, ciphertext) {
  const pt = open(s.key, s.baseNonce, ciphertext, aad);
  if (pt === null) throw new ProtocolError('DECRYPT_FAILED', 'HPKE open failed');
  return pt;
}

export const exportSecret = (s, context, length) => labeledExpand(HPKE_SUITE, s.exporterSecret, 'sec', context, length);
