/**
 * Prekeys and bundles. spec/02-keys.md §5-§6.
 *
 * A device publishes, through the relay:
 *  - one current signed X25519 prekey (rotated on a schedule; old ones are
 *    kept for a grace period so in-flight initial messages still work);
 *  - a pool of unsigned one-time X25519 prekeys;
 *  - a pool of signed one-time ML-KEM-768 prekeys, and one signed
 *    last-resort ML-KEM-768 prekey used when the pool is empty.
 * The relay hands out a bundle: certificate, signed prekey, at most one
 * one-time prekey, and one KEM prekey.
 *
 * Version 2 (spec/02-keys.md §5.7, spec/design/formats-v2.md §3.1): the
 * device also signs each signed prekey under the v2 label together with the
 * message versions it implements (`SignedPreKeyV2`), and the relay serves
 * that second signature in a `PreKeyBundleV2` on its v2 route. The key pair
 * and id are the same; only the signed statement differs.
 *
 * `PreKeyStore` holds the private halves on the device. It does not know
 * about sessions; the session layer calls `consumePreKeys` when an initial
 * message that used prekeys has been fully decrypted.
 */
import { fromHex, toHex, wipe } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBool, readBytes, readOptional, readUint, readVersionedArray } from '../codec/fields.ts';
import { MLKEM768_PUBLIC_KEY_BYTES, MLKEM768_SECRET_KEY_BYTES, MLKEM768_SEED_BYTES } from '../crypto/backend.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';
import { fail } from '../errors.ts';
import { Label, PROTOCOL_VERSION } from '../labels.ts';
import {
  MAX_BUNDLE_BYTES,
  MAX_PREKEY_ID,
  MAX_RECORD_BYTES,
  MAX_REMEMBERED_BASE_KEYS,
  MAX_STORED_KEM_PREKEYS,
  MAX_STORED_ONE_TIME_PREKEYS,
  MAX_STORED_SIGNED_PREKEYS,
} from '../limits.ts';
import { type DeviceCertificate, certificateFromCbor, certificateToCbor, verifyCertificate } from './certificate.ts';
import { type DeviceIdentity, X25519KeyPair, asRecordError } from './identity.ts';
import { inspectSymbol, redacted } from './redact.ts';
import { SUPPORTED_VERSIONS, checkVersionList, readVersionList } from './versions.ts';

/** Version of a `PreKeyBundleV2` (its first field). */
export const BUNDLE_V2_VERSION = 2;

/**
 * PreKeyStore record versions: 1 (spec/05-wire-format.md §6.4) and 2, which
 * adds the versions and v2 signature of each signed prekey. Version 1 loads
 * (its signed prekeys are signed again under the v2 label) and saves as 2.
 */
export const PREKEY_STORE_VERSION = 2;

export interface SignedPreKeyPublic {
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly signature: Uint8Array;
}

export interface OneTimePreKeyPublic {
  readonly id: number;
  readonly publicKey: Uint8Array;
}

export interface KemPreKeyPublic {
  readonly id: number;
  readonly publicKey: Uint8Array;
  /** True for the reusable last-resort key, false for a one-time key. */
  readonly lastResort: boolean;
  readonly signature: Uint8Array;
}

/**
 * A signed prekey as a version-2 device publishes it: the same id and key as
 * the v1 `SignedPreKeyPublic`, the versions the device implements, and a
 * signature under `Label.signedPreKey2` over all three.
 */
export interface SignedPreKeyV2Public {
  readonly id: number;
  readonly publicKey: Uint8Array;
  /** Strictly ascending, 1..8 entries (`readVersionList`). */
  readonly versions: readonly number[];
  readonly signature: Uint8Array;
}

export interface PreKeyBundle {
  readonly version: number;
  readonly certificate: DeviceCertificate;
  readonly signedPreKey: SignedPreKeyPublic;
  readonly oneTimePreKey: OneTimePreKeyPublic | null;
  readonly kemPreKey: KemPreKeyPublic;
}

