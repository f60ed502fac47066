/**
 * X25519 and Ed25519 through the browser's WebCrypto (SubtleCrypto), where
 * the browser has them (Chromium 133+, Firefox 129+, Safari 17+).
 * spec/01-conventions.md §4.2.1.
 *
 * These are the five curve operations, asynchronously, with the backend
 * interface's semantics. The interface itself is synchronous on purpose
 * (backend.ts); `runWithAsyncCurves` and `prepareAsyncCurves`
 * (async-curves.ts) put these behind it for the session layer, and the
 * client SDK uses them when the app passes `curves`. The Chromium test
 * (test/webcrypto-browser.test.ts) runs the Wycheproof X25519 and Ed25519
 * files and random keys through both and requires identical answers.
 *
 * Semantics, as backend.ts states them:
 * - private keys are raw 32-byte X25519 scalars and Ed25519 seeds, wrapped
 *   here into PKCS#8 for `importKey`;
 * - `x25519` returns 32 zero bytes where WebCrypto refuses the exchange
 *   (it rejects low-order public keys, whose output would be zero), so
 *   that `dh()` in x25519.ts rejects the same inputs on every backend;
 * - `ed25519Verify` never throws: a key WebCrypto cannot import verifies
 *   nothing.
 */

/** PKCS#8 DER prefixes (RFC 8410) for a 32-byte X25519 private key and Ed25519 seed. */
const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const KEY_BYTES = 32;

export interface WebCryptoCurves {
  readonly name: 'webcrypto';
  x25519PublicKey(privateKey: Uint8Array): Promise<Uint8Array>;
  /** Raw X25519; 32 zero bytes where WebCrypto refuses (low-order public key). */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;
  ed25519PublicKey(seed: Uint8Array): Promise<Uint8Array>;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Promise<Uint8Array>;
  /** Never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

function subtleOf(): SubtleCrypto | null {
  return (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle ?? null;
}

function checkLength(bytes: Uint8Array, name: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== KEY_BYTES) throw new TypeError(`"${name}" expected ${KEY_BYTES} bytes`);
}

function pkcs8(prefix: Uint8Array, key: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(prefix.length + key.length);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

/** Copies into a fresh ArrayBuffer-backed array (WebCrypto takes BufferSource; a view of a shared buffer is refused). */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(bytes);
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function publicOf(subtle: SubtleCrypto, algorithm: 'X25519' | 'Ed25519', prefix: Uint8Array, key: Uint8Array): Promise<Uint8Array> {
  const usages: KeyUsage[] = algorithm === 'X25519' ? ['deriveBits'] : ['sign'];
  const handle = await subtle.importKey('pkcs8', pkcs8(prefix, key), { name: algorithm }, true, usages);
  const jwk = await subtle.exportKey('jwk', handle);
  if (typeof jwk.x !== 'string') throw new Error('WebCrypto exported no public key');
  return fromBase64Url(jwk.x);
}

function curvesOn(subtle: SubtleCrypto): WebCryptoCurves {
  return {
    name: 'webcrypto',
    x25519PublicKey(privateKey) {
      checkLength(privateKey, 'privateKey');
      return publicOf(subtle, 'X25519', PKCS8_X25519, privateKey);
    },
    async x25519(privateKey, publicKey) {
      checkLength(privateKey, 'privateKey');
      checkLength(publicKey, 'publicKey');
      const priv = await subtle.importKey('pkcs8', pkcs8(PKCS8_X25519, privateKey), { name: 'X25519' }, false, ['deriveBits']);
      const pub = await subtle.importKey('raw', own(publicKey), { name: 'X25519' }, false, []);
      try {
        return new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: pub } as unknown as EcdhKeyDeriveParams, priv, 256));
      } catch {
        // WebCrypto refuses an all-zero result (a low-order point); the noble and node backends return it for dh() to refuse.
        return new Uint8Array(KEY_BYTES);
      }
    },
    ed25519PublicKey(seed) {
      checkLength(seed, 'seed');
      return publicOf(subtle, 'Ed25519', PKCS8_ED25519, seed);
    },
    async ed25519Sign(seed, message) {
      checkLength(seed, 'seed');
      const key = await subtle.importKey('pkcs8', pkcs8(PKCS8_ED25519, seed), { name: 'Ed25519' }, false, ['sign']);
      return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, key, own(message)));
    },
    async ed25519Verify(publicKey, message, signature) {
      try {
        if (publicKey.length !== KEY_BYTES || signature.length !== 64) return false;
        const key = await subtle.importKey('raw', own(publicKey), { name: 'Ed25519' }, false, ['verify']);
        return await subtle.verify({ name: 'Ed25519' }, key, own(signature), own(message));
      } catch {
        return false;
      }
    },
  };
}

/**
 * The WebCrypto curves when this environment has both X25519 and Ed25519
 * in SubtleCrypto, else null (the caller stays on noble). Probes by
 * generating one key of each: a browser may list the names and still lack them.
 */
export async function webCryptoCurves(): Promise<WebCryptoCurves | null> {
  const subtle = subtleOf();
  if (!subtle) return null;
  try {
    await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
    await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  } catch {
    return null;
  }
  return curvesOn(subtle);
}
