/**
 * The primitives of spec/01-conventions.md §3, from Node's built-in crypto
 * (OpenSSL) and, for ML-KEM-768 only, @noble/post-quantum. Nothing here
 * comes from packages/core: keys are imported as DER (core's node backend
 * uses JWK), HKDF and the AEAD are called directly.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  sign,
  verify,
} from 'node:crypto';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ProtocolError } from './errors.mjs';
import { concat, equal, fromHex, toHex } from './hex.mjs';

const u8 = (buf) => new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();

// RFC 8410 key encodings: a fixed DER prefix followed by the raw 32-byte key.
const DER = {
  x25519Private: fromHex('302e020100300506032b656e04220420'),
  x25519Public: fromHex('302a300506032b656e032100'),
  ed25519Private: fromHex('302e020100300506032b657004220420'),
  ed25519Public: fromHex('302a300506032b6570032100'),
};

function privateKey(kind, raw) {
  if (raw.length !== 32) throw new RangeError(`${kind} private key must be 32 bytes`);
  return createPrivateKey({ key: Buffer.from(concat(DER[`${kind}Private`], raw)), format: 'der', type: 'pkcs8' });
}

function publicKey(kind, raw) {
  return createPublicKey({ key: Buffer.from(concat(DER[`${kind}Public`], raw)), format: 'der', type: 'spki' });
}

function rawPublic(kind, keyObject) {
  const der = u8(keyObject.export({ format: 'der', type: 'spki' }));
  return der.slice(DER[`${kind}Public`].length);
}

// ---- X25519 (RFC 7748; spec/02-keys.md §2.3) ------------------------------

export const x25519PublicKey = (priv) => rawPublic('x25519', createPublicKey(privateKey('x25519', priv)));

/** Raw X25519; OpenSSL refuses an all-zero result, which is returned here as zeros (the caller decides). */
export function x25519Raw(priv, pub) {
  try {
    return u8(diffieHellman({ privateKey: privateKey('x25519', priv), publicKey: publicKey('x25519', pub) }));
  } catch {
    return new Uint8Array(32);
  }
}

/** DH(priv, pub) of spec/01 §3.1: X25519 with the all-zero output refused (WEAK_KEY). */
export function dh(priv, pub) {
  const out = x25519Raw(priv, pub);
  if (out.every((b) => b === 0)) throw new ProtocolError('WEAK_KEY', 'X25519 output is all zero');
  return out;
}

const SMALL_ORDER_X25519 = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
].map(fromHex);

const P = 2n ** 255n - 19n;
const leInt = (b) => b.reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);

/** spec/02-keys.md §2.3: 32 bytes, canonical (top bit clear, value below p), not of small order. */
export function checkX25519PublicKey(key, field) {
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new ProtocolError('BAD_PUBLIC_KEY', `${field}: not 32 bytes`);
  if (key[31] & 0x80 || leInt(key) >= P) throw new ProtocolError('BAD_PUBLIC_KEY', `${field}: non-canonical`);
  if (SMALL_ORDER_X25519.some((k) => equal(k, key))) throw new ProtocolError('BAD_PUBLIC_KEY', `${field}: small order`);
  return key;
}

// ---- Ed25519 (RFC 8032; spec/01-conventions.md §3.2) ----------------------

export const ed25519PublicKey = (seed) => rawPublic('ed25519', createPublicKey(privateKey('ed25519', seed)));
export const ed25519Sign = (seed, message) => u8(sign(null, message, privateKey('ed25519', seed)));

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
// The y-coordinates (sign bit cleared) of the Ed25519 points of small order, canonical or not.
const SMALL_ORDER_ED25519_Y = [0n, 1n, P - 1n, P, P + 1n].concat(
  [
    '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
    'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  ].map((h) => leInt(fromHex(h))),
);

// Edwards25519 arithmetic for the one check node:crypto cannot do: whether A
// is torsion-free ([L]A = identity). Written from RFC 8032 §5.1 in BigInt,
// slow (milliseconds) and plain; the verifier checks few distinct keys.
const mod = (n) => ((n % P) + P) % P;
const pow = (b, e) => {
  let r = 1n;
  for (let x = mod(b), k = e; k > 0n; k >>= 1n, x = (x * x) % P) if (k & 1n) r = (r * x) % P;
  return r;
};
const D = mod(-121665n * pow(121666n, P - 2n));
const SQRT_M1 = pow(2n, (P - 1n) / 4n);

/** RFC 8032 §5.1.3 point decoding, in extended coordinates [X, Y, Z, T]; null when not on the curve. */
function decodePoint(bytes) {
  const y = leInt(bytes) & ((1n << 255n) - 1n);
  const sign = BigInt(bytes[31] >> 7);
  if (y >= P) return null;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * pow(v, 3n) * pow(u * pow(v, 7n), (P - 5n) / 8n));
  if (mod(v * x * x) !== u) {
    if (mod(v * x * x) !== mod(-u)) return null;
    x = mod(x * SQRT_M1);
  }
  if (x === 0n && sign === 1n) return null;
  if ((x & 1n) !== sign) x = P - x;
  return [x, y, 1n, mod(x * y)];
}

