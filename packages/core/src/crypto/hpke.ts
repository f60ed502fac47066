/**
 * HPKE (RFC 9180) for one suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
 * ChaCha20-Poly1305; modes base (0x00) and auth (0x02); single-shot (one
 * seal or open at sequence number 0) and the exporter.
 * spec/design/formats-v2.md §7.1 (the seal) and §15 step 1.
 *
 * Built only from the backend interface (X25519, HMAC-SHA256,
 * ChaCha20-Poly1305), so it runs unchanged on the noble and node backends.
 * HKDF's Extract and Expand are needed separately (RFC 9180 §4 labels each
 * one); the backend exposes only the combined HKDF and node:crypto has no
 * expand-only call, so both halves come from @noble/hashes on either backend
 * (HPKE's cost is in its X25519 operations, not in these few HMAC calls).
 * A test pins them against the backend's own HKDF.
 *
 * Internal: not exported from core's index until the v2 formats land.
 */
import { expand as nobleExpand, extract as nobleExtract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, concatBytes, utf8, wipe } from '../bytes.ts';
import { fail } from '../errors.ts';
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, type CryptoBackend, X25519_KEY_BYTES } from './backend.ts';
import { type CryptoProvider, resolveProvider } from './provider.ts';
import { checkX25519PublicKey, dh } from './x25519.ts';

export const HPKE_MODE_BASE = 0x00;
export const HPKE_MODE_AUTH = 0x02;
export type HpkeMode = typeof HPKE_MODE_BASE | typeof HPKE_MODE_AUTH;

export const HPKE_KEM_ID = 0x0020;
export const HPKE_KDF_ID = 0x0001;
export const HPKE_AEAD_ID = 0x0003;

/** Nh of HKDF-SHA256; also Nsecret of the KEM. */
const HASH_BYTES = 32;

/** The encapsulated key `enc` of DHKEM(X25519): a serialized X25519 public key. */
export const HPKE_ENC_BYTES = X25519_KEY_BYTES;

/**
 * Largest `info` accepted. RFC 9180 §7.2.1 lets an implementation bound it;
 * Parley's seal info is about 50 bytes (CBOR of a label and a 32-byte hash),
 * and the bound keeps the hashing cost of an input that may come from a peer
 * small and fixed.
 */
export const HPKE_MAX_INFO_BYTES = 1024;

/** Largest exporter context accepted; same reason as HPKE_MAX_INFO_BYTES. */
export const HPKE_MAX_EXPORTER_CONTEXT_BYTES = 1024;

/** Largest export length: RFC 9180 §7.2.1, 255 * Nh for HKDF-SHA256. */
export const HPKE_MAX_EXPORT_BYTES = 255 * HASH_BYTES;

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE_ID = concatBytes(utf8('KEM'), i2osp(HPKE_KEM_ID, 2));
const HPKE_SUITE_ID = concatBytes(utf8('HPKE'), i2osp(HPKE_KEM_ID, 2), i2osp(HPKE_KDF_ID, 2), i2osp(HPKE_AEAD_ID, 2));
const EMPTY = new Uint8Array(0);

function i2osp(n: number, width: number): Uint8Array {
  const out = new Uint8Array(width);
  for (let i = width - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v & 0xff;
  return out;
}

/** HKDF-Extract (RFC 5869 §2.2) with SHA-256; an empty salt means HashLen zero bytes. */
export function hkdfExtract(_backend: CryptoBackend, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return nobleExtract(sha256, ikm, salt.length === 0 ? new Uint8Array(HASH_BYTES) : salt);
}

/** HKDF-Expand (RFC 5869 §2.3) with SHA-256; at most 255 * 32 bytes. */
export function hkdfExpand(_backend: CryptoBackend, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * HASH_BYTES) {
    throw new RangeError(`HKDF-Expand length ${length} outside 0..${255 * HASH_BYTES}`);
  }
  if (length === 0) return new Uint8Array(0);
  return nobleExpand(sha256, prk, info, length);
}

function labeledExtract(backend: CryptoBackend, suiteId: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return hkdfExtract(backend, salt, concatBytes(HPKE_V1, suiteId, utf8(label), ikm));
}

