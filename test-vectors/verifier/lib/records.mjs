/**
 * Stored state as spec/05-wire-format.md §6 lays it out: the prekey store
 * and session records as live objects with byte-exact encoders and strict
 * loaders, and the account and device records. Loading failures are
 * BAD_RECORD (an unknown version stays UNSUPPORTED_VERSION).
 */
import { decode, encode, readArray, readBool, readBytes, readOptional, readTag, readUint, readVersion } from './cbor.mjs';
import { Limits, RecordTag, SESSION_RECORD_VERSION, Sizes, VERSION } from './constants.mjs';
import { ProtocolError, fail } from './errors.mjs';
import { initiate, respond } from './handshake.mjs';
import { equal, fromHex, toHex } from './hex.mjs';
import { ed25519PublicKey, ed25519Verify, mlkemKeygen, sha256, x25519PublicKey } from './primitives.mjs';
import { initInitiator, initResponder, pad, ratchetDecrypt, ratchetEncrypt, skippedId, unpad } from './ratchet.mjs';
import { V2_DEVICE_VERSIONS, readVersionList, signPreKeyV2, signedPreKeyV2SignedBytes } from './versions.mjs';
import {
  certificateArray,
  certificateFromArray,
  decodeMessage,
  encodePreKeyMessage,
  encodeRatchetMessage,
  kemPreKeySignedBytes,
  preKeyFieldsBytes,
  signedPreKeySignedBytes,
  verifyCertificate,
} from './structures.mjs';

/** Runs a loader, reporting every failure but a version as BAD_RECORD. */
function asRecord(what, load) {
  try {
    return load();
  } catch (e) {
    if (e instanceof ProtocolError && e.code !== 'UNSUPPORTED_VERSION' && e.code !== 'BAD_RECORD')
      fail('BAD_RECORD', `${what}: ${e.message}`);
    throw e;
  }
}

/** Tag, then version, then the field count (spec/05 §6.6: an unknown version is always UNSUPPORTED_VERSION). */
function readRecordHead(bytes, what, tag, fields) {
  const f = decode(bytes, what, Limits.MAX_RECORD_BYTES);
  if (!Array.isArray(f) || f.length < 2) fail('MALFORMED', `${what}: not a record`);
  readTag(f[0], what, tag);
  readVersion(f[1], what);
  return readArray(f, what, fields);
}

/** The head of a record-version-2 PreKeyStore (tag, then version 2, then 5 fields). */
function readStoreV2Head(f) {
  if (!Array.isArray(f) || f.length < 2) fail('MALFORMED', 'PreKeyStore: not a record');
  readTag(f[0], 'PreKeyStore', RecordTag.prekeyStore);
  if (f[1] !== PREKEY_STORE_VERSION) readVersion(f[1], 'PreKeyStore');
  return readArray(f, 'PreKeyStore', 7);
}

// ---- accounts and devices (§6.2-§6.3) -----------------------------------

export const encodeAccount = (seed) => encode([RecordTag.account, VERSION, seed]);

export function loadAccount(bytes) {
  return asRecord('Account', () => {
    const f = readRecordHead(bytes, 'Account', RecordTag.account, 3);
    const seed = readBytes(f[2], 'seed', 32);
    return { seed, accountKey: ed25519PublicKey(seed) };
  });
}

export const encodeDevice = (d) =>
  encode([RecordTag.deviceIdentity, VERSION, certificateArray(d.certificate), d.signingSeed, d.identityPrivateKey]);

export function loadDevice(bytes) {
  return asRecord('DeviceIdentity', () => {
    const f = readRecordHead(bytes, 'DeviceIdentity', RecordTag.deviceIdentity, 5);
    const certificate = certificateFromArray(f[2]);
    const signingSeed = readBytes(f[3], 'signingSeed', 32);
    const identityPrivateKey = readBytes(f[4], 'identityPrivateKey', 32);
    verifyCertificate(certificate);
    if (
      !equal(ed25519PublicKey(signingSeed), certificate.signingKey) ||
      !equal(x25519PublicKey(identityPrivateKey), certificate.identityKey)
    ) {
      fail('BAD_CERTIFICATE', 'certificate names other keys');
    }
    return { certificate, signingSeed, identityPrivateKey };
  });
}

