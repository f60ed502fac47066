/**
 * Account and device identities. spec/02-keys.md §1-§3.
 *
 * An account (a person) holds one long-term Ed25519 key; it certifies each of
 * its devices. A device holds two keys of its own: an Ed25519 signing key and
 * a separate X25519 identity key, both named in its certificate. Keeping the
 * DH key separate (rather than converting the Ed25519 key, as XEdDSA does)
 * means no key is ever used in two algorithms, and both backends can use
 * standard primitives only. The rationale is in spec/02-keys.md §2.2.
 */
import { abytes, bytesEqual } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readBytes, readVersionedArray } from '../codec/fields.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';
import { ParleyError, fail } from '../errors.ts';
import { PROTOCOL_VERSION } from '../labels.ts';
import { MAX_DEVICE_ID, MAX_RECORD_BYTES } from '../limits.ts';
import {
  type DeviceCertificate,
  certificateFromCbor,
  certificateSignedBytes,
  certificateToCbor,
  verifyCertificate,
} from './certificate.ts';
import { inspectSymbol, redacted } from './redact.ts';

const ACCOUNT_TAG = 'parley/account';
const DEVICE_TAG = 'parley/device-identity';

/** An X25519 key pair. The private key is never exposed through inspection. */
export class X25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly #privateKey: Uint8Array;

  private constructor(privateKey: Uint8Array, publicKey: Uint8Array) {
    this.#privateKey = privateKey;
    this.publicKey = publicKey;
  }

  static generate(provider?: CryptoProvider): X25519KeyPair {
    const p = resolveProvider(provider);
    return X25519KeyPair.fromPrivateKey(p.random(32), p);
  }

  static fromPrivateKey(privateKey: Uint8Array, provider?: CryptoProvider): X25519KeyPair {
    abytes(privateKey, 'privateKey', 32);
    const p = resolveProvider(provider);
    return new X25519KeyPair(privateKey, p.backend.x25519PublicKey(privateKey));
  }

  /** @internal Rebuilds a pair from stored bytes without recomputing. */
  static _unchecked(privateKey: Uint8Array, publicKey: Uint8Array): X25519KeyPair {
    return new X25519KeyPair(privateKey, publicKey);
  }

  /** The raw private key, for the protocol layers and serialization only. */
  get privateKey(): Uint8Array {
    return this.#privateKey;
  }

  toString(): string {
    return redacted('X25519KeyPair');
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** An Ed25519 key pair (32-byte seed). */
export class Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly #seed: Uint8Array;

  private constructor(seed: Uint8Array, publicKey: Uint8Array) {
    this.#seed = seed;
    this.publicKey = publicKey;
  }

  static generate(provider?: CryptoProvider): Ed25519KeyPair {
    const p = resolveProvider(provider);
    return Ed25519KeyPair.fromSeed(p.random(32), p);
  }

  static fromSeed(seed: Uint8Array, provider?: CryptoProvider): Ed25519KeyPair {
    abytes(seed, 'seed', 32);
    const p = resolveProvider(provider);
    return new Ed25519KeyPair(seed, p.backend.ed25519PublicKey(seed));
  }

  get seed(): Uint8Array {
    return this.#seed;
  }

  sign(message: Uint8Array, provider?: CryptoProvider): Uint8Array {
    return resolveProvider(provider).backend.ed25519Sign(this.#seed, message);
  }

  toString(): string {
    return redacted('Ed25519KeyPair');
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/**
 * An account: a person's long-term identity. Its public key is the account's
 * name on the relay and the input to safety numbers; its private key lives
 * on the primary device and signs device certificates.
 */
export class Account {
  readonly #keyPair: Ed25519KeyPair;
  readonly #provider: CryptoProvider;

  private constructor(keyPair: Ed25519KeyPair, provider: CryptoProvider) {
    this.#keyPair = keyPair;
    this.#provider = provider;
  }

  static generate(provider?: CryptoProvider): Account {
    const p = resolveProvider(provider);
    return new Account(Ed25519KeyPair.generate(p), p);
  }

  static fromSeed(seed: Uint8Array, provider?: CryptoProvider): Account {
    const p = resolveProvider(provider);
    return new Account(Ed25519KeyPair.fromSeed(seed, p), p);
  }

  get publicKey(): Uint8Array {
    return this.#keyPair.publicKey;
  }

  /** Creates a new device with fresh keys and a certificate signed by this account. */
  createDevice(deviceId: number, provider?: CryptoProvider): DeviceIdentity {
    const p = provider ?? this.#provider;
    const signing = Ed25519KeyPair.generate(p);
    const identity = X25519KeyPair.generate(p);
    return new DeviceIdentity(this.certify(deviceId, signing.publicKey, identity.publicKey), signing, identity, p);
  }

  /**
   * Signs a certificate for a device whose keys were generated elsewhere
   * (device linking: the new device sends its public keys to the primary).
   */
  certify(deviceId: number, signingKey: Uint8Array, identityKey: Uint8Array): DeviceCertificate {
    checkDeviceId(deviceId);
    abytes(signingKey, 'signingKey', 32);
    abytes(identityKey, 'identityKey', 32);
    // The keys come from the new device (linking): validate like any received key.
    checkX25519PublicKey(identityKey, 'identityKey');
    const body = { version: PROTOCOL_VERSION, accountKey: this.publicKey, deviceId, signingKey, identityKey };
    return { ...body, signature: this.#keyPair.sign(certificateSignedBytes(body), this.#provider) };
  }

  /** Signs arbitrary account-level statements (e.g. a device list) under a label. */
  signStatement(label: string, body: Uint8Array): Uint8Array {
    return this.#keyPair.sign(encodeCbor([label, body]), this.#provider);
  }

  serialize(): Uint8Array {
    return encodeCbor([ACCOUNT_TAG, PROTOCOL_VERSION, this.#keyPair.seed]);
  }

  static deserialize(bytes: Uint8Array, provider?: CryptoProvider): Account {
    try {
      const f = readVersionedArray(decodeCbor(bytes, 'Account', MAX_RECORD_BYTES), 'Account', [PROTOCOL_VERSION], 3, {
        versionIndex: 1,
        tag: ACCOUNT_TAG,
      });
      return Account.fromSeed(readBytes(f[2], 'seed', 32), provider);
    } catch (e) {
      throw asRecordError(e, 'Account');
    }
  }

  toString(): string {
    return redacted('Account');
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

function checkDeviceId(deviceId: number): void {
  if (!Number.isInteger(deviceId) || deviceId < 1 || deviceId > MAX_DEVICE_ID) {
    throw new RangeError(`"deviceId" expected an integer in 1..${MAX_DEVICE_ID}`);
  }
}

/**
 * One device of an account: its certificate and its two private keys.
 * Sessions, prekeys and group chains all belong to a device.
 */
export class DeviceIdentity {
  readonly certificate: DeviceCertificate;
  readonly #signing: Ed25519KeyPair;
  readonly #identity: X25519KeyPair;
  readonly #provider: CryptoProvider;

  /** @internal use Account.createDevice, DeviceIdentity.fromParts or deserialize. */
  constructor(certificate: DeviceCertificate, signing: Ed25519KeyPair, identity: X25519KeyPair, provider: CryptoProvider) {
    this.certificate = certificate;
    this.#signing = signing;
    this.#identity = identity;
    this.#provider = provider;
  }

  /**
   * Generates the key pairs of a device that will be certified by an account
   * held elsewhere (the linking flow, spec/02-keys.md §4). Call
   * `DeviceIdentity.fromParts` with the returned keys and the certificate.
   */
  static generateKeys(provider?: CryptoProvider): { signing: Ed25519KeyPair; identity: X25519KeyPair } {
    const p = resolveProvider(provider);
    return { signing: Ed25519KeyPair.generate(p), identity: X25519KeyPair.generate(p) };
  }

  /** Assembles a device from its keys and a certificate; the certificate must match and verify. */
  static fromParts(
    certificate: DeviceCertificate,
    signing: Ed25519KeyPair,
    identity: X25519KeyPair,
    provider?: CryptoProvider,
  ): DeviceIdentity {
    const p = resolveProvider(provider);
    verifyCertificate(p.backend, certificate);
    if (!bytesEqual(certificate.signingKey, signing.publicKey) || !bytesEqual(certificate.identityKey, identity.publicKey)) {
      fail('BAD_CERTIFICATE', 'certificate does not match the device keys', { deviceId: certificate.deviceId });
    }
    return new DeviceIdentity(certificate, signing, identity, p);
  }

  get deviceId(): number {
    return this.certificate.deviceId;
  }
  get accountKey(): Uint8Array {
    return this.certificate.accountKey;
  }
  /** @internal */
  get signingKeyPair(): Ed25519KeyPair {
    return this.#signing;
  }
  /** @internal */
  get identityKeyPair(): X25519KeyPair {
    return this.#identity;
  }
  get provider(): CryptoProvider {
    return this.#provider;
  }

  /** Signs with the device signing key (prekeys, group messages, relay requests). */
  sign(message: Uint8Array): Uint8Array {
    return this.#signing.sign(message, this.#provider);
  }

  serialize(): Uint8Array {
    return encodeCbor([DEVICE_TAG, PROTOCOL_VERSION, certificateToCbor(this.certificate), this.#signing.seed, this.#identity.privateKey]);
  }

  static deserialize(bytes: Uint8Array, provider?: CryptoProvider): DeviceIdentity {
    const p = resolveProvider(provider);
    try {
      const f = readVersionedArray(decodeCbor(bytes, 'DeviceIdentity', MAX_RECORD_BYTES), 'DeviceIdentity', [PROTOCOL_VERSION], 5, {
        versionIndex: 1,
        tag: DEVICE_TAG,
      });
      const certificate = certificateFromCbor(f[2]);
      const signing = Ed25519KeyPair.fromSeed(readBytes(f[3], 'signingSeed', 32), p);
      const identity = X25519KeyPair.fromPrivateKey(readBytes(f[4], 'identityPrivateKey', 32), p);
      return DeviceIdentity.fromParts(certificate, signing, identity, p);
    } catch (e) {
      throw asRecordError(e, 'DeviceIdentity');
    }
  }

  toString(): string {
    return redacted('DeviceIdentity', { deviceId: this.deviceId });
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** Stored records report every shape problem as BAD_RECORD (versions stay UNSUPPORTED_VERSION). */
export function asRecordError(e: unknown, what: string): unknown {
  if (e instanceof ParleyError && e.code !== 'BAD_RECORD' && e.code !== 'UNSUPPORTED_VERSION') {
    return new ParleyError('BAD_RECORD', `${what}: ${e.message}`, e.details);
  }
  return e;
}