/** The bundle of a version-2 device (spec/design/formats-v2.md §3.1): as v1 with a `SignedPreKeyV2`. */
export interface PreKeyBundleV2 {
  readonly version: typeof BUNDLE_V2_VERSION;
  readonly certificate: DeviceCertificate;
  readonly signedPreKey: SignedPreKeyV2Public;
  readonly oneTimePreKey: OneTimePreKeyPublic | null;
  readonly kemPreKey: KemPreKeyPublic;
}

/** Either bundle; `version` tells them apart. */
export type AnyPreKeyBundle = PreKeyBundle | PreKeyBundleV2;

export function isBundleV2(b: AnyPreKeyBundle): b is PreKeyBundleV2 {
  return b.version === BUNDLE_V2_VERSION;
}

// ---- signed bytes ------------------------------------------------------

export function signedPreKeySignedBytes(id: number, publicKey: Uint8Array): Uint8Array {
  return encodeCbor([Label.signedPreKey, id, publicKey]);
}

/** CBOR(["Parley v2 signed prekey", id, publicKey, versions]): a label no v1 signature uses. */
export function signedPreKeyV2SignedBytes(id: number, publicKey: Uint8Array, versions: readonly number[]): Uint8Array {
  return encodeCbor([Label.signedPreKey2, id, publicKey, [...versions]]);
}

export function kemPreKeySignedBytes(id: number, publicKey: Uint8Array, lastResort: boolean): Uint8Array {
  return encodeCbor([Label.kemPreKey, id, publicKey, lastResort]);
}

// ---- encodings -----------------------------------------------------------

export const signedPreKeyToCbor = (k: SignedPreKeyPublic) => [k.id, k.publicKey, k.signature];
export const signedPreKeyV2ToCbor = (k: SignedPreKeyV2Public) => [k.id, k.publicKey, [...k.versions], k.signature];
export const oneTimePreKeyToCbor = (k: OneTimePreKeyPublic) => [k.id, k.publicKey];
export const kemPreKeyToCbor = (k: KemPreKeyPublic) => [k.id, k.publicKey, k.lastResort, k.signature];