// ---- prekey store (§6.4) --------------------------------------------------

const readId = (v, field) => {
  const id = readUint(v, field, Limits.MAX_PREKEY_ID);
  if (id === 0) fail('MALFORMED', `${field}: 0`);
  return id;
};

/** PreKeyStore record versions (05 §6.4): 1, and 2 with each signed prekey's versions and v2 signature. */
const PREKEY_STORE_VERSION = 2;

export class PreKeyStore {
  constructor(s) {
    this.counters = s.counters; // [nextSigned, nextOneTime, nextKem, currentSigned, lastResortKem]
    this.signed = s.signed; // Map id -> { privateKey, publicKey, signature, versions, signature2 }
    this.oneTime = s.oneTime; // Map id -> { privateKey, publicKey }
    this.kem = s.kem; // Map id -> { publicKey, secretKey, lastResort, signature }
    this.seen = s.seen; // Map signedId -> Set(hex baseKey), oldest first
  }

  /**
   * A store holding exactly the listed prekeys, with each id counter one past
   * its largest id. A version-2 device signs each signed prekey a second time
   * (02 §5.7): recomputed here from the device's signing seed.
   */
  static fromKeys(r) {
    const next = (keys) => Math.max(0, ...keys.map((k) => k.id)) + 1;
    const lastResort = r.kemPreKeys.find((k) => k.lastResort);
    return new PreKeyStore({
      counters: [next(r.signedPreKeys), next(r.oneTimePreKeys), next(r.kemPreKeys), next(r.signedPreKeys) - 1, lastResort.id],
      signed: new Map(
        r.signedPreKeys.map((k) => [
          k.id,
          {
            privateKey: fromHex(k.privateKey),
            publicKey: fromHex(k.publicKey),
            signature: fromHex(k.signature),
            versions: V2_DEVICE_VERSIONS,
            signature2: signPreKeyV2(fromHex(r.signingSeed), k.id, fromHex(k.publicKey), V2_DEVICE_VERSIONS),
          },
        ]),
      ),
      oneTime: new Map(r.oneTimePreKeys.map((k) => [k.id, { privateKey: fromHex(k.privateKey), publicKey: fromHex(k.publicKey) }])),
      kem: new Map(
        r.kemPreKeys.map((k) => [
          k.id,
          {
            publicKey: fromHex(k.publicKey),
            secretKey: mlkemKeygen(fromHex(k.seed)).secretKey,
            lastResort: k.lastResort,
            signature: fromHex(k.signature),
          },
        ]),
      ),
      seen: new Map(),
    });
  }

  clone() {
    return new PreKeyStore({
      counters: [...this.counters],
      signed: new Map(this.signed),
      oneTime: new Map(this.oneTime),
      kem: new Map(this.kem),
      seen: new Map([...this.seen].map(([id, set]) => [id, new Set(set)])),
    });
  }

  /** The private keys an initial message names (spec/03 §4): UNKNOWN_PREKEY, PREKEY_REUSED. */
  lookup(use) {
    const signed = this.signed.get(use.signedPreKeyId);
    if (!signed) fail('UNKNOWN_PREKEY', 'signed');
    let oneTime = null;
    if (use.oneTimePreKeyId !== null) {
      oneTime = this.oneTime.get(use.oneTimePreKeyId);
      if (!oneTime) fail('UNKNOWN_PREKEY', 'one-time');
    } else if (this.seen.get(use.signedPreKeyId)?.has(toHex(use.baseKey))) {
      fail('PREKEY_REUSED', 'base key seen');
    }
    const kem = this.kem.get(use.kemPreKeyId);
    if (!kem) fail('UNKNOWN_PREKEY', 'KEM');
    return { signed, oneTime, kemSecretKey: kem.secretKey };
  }

