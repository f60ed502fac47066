/**
 * The fast backend for Node: curve operations, hashes and the AEAD go to
 * Node's built-in OpenSSL; ML-KEM stays on noble (Node 20's OpenSSL 3.0 has
 * no ML-KEM). Reached only through the `node` export condition or an explicit
 * import, so the portable build never pulls in a Node built-in.
 * spec/01-conventions.md §4.2; its key cache: spec/07-security.md §12.
 */
import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomFillSync,
  sign,
  verify,
} from 'node:crypto';
import type { CryptoBackend } from './backend.ts';
import { mlkem768 } from './mlkem.ts';
import { isRefusedEd25519Key } from './ed25519-keys.ts';

/** A Uint8Array view of a Buffer, so callers never see Buffer-specific behaviour. */
function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

type Curve = 'X25519' | 'Ed25519';

// Keys are imported as JWK: measured here, a DER (PKCS#8) import costs about
// 430 us against about 42 us for JWK, because OpenSSL 3's DER decoder path
// is slow. A private JWK needs an `x` member, which OpenSSL ignores and
// recomputes from `d`, so a placeholder is passed (a test checks every
// derived public key against noble).
const PLACEHOLDER_X = b64url(new Uint8Array(32));

// Importing a key still costs as much as using it, so KeyObjects are memoised
// per key buffer, one cache per key type (the same bytes must never come back
// as the wrong type). A WeakMap holds no strong reference: when a key's bytes
// are dropped, its KeyObject goes with them. Each entry also keeps a copy of
// the bytes it was imported from and is used only while the buffer still
// holds them, so a caller who overwrites a key buffer in place (or wipes it)
// never gets a result computed with the old key.
interface CachedKey {
  readonly bytes: Uint8Array;
  readonly key: KeyObject;
}
type KeyCache = WeakMap<Uint8Array, CachedKey>;
const caches: Record<`${Curve}:${'private' | 'public'}`, KeyCache> = {
  'X25519:private': new WeakMap(),
  'X25519:public': new WeakMap(),
  'Ed25519:private': new WeakMap(),
  'Ed25519:public': new WeakMap(),
};

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let d = 0;
  for (let i = 0; i < 32; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

function check32(raw: Uint8Array, what: string): void {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) throw new RangeError(`"${what}" expected 32 bytes`);
}

function privateKey(crv: Curve, raw: Uint8Array): KeyObject {
  check32(raw, `${crv} private key`);
  const cache = caches[`${crv}:private`];
  const hit = cache.get(raw);
  if (hit && sameBytes(hit.bytes, raw)) return hit.key;
  const key = createPrivateKey({ key: { kty: 'OKP', crv, d: b64url(raw), x: PLACEHOLDER_X }, format: 'jwk' });
  cache.set(raw, { bytes: raw.slice(), key });
  return key;
}

function publicKey(crv: Curve, raw: Uint8Array): KeyObject {
  check32(raw, `${crv} public key`);
  const cache = caches[`${crv}:public`];
  const hit = cache.get(raw);
  if (hit && sameBytes(hit.bytes, raw)) return hit.key;
  const key = createPublicKey({ key: { kty: 'OKP', crv, x: b64url(raw) }, format: 'jwk' });
  cache.set(raw, { bytes: raw.slice(), key });
  return key;
}

function rawPublic(k: KeyObject): Uint8Array {
  const jwk = k.export({ format: 'jwk' });
  return u8(Buffer.from(jwk.x as string, 'base64url'));
}

const TAG = 16;

export const nodeBackend: CryptoBackend = {
  name: 'node',

  x25519PublicKey: (priv) => rawPublic(privateKey('X25519', priv)),
  x25519(priv, pub) {
    const privateKeyObject = privateKey('X25519', priv);
    const publicKeyObject = publicKey('X25519', pub);
    try {
      return u8(diffieHellman({ privateKey: privateKeyObject, publicKey: publicKeyObject }));
    } catch {
      // OpenSSL refuses an all-zero output (low-order point); our contract
      // is to return the raw output and let x25519.ts reject it.
      return new Uint8Array(32);
    }
  },

  ed25519PublicKey: (seed) => rawPublic(privateKey('Ed25519', seed)),
  ed25519Sign: (seed, msg) => u8(sign(null, msg, privateKey('Ed25519', seed))),
  ed25519Verify(pub, msg, sig) {
    if (!(pub instanceof Uint8Array) || pub.length !== 32 || !(sig instanceof Uint8Array) || sig.length !== 64) return false;
    if (isRefusedEd25519Key(pub)) return false;
    try {
      return verify(null, msg, publicKey('Ed25519', pub), sig);
    } catch {
      return false;
    }
  },

  sha256: (d) => u8(createHash('sha256').update(d).digest()),
  sha512: (d) => u8(createHash('sha512').update(d).digest()),
  hmacSha256: (key, data) => u8(createHmac('sha256', key).update(data).digest()),
  hkdfSha256: (ikm, salt, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),

  aeadSeal(key, nonce, pt, ad) {
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
    c.setAAD(ad, { plaintextLength: pt.length });
    const out = new Uint8Array(pt.length + TAG);
    const body = c.update(pt);
    c.final();
    out.set(body, 0);
    out.set(c.getAuthTag(), pt.length);
    return out;
  },
  aeadOpen(key, nonce, sealed, ad) {
    if (sealed.length < TAG) return null;
    const ctLen = sealed.length - TAG;
    try {
      const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: TAG });
      d.setAAD(ad, { plaintextLength: ctLen });
      d.setAuthTag(sealed.subarray(ctLen));
      const body = d.update(sealed.subarray(0, ctLen));
      d.final(); // throws on a bad tag
      return u8(body);
    } catch {
      return null;
    }
  },

  ...mlkem768,

  randomBytes(n) {
    const out = new Uint8Array(n);
    randomFillSync(out);
    return out;
  },
};