function readPreKeyId(v: unknown, field: string): number {
  const id = readUint(v, field, MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: prekey id 0 is reserved`, { field });
  return id;
}

export function signedPreKeyFromCbor(v: unknown): SignedPreKeyPublic {
  const f = readArray(v, 'SignedPreKey', 3);
  return {
    id: readPreKeyId(f[0], 'signedPreKey.id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'signedPreKey.publicKey', 32), 'signedPreKey.publicKey'),
    signature: readBytes(f[2], 'signedPreKey.signature', 64),
  };
}

export function signedPreKeyV2FromCbor(v: unknown): SignedPreKeyV2Public {
  const f = readArray(v, 'SignedPreKeyV2', 4);
  return {
    id: readPreKeyId(f[0], 'signedPreKey.id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'signedPreKey.publicKey', 32), 'signedPreKey.publicKey'),
    versions: readVersionList(f[2], 'signedPreKey.versions'),
    signature: readBytes(f[3], 'signedPreKey.signature', 64),
  };
}

export function oneTimePreKeyFromCbor(v: unknown): OneTimePreKeyPublic {
  const f = readArray(v, 'OneTimePreKey', 2);
  return {
    id: readPreKeyId(f[0], 'oneTimePreKey.id'),
    publicKey: checkX25519PublicKey(readBytes(f[1], 'oneTimePreKey.publicKey', 32), 'oneTimePreKey.publicKey'),
  };
}

export function kemPreKeyFromCbor(v: unknown): KemPreKeyPublic {
  const f = readArray(v, 'KemPreKey', 4);
  return {
    id: readPreKeyId(f[0], 'kemPreKey.id'),
    publicKey: readBytes(f[1], 'kemPreKey.publicKey', MLKEM768_PUBLIC_KEY_BYTES),
    lastResort: readBool(f[2], 'kemPreKey.lastResort'),
    signature: readBytes(f[3], 'kemPreKey.signature', 64),
  };
}

export const encodeSignedPreKey = (k: SignedPreKeyPublic) => encodeCbor(signedPreKeyToCbor(k));
export const encodeSignedPreKeyV2 = (k: SignedPreKeyV2Public) => encodeCbor(signedPreKeyV2ToCbor(k));
export const encodeOneTimePreKey = (k: OneTimePreKeyPublic) => encodeCbor(oneTimePreKeyToCbor(k));
export const encodeKemPreKey = (k: KemPreKeyPublic) => encodeCbor(kemPreKeyToCbor(k));
export const decodeSignedPreKey = (b: Uint8Array) => signedPreKeyFromCbor(decodeCbor(b, 'SignedPreKey', MAX_BUNDLE_BYTES));
export const decodeSignedPreKeyV2 = (b: Uint8Array) => signedPreKeyV2FromCbor(decodeCbor(b, 'SignedPreKeyV2', MAX_BUNDLE_BYTES));
export const decodeOneTimePreKey = (b: Uint8Array) => oneTimePreKeyFromCbor(decodeCbor(b, 'OneTimePreKey', MAX_BUNDLE_BYTES));
export const decodeKemPreKey = (b: Uint8Array) => kemPreKeyFromCbor(decodeCbor(b, 'KemPreKey', MAX_BUNDLE_BYTES));

export function bundleToCbor(b: AnyPreKeyBundle) {
  return [
    b.version,
    certificateToCbor(b.certificate),
    isBundleV2(b) ? signedPreKeyV2ToCbor(b.signedPreKey) : signedPreKeyToCbor(b.signedPreKey),
    b.oneTimePreKey ? oneTimePreKeyToCbor(b.oneTimePreKey) : null,
    kemPreKeyToCbor(b.kemPreKey),
  ];
}

export function encodeBundle(b: AnyPreKeyBundle): Uint8Array {
  return encodeCbor(bundleToCbor(b));
}

/**
 * Decodes a version-1 bundle and checks shapes and key validity;
 * `verifyBundle` checks the signatures. A v2 bundle is UNSUPPORTED_VERSION
 * here (the v1 route never serves one); `decodeAnyBundle` reads both.
 */
export function decodeBundle(bytes: Uint8Array): PreKeyBundle {
  const f = readVersionedArray(decodeCbor(bytes, 'PreKeyBundle', MAX_BUNDLE_BYTES), 'PreKeyBundle', [PROTOCOL_VERSION], 5);
  return {
    version: f[0] as number,
    certificate: certificateFromCbor(f[1]),
    signedPreKey: signedPreKeyFromCbor(f[2]),
    oneTimePreKey: readOptional(f[3], oneTimePreKeyFromCbor),
    kemPreKey: kemPreKeyFromCbor(f[4]),
  };
}

/** Decodes a bundle of either version (the v2 route serves v1 bundles of v1-only devices). */
export function decodeAnyBundle(bytes: Uint8Array): AnyPreKeyBundle {
  const v = decodeCbor(bytes, 'PreKeyBundle', MAX_BUNDLE_BYTES);
  const f = readVersionedArray(v, 'PreKeyBundle', [PROTOCOL_VERSION, BUNDLE_V2_VERSION], 5);
  if (f[0] === PROTOCOL_VERSION) return decodeBundle(bytes);
  return {
    version: BUNDLE_V2_VERSION,
    certificate: certificateFromCbor(f[1]),
    signedPreKey: signedPreKeyV2FromCbor(f[2]),
    oneTimePreKey: readOptional(f[3], oneTimePreKeyFromCbor),
    kemPreKey: kemPreKeyFromCbor(f[4]),
  };
}

export function verifySignedPreKey(provider: CryptoProvider, signingKey: Uint8Array, k: SignedPreKeyPublic): void {
  if (!provider.backend.ed25519Verify(signingKey, signedPreKeySignedBytes(k.id, k.publicKey), k.signature)) {
    fail('BAD_SIGNATURE', 'signed prekey signature does not verify', { prekeyId: k.id });
  }
}

export function verifySignedPreKeyV2(provider: CryptoProvider, signingKey: Uint8Array, k: SignedPreKeyV2Public): void {
  if (!provider.backend.ed25519Verify(signingKey, signedPreKeyV2SignedBytes(k.id, k.publicKey, k.versions), k.signature)) {
    fail('BAD_SIGNATURE', 'signed prekey (v2) signature does not verify', { prekeyId: k.id });
  }
}

export function verifyKemPreKey(provider: CryptoProvider, signingKey: Uint8Array, k: KemPreKeyPublic): void {
  if (!provider.backend.ed25519Verify(signingKey, kemPreKeySignedBytes(k.id, k.publicKey, k.lastResort), k.signature)) {
    fail('BAD_SIGNATURE', 'KEM prekey signature does not verify', { prekeyId: k.id });
  }
}

/**
 * Verifies the certificate (optionally against an expected account) and
 * every prekey signature in a bundle. Throws BAD_CERTIFICATE / BAD_SIGNATURE.
 */
export function verifyBundle(bundle: AnyPreKeyBundle, options: { expectedAccountKey?: Uint8Array; provider?: CryptoProvider } = {}): void {
  const p = resolveProvider(options.provider);
  verifyCertificate(p.backend, bundle.certificate, options.expectedAccountKey);
  if (isBundleV2(bundle)) verifySignedPreKeyV2(p, bundle.certificate.signingKey, bundle.signedPreKey);
  else verifySignedPreKey(p, bundle.certificate.signingKey, bundle.signedPreKey);
  verifyKemPreKey(p, bundle.certificate.signingKey, bundle.kemPreKey);
}

// ---- the private store ---------------------------------------------------

interface SignedPreKeyRecord {
  readonly keyPair: X25519KeyPair;
  readonly signature: Uint8Array;
  /** What the v2 signature says this device implements (the responder's `versions_B`). */
  readonly versions: readonly number[];
  readonly signature2: Uint8Array;
}

interface KemPreKeyRecord {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly lastResort: boolean;
  readonly signature: Uint8Array;
}

export interface PreKeyGenerationOptions {
  /** One-time X25519 prekeys to create (default 100). */
  oneTimePreKeys?: number;
  /** One-time ML-KEM prekeys to create (default 10; each public key is 1184 bytes). */
  kemPreKeys?: number;
}

const STORE_TAG = 'parley/prekey-store';

/** What a successful initial message used up; the session layer passes it back to `consumePreKeys`. */
export interface PreKeyUse {
  readonly signedPreKeyId: number;
  readonly oneTimePreKeyId: number | null;
  readonly kemPreKeyId: number;
  readonly baseKey: Uint8Array;
}

/** The private keys an initial message names (handshake/pqxdh.ts). */
export interface PreKeyPrivates {
  readonly signed: X25519KeyPair;
  /** What the signed prekey's v2 signature advertises: the responder's `versions_B` (spec/03-handshake.md §7.2). */
  readonly signedVersions: readonly number[];
  readonly oneTime: X25519KeyPair | null;
  readonly kemSecretKey: Uint8Array;
}

// Set by PreKeyStore's static block: module-internal access to its private keys, not public API.
let lookup: (store: PreKeyStore, use: PreKeyUse) => PreKeyPrivates;
let consume: (store: PreKeyStore, use: PreKeyUse) => void;

/**
 * Private keys for an initial message; throws UNKNOWN_PREKEY / PREKEY_REUSED.
 * For the handshake only: not exported from the package (the barrel lists
 * its names), so an application cannot read private prekeys through it.
 */
export function lookupPreKeys(store: PreKeyStore, use: PreKeyUse): PreKeyPrivates {
  return lookup(store, use);
}

/** Deletes the one-time keys an accepted initial message used (the session layer, after a full decrypt). Not exported from the package. */
export function consumePreKeys(store: PreKeyStore, use: PreKeyUse): void {
  consume(store, use);
}

/**
 * The private halves of a device's prekeys. Mutable: generation, rotation
 * and consumption change it; persist it after each change (`serialize`).
 */
export class PreKeyStore {
  readonly #device: DeviceIdentity;
  readonly #provider: CryptoProvider;
  #nextSignedId = 1;
  #nextOneTimeId = 1;
  #nextKemId = 1;
  #currentSignedId = 0;
  #lastResortKemId = 0;
  readonly #signed = new Map<number, SignedPreKeyRecord>();
  readonly #oneTime = new Map<number, X25519KeyPair>();
  readonly #kem = new Map<number, KemPreKeyRecord>();
  /**
   * Base keys of initial messages accepted without a one-time X25519 prekey,
   * per signed prekey id: such a message could otherwise be replayed to
   * create a second session. Dropped with their signed prekey.
   */
  readonly #seenBaseKeys = new Map<number, Set<string>>();

  private constructor(device: DeviceIdentity, provider: CryptoProvider) {
    this.#device = device;
    this.#provider = provider;
  }

  /** A new store with a signed prekey, a last-resort KEM prekey and pools of one-time keys. */
  static generate(device: DeviceIdentity, options: PreKeyGenerationOptions = {}, provider?: CryptoProvider): PreKeyStore {
    const store = new PreKeyStore(device, provider ?? device.provider);
    store.rotateSignedPreKey();
    store.rotateLastResortKemPreKey();
    store.generateOneTimePreKeys(options.oneTimePreKeys ?? 100);
    store.generateKemPreKeys(options.kemPreKeys ?? 10);
    return store;
  }

  get device(): DeviceIdentity {
    return this.#device;
  }

  /** Creates a new signed prekey and makes it current. Older ones stay until pruned. */
  rotateSignedPreKey(): SignedPreKeyPublic {
    this.#checkCapacity(this.#signed.size + 1, MAX_STORED_SIGNED_PREKEYS, 'signed prekeys');
    const id = this.#takeId('signed');
    const keyPair = X25519KeyPair.generate(this.#provider);
    // Signed twice (spec/design/formats-v2.md §3.1): v1 peers and relays read
    // the first signature, v2 peers the second, which also names the versions.
    const signature = this.#device.sign(signedPreKeySignedBytes(id, keyPair.publicKey));
    this.#signed.set(id, this.#withV2Signature(id, keyPair, signature, SUPPORTED_VERSIONS));
    this.#currentSignedId = id;
    return { id, publicKey: keyPair.publicKey, signature };
  }

  /**
   * Deletes signed prekeys other than the current one and the `keep` most
   * recent before it. The client calls this once the grace period of a
   * rotated key has passed (core has no clock).
   */
  pruneSignedPreKeys(keep = 1): number[] {
    const older = [...this.#signed.keys()].filter((id) => id !== this.#currentSignedId).sort((a, b) => b - a);
    const removed = older.slice(keep);
    for (const id of removed) {
      this.#signed.delete(id);
      this.#seenBaseKeys.delete(id);
    }
    return removed;
  }

  generateOneTimePreKeys(count: number): OneTimePreKeyPublic[] {
    checkCount(count);
    this.#checkCapacity(this.#oneTime.size + count, MAX_STORED_ONE_TIME_PREKEYS, 'one-time prekeys');
    const out: OneTimePreKeyPublic[] = [];
    for (let i = 0; i < count; i++) {
      const id = this.#takeId('oneTime');
      const keyPair = X25519KeyPair.generate(this.#provider);
      this.#oneTime.set(id, keyPair);
      out.push({ id, publicKey: keyPair.publicKey });
    }
    return out;
  }

  generateKemPreKeys(count: number): KemPreKeyPublic[] {
    checkCount(count);
    this.#checkCapacity(this.#kem.size + count, MAX_STORED_KEM_PREKEYS, 'KEM prekeys');
    const out: KemPreKeyPublic[] = [];
    for (let i = 0; i < count; i++) out.push(this.#newKem(false));
    return out;
  }

  /**
   * Creates a new last-resort KEM prekey and makes it current. The old one
   * stays (initial messages made with it may still be in flight) until
   * `pruneLastResortKemPreKeys`, which the client calls after a grace period.
   */
  rotateLastResortKemPreKey(): KemPreKeyPublic {
    this.#checkCapacity(this.#kem.size + 1, MAX_STORED_KEM_PREKEYS, 'KEM prekeys');
    const k = this.#newKem(true);
    this.#lastResortKemId = k.id;
    return k;
  }

  /** Deletes last-resort KEM prekeys other than the current one and the `keep` most recent before it. */
  pruneLastResortKemPreKeys(keep = 1): number[] {
    const older = [...this.#kem]
      .filter(([id, r]) => r.lastResort && id !== this.#lastResortKemId)
      .map(([id]) => id)
      .sort((a, b) => b - a);
    const removed = older.slice(keep);
    for (const id of removed) this.#kem.delete(id);
    return removed;
  }

  currentSignedPreKey(): SignedPreKeyPublic {
    const r = this.#signed.get(this.#currentSignedId) as SignedPreKeyRecord;
    return { id: this.#currentSignedId, publicKey: r.keyPair.publicKey, signature: r.signature };
  }

  /** The current signed prekey as a v2 device publishes it (same id and key, the v2 signature). */
  currentSignedPreKeyV2(): SignedPreKeyV2Public {
    const r = this.#signed.get(this.#currentSignedId) as SignedPreKeyRecord;
    return { id: this.#currentSignedId, publicKey: r.keyPair.publicKey, versions: r.versions, signature: r.signature2 };
  }

  lastResortKemPreKey(): KemPreKeyPublic {
    return this.#kemPublic(this.#lastResortKemId);
  }

  oneTimePreKeys(): OneTimePreKeyPublic[] {
    return [...this.#oneTime].map(([id, kp]) => ({ id, publicKey: kp.publicKey }));
  }

  /** The unused one-time KEM prekeys (no last-resort key, current or rotated, is among them). */
  kemPreKeys(): KemPreKeyPublic[] {
    return [...this.#kem].filter(([, r]) => !r.lastResort).map(([id]) => this.#kemPublic(id));
  }

  /**
   * A bundle built locally from the lowest unused one-time keys. The relay
   * normally assembles bundles; this is for tests, vectors and direct
   * exchange. It does not consume anything.
   */
  bundle(options: { oneTimePreKey?: boolean; oneTimeKemPreKey?: boolean } = {}): PreKeyBundle {
    const ot = options.oneTimePreKey === false ? undefined : this.oneTimePreKeys()[0];
    const kem = options.oneTimeKemPreKey === false ? undefined : this.kemPreKeys()[0];
    return {
      version: PROTOCOL_VERSION,
      certificate: this.#device.certificate,
      signedPreKey: this.currentSignedPreKey(),
      oneTimePreKey: ot ?? null,
      kemPreKey: kem ?? this.lastResortKemPreKey(),
    };
  }

  /** As `bundle`, with the v2 signed prekey: what the relay serves on its v2 route. */
  bundleV2(options: { oneTimePreKey?: boolean; oneTimeKemPreKey?: boolean } = {}): PreKeyBundleV2 {
    const v1 = this.bundle(options);
    return { ...v1, version: BUNDLE_V2_VERSION, signedPreKey: this.currentSignedPreKeyV2() };
  }

  /** Private keys for an initial message; throws UNKNOWN_PREKEY / PREKEY_REUSED. Reached through `lookupPreKeys`. */
  #lookup(use: PreKeyUse): PreKeyPrivates {
    const signed = this.#signed.get(use.signedPreKeyId);
    if (!signed) fail('UNKNOWN_PREKEY', 'unknown signed prekey id', { prekeyId: use.signedPreKeyId, kind: 'signed' });
    let oneTime: X25519KeyPair | null = null;
    if (use.oneTimePreKeyId !== null) {
      oneTime = this.#oneTime.get(use.oneTimePreKeyId) ?? null;
      if (!oneTime)
        fail('UNKNOWN_PREKEY', 'unknown or already used one-time prekey id', { prekeyId: use.oneTimePreKeyId, kind: 'oneTime' });
    } else if (this.#seenBaseKeys.get(use.signedPreKeyId)?.has(toHex(use.baseKey))) {
      fail('PREKEY_REUSED', 'initial message already processed (replay)', { prekeyId: use.signedPreKeyId });
    }
    const kem = this.#kem.get(use.kemPreKeyId);
    if (!kem) fail('UNKNOWN_PREKEY', 'unknown or already used KEM prekey id', { prekeyId: use.kemPreKeyId, kind: 'kem' });
    return { signed: signed.keyPair, signedVersions: signed.versions, oneTime, kemSecretKey: kem.secretKey };
  }

  /** Deletes the one-time keys an accepted initial message used. Reached through `consumePreKeys`. */
  #consume(use: PreKeyUse): void {
    if (use.oneTimePreKeyId !== null) this.#oneTime.delete(use.oneTimePreKeyId);
    else {
      let seen = this.#seenBaseKeys.get(use.signedPreKeyId);
      if (!seen) this.#seenBaseKeys.set(use.signedPreKeyId, (seen = new Set()));
      seen.add(toHex(use.baseKey));
      // Oldest first: a Set iterates in insertion order.
      if (seen.size > MAX_REMEMBERED_BASE_KEYS) seen.delete(seen.values().next().value as string);
    }
    const kem = this.#kem.get(use.kemPreKeyId);
    if (kem && !kem.lastResort) this.#kem.delete(use.kemPreKeyId);
  }

  static {
    // The only way out of the class for these two: functions of this module, which the barrel does not export.
    lookup = (store, use) => store.#lookup(use);
    consume = (store, use) => store.#consume(use);
  }

  serialize(): Uint8Array {
    return encodeCbor([
      STORE_TAG,
      PREKEY_STORE_VERSION,
      [this.#nextSignedId, this.#nextOneTimeId, this.#nextKemId, this.#currentSignedId, this.#lastResortKemId],
      [...this.#signed].map(([id, r]) => [id, r.keyPair.privateKey, r.keyPair.publicKey, r.signature, [...r.versions], r.signature2]),
      [...this.#oneTime].map(([id, kp]) => [id, kp.privateKey, kp.publicKey]),
      [...this.#kem].map(([id, r]) => [id, r.publicKey, r.secretKey, r.lastResort, r.signature]),
      [...this.#seenBaseKeys].map(([id, set]) => [id, [...set].map((h) => fromHex(h))]),
    ]);
  }

  /** Loads a store for `device`. Any malformed content is BAD_RECORD; nothing is partially loaded. */
  static deserialize(bytes: Uint8Array, device: DeviceIdentity, provider?: CryptoProvider): PreKeyStore {
    try {
      const f = readVersionedArray(
        decodeCbor(bytes, 'PreKeyStore', MAX_RECORD_BYTES),
        'PreKeyStore',
        [PROTOCOL_VERSION, PREKEY_STORE_VERSION],
        7,
        { versionIndex: 1, tag: STORE_TAG },
      );
      const recordVersion = (f as unknown[])[1] as number;
      const s = new PreKeyStore(device, provider ?? device.provider);
      const c = readArray(f[2], 'counters', 5).map((v, i) => readUint(v, `counter${i}`));
      [s.#nextSignedId, s.#nextOneTimeId, s.#nextKemId, s.#currentSignedId, s.#lastResortKemId] = c as [
        number,
        number,
        number,
        number,
        number,
      ];
      for (const e of readArray(f[3], 'signed', { min: 1, max: MAX_STORED_SIGNED_PREKEYS })) {
        const r = readArray(e, 'signed entry', recordVersion === PROTOCOL_VERSION ? 4 : 6);
        const id = readPreKeyId(r[0], 'id');
        const kp = X25519KeyPair._unchecked(readBytes(r[1], 'private', 32), readBytes(r[2], 'public', 32));
        const signature = readBytes(r[3], 'signature', 64);
        // Record v1 (spec/05-wire-format.md §6.6 migration): the device now
        // implements v2, so each kept signed prekey gets its v2 signature
        // here; Ed25519 is deterministic, so loading twice gives equal bytes.
        s.#signed.set(
          id,
          recordVersion === PROTOCOL_VERSION
            ? s.#withV2Signature(id, kp, signature, SUPPORTED_VERSIONS)
            : {
                keyPair: kp,
                signature,
                versions: readVersionList(r[4], 'versions'),
                signature2: readBytes(r[5], 'signature2', 64),
              },
        );
      }
      for (const e of readArray(f[4], 'oneTime', { min: 0, max: MAX_STORED_ONE_TIME_PREKEYS })) {
        const r = readArray(e, 'oneTime entry', 3);
        s.#oneTime.set(readPreKeyId(r[0], 'id'), X25519KeyPair._unchecked(readBytes(r[1], 'private', 32), readBytes(r[2], 'public', 32)));
      }
      for (const e of readArray(f[5], 'kem', { min: 1, max: MAX_STORED_KEM_PREKEYS })) {
        const r = readArray(e, 'kem entry', 5);
        s.#kem.set(readPreKeyId(r[0], 'id'), {
          publicKey: readBytes(r[1], 'public', MLKEM768_PUBLIC_KEY_BYTES),
          secretKey: readBytes(r[2], 'secret', MLKEM768_SECRET_KEY_BYTES),
          lastResort: readBool(r[3], 'lastResort'),
          signature: readBytes(r[4], 'signature', 64),
        });
      }
      for (const e of readArray(f[6], 'seenBaseKeys', { min: 0, max: MAX_STORED_SIGNED_PREKEYS })) {
        const r = readArray(e, 'seen entry', 2);
        const keys = readArray(r[1], 'keys', { min: 0, max: MAX_REMEMBERED_BASE_KEYS });
        s.#seenBaseKeys.set(readPreKeyId(r[0], 'id'), new Set(keys.map((k) => toHex(readBytes(k, 'baseKey', 32)))));
      }
      const signed = s.#signed.get(s.#currentSignedId);
      const lastResort = s.#kem.get(s.#lastResortKemId);
      if (!signed || !lastResort?.lastResort) {
        fail('BAD_RECORD', 'PreKeyStore: current signed or last-resort KEM prekey missing');
      }
      // A store belongs to the device it is loaded with (spec/05-wire-format.md
      // §6.4): its two current keys must carry that device's signatures. Loaded
      // with another device, it would hand out bundles no peer accepts. Two
      // verifications, not one per entry: this checks the binding, not every key.
      const b = s.#provider.backend;
      const signingKey = device.certificate.signingKey;
      if (
        !b.ed25519Verify(signingKey, signedPreKeySignedBytes(s.#currentSignedId, signed.keyPair.publicKey), signed.signature) ||
        !b.ed25519Verify(
          signingKey,
          signedPreKeyV2SignedBytes(s.#currentSignedId, signed.keyPair.publicKey, signed.versions),
          signed.signature2,
        ) ||
        !b.ed25519Verify(signingKey, kemPreKeySignedBytes(s.#lastResortKemId, lastResort.publicKey, true), lastResort.signature)
      ) {
        fail('BAD_RECORD', "PreKeyStore: not signed by this device's signing key");
      }
      return s;
    } catch (e) {
      throw asRecordError(e, 'PreKeyStore');
    }
  }

  #withV2Signature(id: number, keyPair: X25519KeyPair, signature: Uint8Array, versions: readonly number[]): SignedPreKeyRecord {
    const list = checkVersionList(versions, 'versions');
    return { keyPair, signature, versions: list, signature2: this.#device.sign(signedPreKeyV2SignedBytes(id, keyPair.publicKey, list)) };
  }

  /** A store never grows past what `deserialize` accepts (prune, or consume, first). */
  #checkCapacity(size: number, limit: number, what: string): void {
    if (size > limit) fail('INVALID_STATE', `too many stored ${what} (limit ${limit}); prune or wait for consumption`, { limit });
  }

  #takeId(kind: 'signed' | 'oneTime' | 'kem'): number {
    const id = kind === 'signed' ? this.#nextSignedId++ : kind === 'oneTime' ? this.#nextOneTimeId++ : this.#nextKemId++;
    // Ids are never reused: a wrapped counter could make a relay hand out an id twice.
    if (id > MAX_PREKEY_ID) fail('INVALID_STATE', `${kind} prekey ids exhausted`);
    return id;
  }

  #newKem(lastResort: boolean): KemPreKeyPublic {
    const id = this.#takeId('kem');
    // The seed d || z re-derives the decapsulation key; only the key is kept.
    const seed = this.#provider.random(MLKEM768_SEED_BYTES);
    const { publicKey, secretKey } = this.#provider.backend.mlkemKeygen(seed);
    wipe(seed);
    const signature = this.#device.sign(kemPreKeySignedBytes(id, publicKey, lastResort));
    this.#kem.set(id, { publicKey, secretKey, lastResort, signature });
    return { id, publicKey, lastResort, signature };
  }

  #kemPublic(id: number): KemPreKeyPublic {
    const r = this.#kem.get(id) as KemPreKeyRecord;
    return { id, publicKey: r.publicKey, lastResort: r.lastResort, signature: r.signature };
  }

  toString(): string {
    return redacted('PreKeyStore', { deviceId: this.#device.deviceId, oneTime: this.#oneTime.size, kem: this.#kem.size });
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0 || count > 100_000) throw new RangeError('"count" expected an integer in 0..100000');
}