  /** Deletes what an accepted initial message used (or remembers its base key). */
  consume(use) {
    if (use.oneTimePreKeyId !== null) this.oneTime.delete(use.oneTimePreKeyId);
    else {
      if (!this.seen.has(use.signedPreKeyId)) this.seen.set(use.signedPreKeyId, new Set());
      const seen = this.seen.get(use.signedPreKeyId);
      seen.add(toHex(use.baseKey));
      if (seen.size > Limits.MAX_REMEMBERED_BASE_KEYS) seen.delete(seen.values().next().value);
    }
    const kem = this.kem.get(use.kemPreKeyId);
    if (kem && !kem.lastResort) this.kem.delete(use.kemPreKeyId);
  }

  encode() {
    return encode([
      RecordTag.prekeyStore,
      PREKEY_STORE_VERSION,
      this.counters,
      [...this.signed].map(([id, k]) => [id, k.privateKey, k.publicKey, k.signature, k.versions, k.signature2]),
      [...this.oneTime].map(([id, k]) => [id, k.privateKey, k.publicKey]),
      [...this.kem].map(([id, k]) => [id, k.publicKey, k.secretKey, k.lastResort, k.signature]),
      [...this.seen].map(([id, set]) => [id, [...set].map(fromHex)]),
    ]);
  }

  /** `device` (a loaded DeviceIdentity): the store must belong to it (05 §6.4); omitted only where no device is at hand. */
  static load(bytes, device) {
    return asRecord('PreKeyStore', () => {
      const raw = decode(bytes, 'PreKeyStore', Limits.MAX_RECORD_BYTES);
      // Record version 1 is read and migrated (05 §6.6): its signed prekeys get their v2 signature from the device.
      const v1 = Array.isArray(raw) && raw[1] === VERSION;
      const f = v1 ? readRecordHead(bytes, 'PreKeyStore', RecordTag.prekeyStore, 7) : readStoreV2Head(raw);
      const counters = readArray(f[2], 'counters', 5).map((v, i) => readUint(v, `counter${i}`));
      const signed = new Map();
      for (const e of readArray(f[3], 'signed', { min: 1, max: Limits.MAX_STORED_SIGNED_PREKEYS })) {
        const r = readArray(e, 'signed entry', v1 ? 4 : 6);
        const id = readId(r[0], 'id');
        const publicKey = readBytes(r[2], 'public', 32);
        if (v1 && !device) fail('BAD_RECORD', 'a version-1 store migrates only with its device');
        signed.set(id, {
          privateKey: readBytes(r[1], 'private', 32),
          publicKey,
          signature: readBytes(r[3], 'signature', 64),
          versions: v1 ? V2_DEVICE_VERSIONS : readVersionList(r[4], 'versions'),
          signature2: v1 ? signPreKeyV2(device.signingSeed, id, publicKey, V2_DEVICE_VERSIONS) : readBytes(r[5], 'signature2', 64),
        });
      }
      const oneTime = new Map();
      for (const e of readArray(f[4], 'oneTime', { min: 0, max: Limits.MAX_STORED_ONE_TIME_PREKEYS })) {
        const r = readArray(e, 'oneTime entry', 3);
        oneTime.set(readId(r[0], 'id'), { privateKey: readBytes(r[1], 'private', 32), publicKey: readBytes(r[2], 'public', 32) });
      }
      const kem = new Map();
      for (const e of readArray(f[5], 'kem', { min: 1, max: Limits.MAX_STORED_KEM_PREKEYS })) {
        const r = readArray(e, 'kem entry', 5);
        kem.set(readId(r[0], 'id'), {
          publicKey: readBytes(r[1], 'public', Sizes.mlkemPublicKey),
          secretKey: readBytes(r[2], 'secret', Sizes.mlkemSecretKey),
          lastResort: readBool(r[3], 'lastResort'),
          signature: readBytes(r[4], 'signature', 64),
        });
      }
      const seen = new Map();
      for (const e of readArray(f[6], 'seenBaseKeys', { min: 0, max: Limits.MAX_STORED_SIGNED_PREKEYS })) {
        const r = readArray(e, 'seen entry', 2);
        const keys = readArray(r[1], 'keys', { min: 0, max: Limits.MAX_REMEMBERED_BASE_KEYS });
        seen.set(readId(r[0], 'id'), new Set(keys.map((k) => toHex(readBytes(k, 'baseKey', 32)))));
      }
      if (!signed.has(counters[3]) || !kem.get(counters[4])?.lastResort)
        fail('BAD_RECORD', 'current signed or last-resort KEM prekey missing');
      // 05 §6.4: the current signed and last-resort KEM prekeys carry the loading device's signatures.
      if (device) {
        const signingKey = device.certificate.signingKey;
        const spk = signed.get(counters[3]);
        const lr = kem.get(counters[4]);
        if (
          !ed25519Verify(signingKey, signedPreKeySignedBytes(counters[3], spk.publicKey), spk.signature) ||
          !ed25519Verify(signingKey, signedPreKeyV2SignedBytes(counters[3], spk.publicKey, spk.versions), spk.signature2) ||
          !ed25519Verify(signingKey, kemPreKeySignedBytes(counters[4], lr.publicKey, true), lr.signature)
        )
          fail('BAD_RECORD', "not signed by the device's signing key");
      }
      return new PreKeyStore({ counters, signed, oneTime, kem, seen });
    });
  }
}