function labeledExpand(
  backend: CryptoBackend,
  suiteId: Uint8Array,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Uint8Array {
  const labeledInfo = concatBytes(i2osp(length, 2), HPKE_V1, suiteId, utf8(label), info);
  return hkdfExpand(backend, prk, labeledInfo, length);
}

/** DeriveKeyPair (RFC 9180 §7.1.3) for X25519: the private key from 32+ bytes of input keying material. */
export function hpkeDeriveKeyPair(
  backend: CryptoBackend,
  ikm: Uint8Array,
): { readonly privateKey: Uint8Array; readonly publicKey: Uint8Array } {
  abytes(ikm, 'ikm');
  // RFC 9180 §7.1.3: ikm needs at least Nsk bytes of entropy.
  if (ikm.length < X25519_KEY_BYTES) throw new RangeError(`"ikm" needs at least ${X25519_KEY_BYTES} bytes`);
  const prk = labeledExtract(backend, KEM_SUITE_ID, EMPTY, 'dkp_prk', ikm);
  const privateKey = labeledExpand(backend, KEM_SUITE_ID, prk, 'sk', EMPTY, X25519_KEY_BYTES);
  wipe(prk);
  return { privateKey, publicKey: backend.x25519PublicKey(privateKey) };
}

function extractAndExpand(backend: CryptoBackend, dhOut: Uint8Array, kemContext: Uint8Array): Uint8Array {
  const prk = labeledExtract(backend, KEM_SUITE_ID, EMPTY, 'eae_prk', dhOut);
  const shared = labeledExpand(backend, KEM_SUITE_ID, prk, 'shared_secret', kemContext, HASH_BYTES);
  wipe(prk);
  return shared;
}

/**
 * A single-shot HPKE context: one seal (sender) or one successful open
 * (receiver) at sequence number 0, and any number of exports. Secrets live in
 * a closure, so the object has no enumerable secret (JSON.stringify gives `{}`).
 */
export interface HpkeSenderContext {
  /** Seals once; a second call is INVALID_STATE (a reused nonce would break the AEAD). */
  seal(aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

export interface HpkeReceiverContext {
  /**
   * Opens once. A failure is DECRYPT_FAILED and leaves the context as it was;
   * after a success further opens are INVALID_STATE (single-shot).
   */
  open(aad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  export(exporterContext: Uint8Array, length: number): Uint8Array;
}

interface Schedule {
  readonly key: Uint8Array;
  readonly baseNonce: Uint8Array;
  readonly exporterSecret: Uint8Array;
}

function checkInfo(info: Uint8Array): void {
  abytes(info, 'info');
  if (info.length > HPKE_MAX_INFO_BYTES) {
    fail('OVERSIZED', `HPKE info over ${HPKE_MAX_INFO_BYTES} bytes`, { limit: HPKE_MAX_INFO_BYTES });
  }
}

/** KeySchedule (RFC 9180 §5.1) without a PSK (modes base and auth). */
function keySchedule(backend: CryptoBackend, mode: HpkeMode, sharedSecret: Uint8Array, info: Uint8Array): Schedule {
  const pskIdHash = labeledExtract(backend, HPKE_SUITE_ID, EMPTY, 'psk_id_hash', EMPTY);
  const infoHash = labeledExtract(backend, HPKE_SUITE_ID, EMPTY, 'info_hash', info);
  const context = concatBytes(Uint8Array.of(mode), pskIdHash, infoHash);
  const secret = labeledExtract(backend, HPKE_SUITE_ID, sharedSecret, 'secret', EMPTY);
  const schedule = {
    key: labeledExpand(backend, HPKE_SUITE_ID, secret, 'key', context, AEAD_KEY_BYTES),
    baseNonce: labeledExpand(backend, HPKE_SUITE_ID, secret, 'base_nonce', context, AEAD_NONCE_BYTES),
    exporterSecret: labeledExpand(backend, HPKE_SUITE_ID, secret, 'exp', context, HASH_BYTES),
  };
  wipe(secret);
  return schedule;
}

function exporter(backend: CryptoBackend, s: Schedule) {
  return (exporterContext: Uint8Array, length: number): Uint8Array => {
    abytes(exporterContext, 'exporterContext');
    if (exporterContext.length > HPKE_MAX_EXPORTER_CONTEXT_BYTES) {
      fail('OVERSIZED', `HPKE exporter context over ${HPKE_MAX_EXPORTER_CONTEXT_BYTES} bytes`, {
        limit: HPKE_MAX_EXPORTER_CONTEXT_BYTES,
      });
    }
    if (!Number.isInteger(length) || length < 1 || length > HPKE_MAX_EXPORT_BYTES) {
      throw new RangeError(`HPKE export length ${length} outside 1..${HPKE_MAX_EXPORT_BYTES}`);
    }
    return labeledExpand(backend, HPKE_SUITE_ID, s.exporterSecret, 'sec', exporterContext, length);
  };
}

function checkPrivateKey(key: Uint8Array, name: string): void {
  abytes(key, name, X25519_KEY_BYTES);
}

/**
 * SetupBaseS / SetupAuthS (RFC 9180 §5.1.1, §5.1.3). `senderPrivateKey`
 * selects auth mode. The ephemeral key is DeriveKeyPair of 32 bytes drawn
 * from the provider's random source, as the RFC's vectors do (their ikmE).
 */
export function hpkeSetupSender(
  params: {
    readonly recipientPublicKey: Uint8Array;
    readonly info: Uint8Array;
    readonly senderPrivateKey?: Uint8Array;
  },
  provider?: CryptoProvider,
): { readonly enc: Uint8Array; readonly context: HpkeSenderContext } {
  const { backend, random } = resolveProvider(provider);
  const pkR = checkX25519PublicKey(params.recipientPublicKey, 'recipientPublicKey');
  checkInfo(params.info);
  const skS = params.senderPrivateKey;
  if (skS !== undefined) checkPrivateKey(skS, 'senderPrivateKey');
  const mode: HpkeMode = skS === undefined ? HPKE_MODE_BASE : HPKE_MODE_AUTH;

  const ikmE = random(X25519_KEY_BYTES);
  const eph = hpkeDeriveKeyPair(backend, ikmE);
  wipe(ikmE);
  const enc = eph.publicKey;
  let dhOut: Uint8Array;
  let kemContext: Uint8Array;
  try {
    if (skS === undefined) {
      dhOut = dh(backend, eph.privateKey, pkR);
      kemContext = concatBytes(enc, pkR);
    } else {
      dhOut = concatBytes(dh(backend, eph.privateKey, pkR), dh(backend, skS, pkR));
      kemContext = concatBytes(enc, pkR, backend.x25519PublicKey(skS));
    }
  } finally {
    wipe(eph.privateKey);
  }
  const shared = extractAndExpand(backend, dhOut, kemContext);
  wipe(dhOut);
  const s = keySchedule(backend, mode, shared, params.info);
  wipe(shared);
  let used = false;
  const context: HpkeSenderContext = {
    seal(aad, plaintext) {
      abytes(aad, 'aad');
      abytes(plaintext, 'plaintext');
      if (used) fail('INVALID_STATE', 'single-shot HPKE context already sealed');
      used = true;
      // Sequence number 0: the nonce is base_nonce itself (RFC 9180 §5.2).
      return backend.aeadSeal(s.key, s.baseNonce, plaintext, aad);
    },
    export: exporter(backend, s),
  };
  return { enc, context };
}

/**
 * SetupBaseR / SetupAuthR (RFC 9180 §5.1.1, §5.1.3). `senderPublicKey`
 * selects auth mode: only the holder of its private key could have made
 * `enc` open (modulo key-compromise impersonation, RFC 9180 §9.1.1).
 */
export function hpkeSetupReceiver(
  params: {
    readonly enc: Uint8Array;
    readonly recipientPrivateKey: Uint8Array;
    readonly info: Uint8Array;
    readonly senderPublicKey?: Uint8Array;
  },
  provider?: CryptoProvider,
): HpkeReceiverContext {
  const { backend } = resolveProvider(provider);
  const pkE = checkX25519PublicKey(params.enc, 'enc');
  const skR = params.recipientPrivateKey;
  checkPrivateKey(skR, 'recipientPrivateKey');
  checkInfo(params.info);
  const pkS = params.senderPublicKey === undefined ? undefined : checkX25519PublicKey(params.senderPublicKey, 'senderPublicKey');
  const mode: HpkeMode = pkS === undefined ? HPKE_MODE_BASE : HPKE_MODE_AUTH;

  const pkR = backend.x25519PublicKey(skR);
  const dhOut = pkS === undefined ? dh(backend, skR, pkE) : concatBytes(dh(backend, skR, pkE), dh(backend, skR, pkS));
  const kemContext = pkS === undefined ? concatBytes(pkE, pkR) : concatBytes(pkE, pkR, pkS);
  const shared = extractAndExpand(backend, dhOut, kemContext);
  wipe(dhOut);
  const s = keySchedule(backend, mode, shared, params.info);
  wipe(shared);
  return receiverContext(backend, s);
}

function receiverContext(backend: CryptoBackend, s: Schedule): HpkeReceiverContext {
  let opened = false;
  return {
    open(aad, ciphertext) {
      abytes(aad, 'aad');
      abytes(ciphertext, 'ciphertext');
      if (opened) fail('INVALID_STATE', 'single-shot HPKE context already opened');
      if (ciphertext.length < AEAD_TAG_BYTES) fail('DECRYPT_FAILED', 'HPKE ciphertext shorter than its tag');
      const pt = backend.aeadOpen(s.key, s.baseNonce, ciphertext, aad);
      if (pt === null) fail('DECRYPT_FAILED', 'HPKE open failed');
      opened = true;
      return pt;
    },
    export: exporter(backend, s),
  };
}

/**
 * SetupAuthR (RFC 9180 §5.1.3) for several candidate senders of one `enc`:
 * `DH(skR, pkE)` is computed once, each candidate then costs one X25519
 * (`DH(skR, pkS)`) and the key schedule. Used to open a seal whose sender
 * is one of a contact's devices (spec/12-sealed-sender.md §4.3).
 */
export function hpkeAuthReceiverForCandidates(
  params: { readonly enc: Uint8Array; readonly recipientPrivateKey: Uint8Array; readonly info: Uint8Array },
  provider?: CryptoProvider,
): (senderPublicKey: Uint8Array) => HpkeReceiverContext {
  const { backend } = resolveProvider(provider);
  const pkE = checkX25519PublicKey(params.enc, 'enc');
  const skR = params.recipientPrivateKey;
  checkPrivateKey(skR, 'recipientPrivateKey');
  checkInfo(params.info);
  const pkR = backend.x25519PublicKey(skR);
  const dhE = dh(backend, skR, pkE);
  return (senderPublicKey) => {
    const pkS = checkX25519PublicKey(senderPublicKey, 'senderPublicKey');
    const dhOut = concatBytes(dhE, dh(backend, skR, pkS));
    const shared = extractAndExpand(backend, dhOut, concatBytes(pkE, pkR, pkS));
    wipe(dhOut);
    const s = keySchedule(backend, HPKE_MODE_AUTH, shared, params.info);
    wipe(shared);
    return receiverContext(backend, s);
  };
}

/** Single-shot Seal (RFC 9180 §6.1): base mode, or auth mode with `senderPrivateKey`. */
export function hpkeSeal(
  params: {
    readonly recipientPublicKey: Uint8Array;
    readonly info: Uint8Array;
    readonly aad: Uint8Array;
    readonly plaintext: Uint8Array;
    readonly senderPrivateKey?: Uint8Array;
  },
  provider?: CryptoProvider,
): { readonly enc: Uint8Array; readonly ciphertext: Uint8Array } {
  const { enc, context } = hpkeSetupSender(params, provider);
  return { enc, ciphertext: context.seal(params.aad, params.plaintext) };
}

/** Single-shot Open (RFC 9180 §6.1): base mode, or auth mode with `senderPublicKey`. */
export function hpkeOpen(
  params: {
    readonly enc: Uint8Array;
    readonly recipientPrivateKey: Uint8Array;
    readonly info: Uint8Array;
    readonly aad: Uint8Array;
    readonly ciphertext: Uint8Array;
    readonly senderPublicKey?: Uint8Array;
  },
  provider?: CryptoProvider,
): Uint8Array {
  return hpkeSetupReceiver(params, provider).open(params.aad, params.ciphertext);
}