/** RFC 8032 §5.1.4 point addition (complete; also used to double). */
function addPoints([X1, Y1, Z1, T1], [X2, Y2, Z2, T2]) {
  const a = mod((Y1 - X1) * (Y2 - X2));
  const b = mod((Y1 + X1) * (Y2 + X2));
  const c = mod(T1 * 2n * D * T2);
  const d = mod(Z1 * 2n * Z2);
  const [e, f, g, h] = [b - a, d - c, d + c, b + a];
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

const torsionChecked = new Map();

/** [L]A = identity (X = 0, Y = Z): A lies in the prime-order subgroup. */
function isTorsionFree(pub) {
  const id = toHex(pub);
  if (!torsionChecked.has(id)) {
    const point = decodePoint(pub);
    let ok = false;
    if (point) {
      let acc = [0n, 1n, 1n, 0n];
      for (let i = 252n; i >= 0n; i--) {
        acc = addPoints(acc, acc);
        if ((L >> i) & 1n) acc = addPoints(acc, point);
      }
      ok = acc[0] === 0n && acc[1] === acc[2];
    }
    torsionChecked.set(id, ok);
  }
  return torsionChecked.get(id);
}

/**
 * Strict verification (spec/01 §3.2): lengths, canonical A with no small
 * order, A torsion-free, s < L, then OpenSSL's cofactorless check of the
 * equation (R must re-encode exactly, so a non-canonical R, or an R with a
 * small-order component, fails there). Never throws.
 */
export function ed25519Verify(pub, message, signature) {
  if (pub.length !== 32 || signature.length !== 64) return false;
  const y = leInt(pub) & ((1n << 255n) - 1n);
  if (y >= P || SMALL_ORDER_ED25519_Y.includes(y)) return false;
  if (!isTorsionFree(pub)) return false;
  if (leInt(signature.subarray(32)) >= L) return false;
  try {
    return verify(null, message, publicKey('ed25519', pub), signature);
  } catch {
    return false;
  }
}

// ---- hashes, HMAC, HKDF --------------------------------------------------

export const sha256 = (data) => u8(createHash('sha256').update(data).digest());
export const sha512 = (data) => u8(createHash('sha512').update(data).digest());
export const hmac = (key, data) => u8(createHmac('sha256', key).update(data).digest());
/** HKDF(salt, ikm, info, L) in the argument order of spec/01 §1. */
export const hkdf = (salt, ikm, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));

// ---- ChaCha20-Poly1305 (RFC 8439) ----------------------------------------

export function seal(key, nonce, plaintext, ad) {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: plaintext.length });
  return concat(u8(c.update(plaintext)), u8(c.final()), u8(c.getAuthTag()));
}

/** The plaintext, or null when the tag does not verify. */
export function open(key, nonce, sealed, ad) {
  if (sealed.length < 16) return null;
  const body = sealed.subarray(0, sealed.length - 16);
  try {
    const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    d.setAAD(ad, { plaintextLength: body.length });
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    return concat(u8(d.update(body)), u8(d.final()));
  } catch {
    return null;
  }
}

// ---- ML-KEM-768 (FIPS 203), the one primitive Node 20 lacks ---------------

export function mlkemKeygen(seed) {
  const { publicKey: ek, secretKey: dk } = ml_kem768.keygen(seed);
  return { publicKey: ek, secretKey: dk };
}

/** Encaps(ek, m); an encapsulation key failing FIPS 203's modulus check is BAD_PUBLIC_KEY (spec/01 §3.3). */
export function mlkemEncapsulate(ek, m) {
  try {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(ek, m);
    return { ciphertext: cipherText, sharedSecret };
  } catch {
    throw new ProtocolError('BAD_PUBLIC_KEY', 'kemPreKey.publicKey: invalid ML-KEM-768 encapsulation key');
  }
}

export const mlkemDecapsulate = (ciphertext, dk) => ml_kem768.decapsulate(ciphertext, dk);