// ---- sessions (§6.5) ------------------------------------------------------

function sessionArray(s) {
  const r = s.ratchet;
  const p = s.pendingPreKey;
  return [
    certificateArray(s.remoteCertificate),
    s.associatedData,
    s.baseKey,
    s.initiator,
    [
      r.rootKey,
      r.sending.privateKey,
      r.sending.publicKey,
      r.sendingChain ? [r.sendingChain.chainKey, r.sendingChain.counter] : null,
      r.previousCounter,
      r.receiving.map((c) => [c.ratchetKey, c.chainKey, c.counter]),
      [...r.skipped.values()].map((k) => [k.ratchetKey, k.counter, k.key, k.nonce]),
    ],
    p ? [certificateArray(p.localCertificate), p.signedPreKeyId, p.oneTimePreKeyId, p.kemPreKeyId, p.kemCiphertext] : null,
    s.preKeyDigest,
  ];
}

function sessionFromArray(v) {
  const f = readArray(v, 'SessionState', 7);
  const r = readArray(f[4], 'RatchetState', 7);
  const skipped = new Map();
  for (const e of readArray(r[6], 'skipped', { min: 0, max: Limits.MAX_SKIPPED_KEYS })) {
    const sf = readArray(e, 'SkippedKey', 4);
    const ratchetKey = readBytes(sf[0], 'ratchetKey', 32);
    const counter = readUint(sf[1], 'counter');
    skipped.set(skippedId(ratchetKey, counter), {
      ratchetKey,
      counter,
      key: readBytes(sf[2], 'key', 32),
      nonce: readBytes(sf[3], 'nonce', 12),
    });
  }
  return {
    remoteCertificate: certificateFromArray(f[0]),
    associatedData: readBytes(f[1], 'associatedData', 32),
    baseKey: readBytes(f[2], 'baseKey', 32),
    initiator: readBool(f[3], 'initiator'),
    ratchet: {
      rootKey: readBytes(r[0], 'rootKey', 32),
      sending: { privateKey: readBytes(r[1], 'sendingPrivate', 32), publicKey: readBytes(r[2], 'sendingPublic', 32) },
      sendingChain: readOptional(r[3], (c) => {
        const cf = readArray(c, 'SendingChain', 2);
        return { chainKey: readBytes(cf[0], 'chainKey', 32), counter: readUint(cf[1], 'counter') };
      }),
      previousCounter: readUint(r[4], 'previousCounter'),
      receiving: readArray(r[5], 'receivingChains', { min: 0, max: Limits.MAX_RECEIVER_CHAINS }).map((c) => {
        const cf = readArray(c, 'ReceivingChain', 3);
        return {
          ratchetKey: readBytes(cf[0], 'ratchetKey', 32),
          chainKey: readBytes(cf[1], 'chainKey', 32),
          counter: readUint(cf[2], 'counter'),
        };
      }),
      skipped,
    },
    pendingPreKey: readOptional(f[5], (pv) => {
      const pf = readArray(pv, 'PendingPreKey', 5);
      return {
        localCertificate: certificateFromArray(pf[0]),
        signedPreKeyId: readUint(pf[1], 'signedPreKeyId'),
        oneTimePreKeyId: readOptional(pf[2], (x) => readUint(x, 'oneTimePreKeyId')),
        kemPreKeyId: readUint(pf[3], 'kemPreKeyId'),
        kemCiphertext: readBytes(pf[4], 'kemCiphertext', Sizes.mlkemCiphertext),
      };
    }),
    preKeyDigest: readOptional(f[6], (d) => readBytes(d, 'preKeyDigest', 32)),
  };
}

/**
 * Every session with one peer device: the current one and archived ones,
 * most recent first (spec/04 §6). Operations return results and replace
 * `current`/`previous` only on success.
 */
export class SessionRecord {
  constructor(current = null, previous = []) {
    this.current = current;
    this.previous = previous;
  }

  clone() {
    return new SessionRecord(this.current, [...this.previous]);
  }

  /** Makes `session` current, archiving the old current one. */
  add(session) {
    this.previous = (this.current ? [this.current, ...this.previous] : [...this.previous]).slice(0, Limits.MAX_ARCHIVED_SESSIONS);
    this.current = session;
  }

  encrypt(plaintext) {
    const s = this.current;
    if (!s) fail('NO_SESSION', 'no session');
    const out = ratchetEncrypt(s.ratchet, pad(plaintext), s.associatedData);
    const inner = encodeRatchetMessage(out.headerBytes, out.ciphertext);
    const p = s.pendingPreKey;
    const message = p
      ? encodePreKeyMessage(
          p.localCertificate,
          { baseKey: s.baseKey, signedPreKeyId: p.signedPreKeyId, oneTimePreKeyId: p.oneTimePreKeyId, kemPreKeyId: p.kemPreKeyId },
          p.kemCiphertext,
          inner,
        )
      : inner;
    this.current = { ...s, ratchet: out.state };
    return { message, trace: out, pending: p !== null };
  }

  /**
   * Decrypts; on any failure throws and changes nothing (neither the record
   * nor the prekey store). `ctx` = { device, prekeys, expectedAccountKey, newRatchetPrivateKey }.
   */
  decrypt(bytes, ctx = {}) {
    const m = decodeMessage(bytes);
    const nextKey = ctx.newRatchetPrivateKey ?? (() => fail('INVALID_STATE', 'the vector gives no ratchet key for this step'));
    if (m.type === 'ratchet') return this.#onExisting(m, null, nextKey);
    const digest = sha256(preKeyFieldsBytes(m));
    const existing = [this.current, ...this.previous].find((s) => s && equal(s.baseKey, m.use.baseKey));
    if (existing) {
      if (!existing.preKeyDigest || !equal(existing.preKeyDigest, digest)) fail('DECRYPT_FAILED', 'handshake fields differ');
      return this.#onExisting(m.message, existing, nextKey);
    }
    if (!ctx.device || !ctx.prekeys) fail('NO_SESSION', 'no device or prekeys');
    // A record belongs to one peer device (spec/03 §6): another account, or another device of it, is refused.
    const peer = this.current?.remoteCertificate;
    if (peer && !equal(peer.accountKey, m.initiatorCertificate.accountKey)) fail('IDENTITY_MISMATCH', 'account');
    if (peer && peer.deviceId !== m.initiatorCertificate.deviceId) fail('IDENTITY_MISMATCH', 'device');
    const hs = respond(ctx.device, ctx.prekeys, m, ctx.expectedAccountKey);
    const inner = m.message;
    const out = ratchetDecrypt(
      initResponder(hs.sharedSecret, hs.signedPreKey),
      inner.header,
      inner.headerBytes,
      inner.ciphertext,
      hs.associatedData,
      nextKey,
    );
    const plaintext = unpad(out.padded);
    this.add({
      remoteCertificate: m.initiatorCertificate,
      associatedData: hs.associatedData,
      baseKey: m.use.baseKey,
      initiator: false,
      ratchet: out.state,
      pendingPreKey: null,
      preKeyDigest: digest,
    });
    ctx.prekeys.consume(m.use);
    return { plaintext, trace: out.trace, newSession: true, handshake: hs };
  }

  #onExisting(message, only, nextKey) {
    const candidates = only ? [only] : [this.current, ...this.previous].filter(Boolean);
    if (candidates.length === 0) fail('NO_SESSION', 'no session');
    let first = null;
    for (const s of candidates) {
      try {
        const out = ratchetDecrypt(s.ratchet, message.header, message.headerBytes, message.ciphertext, s.associatedData, nextKey);
        const plaintext = unpad(out.padded);
        const updated = { ...s, ratchet: out.state, pendingPreKey: null };
        if (s === this.current) this.current = updated;
        else {
          const rest = this.previous.filter((x) => x !== s);
          this.previous = (this.current ? [this.current, ...rest] : rest).slice(0, Limits.MAX_ARCHIVED_SESSIONS);
          this.current = updated;
        }
        return { plaintext, trace: out.trace, newSession: false };
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        first ??= e;
      }
    }
    throw first;
  }

  /** Record version 2 (spec/13-ratchet-v2.md §8): every state starts with its ratchet version; this verifier's states are v1. */
  encode() {
    const state = (s) => [1, ...sessionArray(s)];
    return encode([RecordTag.sessionRecord, SESSION_RECORD_VERSION, this.current ? state(this.current) : null, this.previous.map(state)]);
  }

  /** Loads record version 1 (bare v1 states) and 2 (versioned states; only v1 states are run here). */
  static load(bytes) {
    return asRecord('SessionRecord', () => {
      const f = decode(bytes, 'SessionRecord', Limits.MAX_RECORD_BYTES);
      if (!Array.isArray(f) || f.length < 2) fail('MALFORMED', 'SessionRecord: not a record');
      readTag(f[0], 'SessionRecord', RecordTag.sessionRecord);
      if (typeof f[1] !== 'number' || !Number.isInteger(f[1])) fail('MALFORMED', 'SessionRecord: version is not an integer');
      if (f[1] !== 1 && f[1] !== SESSION_RECORD_VERSION) fail('UNSUPPORTED_VERSION', `SessionRecord: version ${f[1]}`);
      readArray(f, 'SessionRecord', 4);
      const read =
        f[1] === 1
          ? sessionFromArray
          : (v) => {
              const sf = readArray(v, 'SessionState', { min: 1, max: 11 });
              if (sf[0] !== 1) fail('UNSUPPORTED_VERSION', 'SessionState: only ratchet v1 states are checked by this loader');
              return sessionFromArray(sf.slice(1));
            };
      const current = readOptional(f[2], read);
      const previous = readArray(f[3], 'previous', { min: 0, max: Limits.MAX_ARCHIVED_SESSIONS }).map(read);
      return new SessionRecord(current, previous);
    });
  }
}

/**
 * The initiator's new session from a bundle (spec/03 §3 and spec/04 §3.1).
 * `random` = { ephemeralPrivateKey, kemEncapsulationRandomness, ratchetPrivateKey }.
 */
export function startSession(record, device, bundle, expectedAccountKey, random) {
  const current = record.current;
  if (current && !expectedAccountKey && !equal(current.remoteCertificate.accountKey, bundle.certificate.accountKey)) {
    fail('IDENTITY_MISMATCH', 'bundle of another account');
  }
  const hs = initiate(device, bundle, expectedAccountKey, random);
  const first = initInitiator(hs.sharedSecret, bundle.signedPreKey.publicKey, random.ratchetPrivateKey);
  record.add({
    remoteCertificate: bundle.certificate,
    associatedData: hs.associatedData,
    baseKey: hs.baseKey,
    initiator: true,
    ratchet: first.state,
    pendingPreKey: {
      localCertificate: device.certificate,
      signedPreKeyId: hs.use.signedPreKeyId,
      oneTimePreKeyId: hs.use.oneTimePreKeyId,
      kemPreKeyId: hs.use.kemPreKeyId,
      kemCiphertext: hs.kemCiphertext,
    },
    preKeyDigest: null,
  });
  return { handshake: hs, ratchetDh: first.dhOutput };
}
