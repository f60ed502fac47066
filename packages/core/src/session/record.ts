/**
 * SessionRecord: every session this device has with one peer device, the
 * current one and up to MAX_ARCHIVED_SESSIONS older ones.
 * spec/04-double-ratchet.md §6 (sessions), spec/03-handshake.md §3-§6
 * (initiator and responder steps, simultaneous initiation, identity changes).
 *
 * `encrypt` and `decrypt` are transactions: they compute a whole new record
 * from the old one (the ratchet transitions are pure) and swap it in only on
 * success, so any failure leaves the record exactly as it was, byte for byte.
 *
 * A record holds sessions of ratchet version 1 and 2 (spec/13-ratchet-v2.md
 * §8). A message is tried only on sessions of its own version; a v2 message
 * goes to the first session (current, then archived) one of whose header
 * keys opens its header, and only there is anything else computed.
 */
import { bytesEqual, toHex, wipe } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readOptional, readVersionedArray } from '../codec/fields.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { generateDhKeyPair } from '../crypto/x25519.ts';
import { ParleyError, fail } from '../errors.ts';
import { initiate, respond } from '../handshake/pqxdh.ts';
import type { DeviceCertificate } from '../keys/certificate.ts';
import { type DeviceIdentity, asRecordError } from '../keys/identity.ts';
import { type AnyPreKeyBundle, type PreKeyStore, type PreKeyUse, consumePreKeys, decodeAnyBundle, encodeBundle } from '../keys/prekeys.ts';
import { inspectSymbol, redacted } from '../keys/redact.ts';
import { PROTOCOL_VERSION } from '../labels.ts';
import { MAX_ARCHIVED_RATCHET_TRIALS, MAX_ARCHIVED_SESSIONS, MAX_PLAINTEXT_BYTES, MAX_RECORD_BYTES } from '../limits.ts';
import { pad, unpad } from '../ratchet/padding.ts';
import { commitDecrypted, initInitiator, initResponder, ratchetDecrypt, ratchetEncrypt } from '../ratchet/ratchet.ts';
import { type PqPort, defaultPqPort } from '../ratchet/v2/pq-port.ts';
import {
  type OpenedHeader,
  type RatchetV2,
  decryptOpened,
  initiateV2,
  ratchetEncryptV2,
  respondV2,
  trialOpenHeader,
} from '../ratchet/v2/ratchet.ts';
import {
  type Message,
  type PreKeyMessageV2,
  type RatchetMessage,
  type RatchetMessageV2,
  decodeMessage,
  encodePreKeyMessage,
  encodePreKeyMessageV2,
  encodeRatchetMessage,
  encodeRatchetMessageV2,
  preKeyFieldsBytes,
  preKeyV2FieldsBytes,
} from './messages.ts';
import type { PendingPreKey, SessionStateV1 } from './state.ts';
import type { SessionStateV2 } from './state-v2.ts';
import { type SessionState, storedSessionFromCbor, storedSessionToCbor } from './stored.ts';

const RECORD_TAG = 'parley/session-record';
/**
 * Record format version. 2: every state carries its ratchet version
 * (spec/13-ratchet-v2.md §8); records of version 1 still load and are saved as 2.
 */
export const SESSION_RECORD_VERSION = 2;
const READABLE_RECORD_VERSIONS = [PROTOCOL_VERSION, SESSION_RECORD_VERSION];

/** The PQ ratchet v2 sessions run (spec/13-ratchet-v2.md §6). */
const PQ: PqPort = defaultPqPort;

export interface InitiateOptions {
  /** Refuse the bundle unless its certificate names this account (the contact's known key). */
  expectedAccountKey?: Uint8Array;
  /**
   * Allow a bundle from another account or device than the record's current
   * peer (after the user accepted a safety-number change). Without it that
   * is IDENTITY_MISMATCH.
   */
  allowIdentityChange?: boolean;
  /**
   * The caller's version pin for this peer device (spec/design/formats-v2.md
   * §3.5): a bundle or negotiated version below it is DOWNGRADE_REFUSED.
   */
  minVersion?: number;
  /** Versions this device offers (default: all it implements; a subset while an app cannot carry v2 messages). */
  localVersions?: readonly number[];
}

export interface DecryptContext {
  /** Needed only to accept a new session from a PreKeyMessage. */
  device?: DeviceIdentity;
  /** Needed only to accept a new session; its one-time keys are consumed on success. */
  prekeys?: PreKeyStore;
  /** Refuse a new session unless the sender's certificate names this account. */
  expectedAccountKey?: Uint8Array;
  /** Accept a new session from another account or device than the record's current peer. */
  allowIdentityChange?: boolean;
  /** The caller's version pin for the sender device: a v1 PreKeyMessage below it is DOWNGRADE_REFUSED. */
  minVersion?: number;
  /** Versions this device offers (default: all it implements); the pin binds only up to the highest. */
  localVersions?: readonly number[];
  /** A v2 message's franking tag, delivered beside it (formats-v2 §4.3); required for v2 messages. */
  frankingTag?: Uint8Array;
}

export interface DecryptResult {
  readonly plaintext: Uint8Array;
  /** The sender device's certificate (already verified). */
  readonly sender: DeviceCertificate;
  /** True when this message created a new session (a PreKeyMessage accepted). */
  readonly newSession: boolean;
  /** The prekeys a new session used (the one-time ones are now deleted from the store). */
  readonly usedPreKeys: PreKeyUse | null;
  /** Ratchet version of the session that decrypted the message. */
  readonly version: 1 | 2;
  /** v2: the franking key from the body (kept with the message for reporting, formats-v2 §3.4); null in v1. */
  readonly frankingKey: Uint8Array | null;
  /** v2: the sender attestation of a sealed send, if any. */
  readonly attestation: Uint8Array | null;
}

/** What `encryptWithTag` returns: the message and, for a v2 session, the franking tag to send beside it. */
export interface EncryptedMessage {
  readonly message: Uint8Array;
  readonly frankingTag: Uint8Array | null;
}

/**
 * A new v2 session, as the v2 handshake hands it over (initiator side):
 * the ratchet from `initiateV2`, and what the PreKeyMessageV2 repeats.
 */
export interface NewSessionV2 {
  readonly remoteCertificate: DeviceCertificate;
  readonly localCertificate: DeviceCertificate;
  readonly ratchet: RatchetV2;
  readonly baseKey: Uint8Array;
  readonly use: PreKeyUse;
  readonly kemCiphertext: Uint8Array;
  readonly versions: { readonly local: readonly number[]; readonly remote: readonly number[] };
}

interface RecordState {
  readonly current: SessionState | null;
  /** Most recent first. */
  readonly previous: readonly SessionState[];
}

export class SessionRecord {
  #state: RecordState;
  readonly #provider: CryptoProvider;

  constructor(provider?: CryptoProvider) {
    this.#provider = resolveProvider(provider);
    this.#state = { current: null, previous: [] };
  }

  /**
   * Starts a new session from a peer device's bundle (verifying its
   * certificate and signatures) and makes it current; any existing session
   * is archived. Messages will be PreKeyMessages until the peer answers.
   */
  static initiate(
    device: DeviceIdentity,
    bundle: AnyPreKeyBundle,
    options: InitiateOptions & { provider?: CryptoProvider } = {},
  ): SessionRecord {
    const record = new SessionRecord(options.provider ?? device.provider);
    record.initiate(device, bundle, options);
    return record;
  }

  /** As the static form, on an existing record (a fresh session replaces the current one). */
  initiate(device: DeviceIdentity, bundle: AnyPreKeyBundle, options: InitiateOptions = {}): void {
    const p = this.#provider;
    const current = this.#state.current;
    // Decode first (spec/03-handshake.md §3 step 1): the peer check then
    // reads fields that passed the same checks as received bytes, and a
    // malformed bundle is MALFORMED whatever peer it names.
    const decoded = decodeAnyBundle(encodeBundle(bundle));
    if (current && !samePeer(current.remoteCertificate, decoded.certificate) && !options.allowIdentityChange) {
      fail('IDENTITY_MISMATCH', "bundle names another account or device than this record's peer", {
        deviceId: decoded.certificate.deviceId,
      });
    }
    const hs = initiate(p, device, decoded, options);
    if (hs.version === 2 && hs.versions) {
      // Version 2 (formats-v2 §3.2): the v2 ratchet from the v2 SK and AD2, then the session as startSessionV2 records it.
      const ratchet = initiateV2(
        p,
        { sharedSecret: hs.sharedSecret, associatedData: hs.associatedData, theirRatchetKey: hs.bundle.signedPreKey.publicKey },
        { pq: PQ },
      );
      wipe(hs.sharedSecret);
      this.startSessionV2(
        {
          remoteCertificate: hs.bundle.certificate,
          localCertificate: device.certificate,
          ratchet,
          baseKey: hs.baseKey.publicKey,
          use: hs.use,
          kemCiphertext: hs.kemCiphertext,
          versions: { local: hs.versions.initiator, remote: hs.versions.responder },
        },
        { allowIdentityChange: true },
      );
      return;
    }
    if (hs.version !== 1) {
      wipe(hs.sharedSecret);
      fail('UNSUPPORTED_VERSION', 'this build runs ratchet versions 1 and 2 only');
    }
    const ratchet = initInitiator(p, hs.sharedSecret, hs.bundle.signedPreKey.publicKey, generateDhKeyPair(p));
    wipe(hs.sharedSecret);
    const session: SessionState = {
      version: 1,
      remoteCertificate: hs.bundle.certificate,
      associatedData: hs.associatedData,
      baseKey: hs.baseKey.publicKey,
      initiator: true,
      ratchet,
      pendingPreKey: {
        localCertificate: device.certificate,
        signedPreKeyId: hs.use.signedPreKeyId,
        oneTimePreKeyId: hs.use.oneTimePreKeyId,
        kemPreKeyId: hs.use.kemPreKeyId,
        kemCiphertext: hs.kemCiphertext,
      },
      preKeyDigest: null,
    };
    this.#state = withCurrent(this.#state, session);
  }

  /**
   * Starts a v2 session (wiring point of the v2 handshake, formats-v2 §3.2):
   * `ratchet` comes from `initiateV2` with the v2 SK and AD2. The session
   * becomes current (the old one is archived) and sends PreKeyMessageV2s
   * until the peer answers.
   */
  startSessionV2(input: NewSessionV2, options: Pick<InitiateOptions, 'allowIdentityChange'> = {}): void {
    const current = this.#state.current;
    if (current && !samePeer(current.remoteCertificate, input.remoteCertificate) && !options.allowIdentityChange) {
      fail('IDENTITY_MISMATCH', "session names another account or device than this record's peer", {
        deviceId: input.remoteCertificate.deviceId,
      });
    }
    const session: SessionStateV2 = {
      version: 2,
      remoteCertificate: input.remoteCertificate,
      associatedData: input.ratchet.associatedData,
      baseKey: input.baseKey,
      initiator: true,
      ratchet: input.ratchet.state,
      pendingPreKey: {
        localCertificate: input.localCertificate,
        signedPreKeyId: input.use.signedPreKeyId,
        oneTimePreKeyId: input.use.oneTimePreKeyId,
        kemPreKeyId: input.use.kemPreKeyId,
        kemCiphertext: input.kemCiphertext,
      },
      preKeyDigest: null,
      localSender: { accountKey: input.localCertificate.accountKey, deviceId: input.localCertificate.deviceId },
      versions: input.versions,
    };
    this.#state = withCurrent(this.#state, session);
  }

  /**
   * Accepts the first PreKeyMessageV2 of a new v2 session (wiring point of
   * the v2 handshake): `ratchet` comes from `respondV2` with the v2 SK and
   * AD2 the responder derived for `message`. Decrypts the embedded message
   * on it and, only on success, makes the session current and consumes the
   * one-time prekeys. On any failure nothing changes.
   */
  acceptSessionV2(
    message: PreKeyMessageV2,
    input: { ratchet: RatchetV2; localCertificate: DeviceCertificate; versions: NewSessionV2['versions']; frankingTag: Uint8Array },
    prekeys: PreKeyStore,
    options: Pick<DecryptContext, 'allowIdentityChange'> = {},
  ): DecryptResult {
    const current = this.#state.current;
    const sender = message.initiatorCertificate;
    if (current && !samePeer(current.remoteCertificate, sender) && !options.allowIdentityChange) {
      fail('IDENTITY_MISMATCH', "message is from another account or device than this record's peer", { deviceId: sender.deviceId });
    }
    const fresh: SessionStateV2 = {
      version: 2,
      remoteCertificate: sender,
      associatedData: input.ratchet.associatedData,
      baseKey: message.use.baseKey,
      initiator: false,
      ratchet: input.ratchet.state,
      pendingPreKey: null,
      preKeyDigest: this.#provider.backend.sha256(preKeyV2FieldsBytes(message)),
      localSender: { accountKey: input.localCertificate.accountKey, deviceId: input.localCertificate.deviceId },
      versions: input.versions,
    };
    const opened = trialOpenHeader(this.#provider.backend, ratchetOf(fresh), message.message.header, message.message.ciphertext);
    if (!opened) fail('HEADER_DECRYPT_FAILED', "the first message's header does not open under the new session's keys");
    const out = this.#decryptV2On(fresh, opened, message.message, input.frankingTag);
    // Commit: the record, then the prekey store. Neither changed before this point.
    this.#state = withCurrent(this.#state, out.session);
    consumePreKeys(prekeys, message.use);
    return { ...out.result, newSession: true, usedPreKeys: message.use };
  }

  /** Ratchet version of the current session (1 or 2), null without one; shown to users (formats-v2 §3.3). */
  get sessionVersion(): 1 | 2 | null {
    return this.#state.current?.version ?? null;
  }

  get hasSession(): boolean {
    return this.#state.current !== null;
  }

  /** The current session's peer certificate, if any. */
  get remoteCertificate(): DeviceCertificate | null {
    return this.#state.current?.remoteCertificate ?? null;
  }

  /** The current session's id (its base key), for logs and tests; not secret. */
  get sessionId(): Uint8Array | null {
    return this.#state.current?.baseKey ?? null;
  }

  /**
   * True when the current or an archived session was created with this base
   * key: a PreKeyMessage carrying it decrypts on that session without a new
   * handshake. Lets a caller tell a cheap repeat from a costly first contact
   * before decrypting (the client's per-sender handshake budget). Base keys are public.
   */
  hasBaseKey(baseKey: Uint8Array): boolean {
    return this.#find((s) => bytesEqual(s.baseKey, baseKey)) !== null;
  }

  get archivedCount(): number {
    return this.#state.previous.length;
  }

  /** True while the current session still sends PreKeyMessages (no answer from the peer yet). */
  get awaitingReply(): boolean {
    return this.#state.current?.pendingPreKey != null;
  }

  /**
   * Encrypts with the current session. Throws NO_SESSION without one, and
   * INVALID_STATE on a v2 session, whose franking tag must travel beside the
   * message: use `encryptWithTag` there.
   */
  encrypt(plaintext: Uint8Array): Uint8Array {
    if (this.#state.current?.version === 2) {
      fail('INVALID_STATE', "a v2 session's messages carry a franking tag beside them: use encryptWithTag");
    }
    return this.encryptWithTag(plaintext).message;
  }

  /** Encrypts with the current session of either version; a v2 message comes with its franking tag. */
  encryptWithTag(plaintext: Uint8Array): EncryptedMessage {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('"plaintext" expected Uint8Array');
    if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new RangeError(`"plaintext" exceeds ${MAX_PLAINTEXT_BYTES} bytes`);
    const current = this.#state.current;
    if (!current) fail('NO_SESSION', 'no session with this device');
    if (current.version === 2) return this.#encryptV2(current, plaintext);
    const out = ratchetEncrypt(this.#provider, current.ratchet, pad(plaintext), current.associatedData);
    const inner = encodeRatchetMessage(out.headerBytes, out.ciphertext);
    const pending = current.pendingPreKey;
    const message = pending
      ? encodePreKeyMessage(pending.localCertificate, pendingUse(current.baseKey, pending), pending.kemCiphertext, inner)
      : inner;
    this.#state = { ...this.#state, current: { ...current, ratchet: out.state } };
    return { message, frankingTag: null };
  }

  #encryptV2(current: SessionStateV2, plaintext: Uint8Array): EncryptedMessage {
    const out = ratchetEncryptV2(this.#provider, ratchetOf(current), { plaintext, sender: current.localSender }, { pq: PQ });
    const inner = encodeRatchetMessageV2(out.header, out.ciphertext);
    const pending = current.pendingPreKey;
    const message = pending
      ? encodePreKeyMessageV2(
          pending.localCertificate,
          pendingUse(current.baseKey, pending),
          pending.kemCiphertext,
          current.versions.local,
          inner,
        )
      : inner;
    this.#state = { ...this.#state, current: { ...current, ratchet: out.state } };
    return { message, frankingTag: out.frankingTag };
  }

  /**
   * Decrypts a message from the peer device. A RatchetMessage is tried on
   * the current session, then on archived ones (a success there promotes
   * that session to current). A PreKeyMessage goes to the session with its
   * base key if one exists, else creates a new session (needs `device` and
   * `prekeys`). On any failure nothing changes: not the record, not the
   * prekey store.
   */
  decrypt(bytes: Uint8Array, context: DecryptContext = {}): DecryptResult {
    const message: Message = decodeMessage(bytes);
    if (message.type === 'ratchet') return this.#decryptOnExisting(message, null);
    if (message.type === 'ratchet2') return this.#decryptV2(message.header, message.ciphertext, null, context.frankingTag);
    if (message.type === 'prekey2') {
      const digest = this.#provider.backend.sha256(preKeyV2FieldsBytes(message));
      const existing = this.#find((s) => s.version === 2 && bytesEqual(s.baseKey, message.use.baseKey));
      if (!existing) return this.#acceptV2(message, context);
      if (!existing.preKeyDigest || !bytesEqual(existing.preKeyDigest, digest)) {
        fail('DECRYPT_FAILED', 'PreKeyMessage handshake fields differ from those of its session');
      }
      return this.#decryptV2(message.message.header, message.message.ciphertext, existing, context.frankingTag);
    }

    const p = this.#provider;
    const preKeyDigest = p.backend.sha256(preKeyFieldsBytes(message));
    const existing = this.#find((s) => bytesEqual(s.baseKey, message.use.baseKey));
    if (existing) {
      if (existing.version !== 1) fail('DECRYPT_FAILED', 'a v1 PreKeyMessage names a v2 session');
      // A repeat of the PreKeyMessage that created this session: its handshake fields must be the same.
      if (!existing.preKeyDigest || !bytesEqual(existing.preKeyDigest, preKeyDigest)) {
        fail('DECRYPT_FAILED', 'PreKeyMessage handshake fields differ from those of its session');
      }
      return this.#decryptOnExisting(message.message, existing);
    }

    const { device, prekeys } = context;
    if (!device || !prekeys) fail('NO_SESSION', 'a new session needs the device identity and prekey store');
    const current = this.#state.current;
    const sender = message.initiatorCertificate;
    if (current && !samePeer(current.remoteCertificate, sender) && !context.allowIdentityChange) {
      fail('IDENTITY_MISMATCH', "message is from another account or device than this record's peer", { deviceId: sender.deviceId });
    }
    const hs = respond(p, device, prekeys, sender, message.use, message.kemCiphertext, context);
    const inner = message.message;
    const decrypted = ratchetDecrypt(
      p,
      initResponder(hs.sharedSecret, hs.signedPreKey),
      inner.header,
      inner.headerBytes,
      inner.ciphertext,
      hs.associatedData,
    );
    const plaintext = unpad(decrypted.plaintext);
    const session: SessionState = {
      version: 1,
      remoteCertificate: sender,
      associatedData: hs.associatedData,
      baseKey: message.use.baseKey,
      initiator: false,
      ratchet: commitDecrypted(decrypted),
      pendingPreKey: null,
      preKeyDigest,
    };
    // Commit: the record, then the prekey store. Neither changed before this point.
    this.#state = withCurrent(this.#state, session);
    consumePreKeys(prekeys, message.use);
    return { plaintext, sender, newSession: true, usedPreKeys: message.use, version: 1, frankingKey: null, attestation: null };
  }

  /**
   * A new v2 session from its first PreKeyMessageV2: the v2 handshake
   * (versions_A from the message, versions_B from our own store), the v2
   * ratchet, then acceptSessionV2, which decrypts and commits only on success.
   */
  #acceptV2(message: PreKeyMessageV2, context: DecryptContext): DecryptResult {
    const { device, prekeys } = context;
    if (!device || !prekeys) fail('NO_SESSION', 'a new session needs the device identity and prekey store');
    if (!(context.frankingTag instanceof Uint8Array) || context.frankingTag.length !== 32) {
      fail('MALFORMED', 'a v2 message needs the 32-byte franking tag delivered beside it');
    }
    const current = this.#state.current;
    const sender = message.initiatorCertificate;
    if (current && !samePeer(current.remoteCertificate, sender) && !context.allowIdentityChange) {
      fail('IDENTITY_MISMATCH', "message is from another account or device than this record's peer", { deviceId: sender.deviceId });
    }
    const p = this.#provider;
    const hs = respond(p, device, prekeys, sender, message.use, message.kemCiphertext, { ...context, initiatorVersions: message.versions });
    if (!hs.versions) fail('DECRYPT_FAILED', 'a version-2 PreKeyMessage without version sets');
    // The ratchet keeps (and later wipes) its own copy of the signed prekey pair, never the prekey store's.
    const ownSignedPreKey = {
      publicKey: Uint8Array.from(hs.signedPreKey.publicKey),
      privateKey: Uint8Array.from(hs.signedPreKey.privateKey),
    };
    const ratchet = respondV2(p, { sharedSecret: hs.sharedSecret, associatedData: hs.associatedData, ownSignedPreKey }, { pq: PQ });
    wipe(hs.sharedSecret);
    return this.acceptSessionV2(
      message,
      {
        ratchet,
        localCertificate: device.certificate,
        versions: { local: hs.versions.responder, remote: hs.versions.initiator },
        frankingTag: context.frankingTag,
      },
      prekeys,
      { allowIdentityChange: true },
    );
  }

  #find(match: (s: SessionState) => boolean): SessionState | null {
    const { current, previous } = this.#state;
    if (current && match(current)) return current;
    return previous.find(match) ?? null;
  }

  /**
   * Tries `only`, or the current session and then those archived sessions
   * that could plausibly hold the message: any that knows the header's
   * ratchet key (a receiving chain or a skipped key: cheap to try), and the
   * MAX_ARCHIVED_RATCHET_TRIALS most recent ones otherwise (which need a DH
   * ratchet step to try: that is where a peer answers after simultaneous
   * initiation). A forged message so costs a bounded number of DH steps,
   * not one per archived session.
   */
  #decryptOnExisting(message: RatchetMessage, only: SessionStateV1 | null): DecryptResult {
    const { current, previous } = this.#state;
    // A v1 message is tried on v1 sessions only (the version of a session never changes).
    const first = only ?? (current?.version === 1 ? current : null);
    let firstError: unknown = null;
    if (first) {
      try {
        return this.#commitOn(first, message);
      } catch (e) {
        if (!(e instanceof ParleyError)) throw e;
        firstError = e;
      }
      if (only) throw firstError;
    }
    // Archived sessions are examined only when the current one fails (the common case never looks at them).
    const archivedV1 = previous.filter((s): s is SessionStateV1 => s.version === 1);
    for (let i = 0; i < archivedV1.length; i++) {
      const session = archivedV1[i] as SessionStateV1;
      if (i >= MAX_ARCHIVED_RATCHET_TRIALS && !knowsRatchetKey(session, message.header.ratchetKey)) continue;
      try {
        return this.#commitOn(session, message);
      } catch (e) {
        if (!(e instanceof ParleyError)) throw e;
        firstError ??= e;
      }
    }
    if (firstError === null) fail('NO_SESSION', 'no session with this device holds this message');
    throw firstError;
  }

  /** Decrypts `message` on `session` and, on success, makes the result the record's state. */
  #commitOn(session: SessionStateV1, message: RatchetMessage): DecryptResult {
    const out = ratchetDecrypt(
      this.#provider,
      session.ratchet,
      message.header,
      message.headerBytes,
      message.ciphertext,
      session.associatedData,
    );
    const plaintext = unpad(out.plaintext);
    // The peer answered on this session, so it holds it: stop sending PreKeyMessages.
    const updated: SessionState = { ...session, ratchet: commitDecrypted(out), pendingPreKey: null };
    this.#state = session === this.#state.current ? { ...this.#state, current: updated } : promote(this.#state, session, updated);
    return {
      plaintext,
      sender: session.remoteCertificate,
      newSession: false,
      usedPreKeys: null,
      version: 1,
      frankingKey: null,
      attestation: null,
    };
  }

  /**
   * A v2 message (formats-v2 §4.6, across sessions 04 §6.3): header trial on
   * `only`, or on the current and then every archived v2 session, at most
   * MAX_HEADER_TRIALS_PER_SESSION opens each; the first session whose key
   * opens the header is the only one on which anything else runs.
   */
  #decryptV2(header: Uint8Array, ciphertext: Uint8Array, only: SessionState | null, frankingTag: Uint8Array | undefined): DecryptResult {
    if (!(frankingTag instanceof Uint8Array) || frankingTag.length !== 32) {
      fail('MALFORMED', 'a v2 message needs the 32-byte franking tag delivered beside it');
    }
    const { current, previous } = this.#state;
    const candidates = (only ? [only] : current ? [current, ...previous] : [...previous]).filter(
      (s): s is SessionStateV2 => s.version === 2,
    );
    if (candidates.length === 0) fail('NO_SESSION', 'no v2 session with this device');
    const b = this.#provider.backend;
    for (const session of candidates) {
      const opened = trialOpenHeader(b, ratchetOf(session), header, ciphertext);
      if (!opened) continue;
      const out = this.#decryptV2On(session, opened, { header, ciphertext }, frankingTag);
      const state = this.#state;
      this.#state = session === state.current ? { ...state, current: out.session } : promote(state, session, out.session);
      return out.result;
    }
    fail('HEADER_DECRYPT_FAILED', 'no header key of any session with this device opens the header', { sessions: candidates.length });
  }

  /** Steps 3-8 on one v2 session; returns the updated session without committing it. */
  #decryptV2On(
    session: SessionStateV2,
    opened: OpenedHeader,
    message: Pick<RatchetMessageV2, 'header' | 'ciphertext'>,
    frankingTag: Uint8Array,
  ): { session: SessionStateV2; result: DecryptResult } {
    const out = decryptOpened(
      this.#provider,
      ratchetOf(session),
      opened,
      {
        header: message.header,
        ciphertext: message.ciphertext,
        frankingTag,
        sender: { accountKey: session.remoteCertificate.accountKey, deviceId: session.remoteCertificate.deviceId },
      },
      { pq: PQ },
    );
    // The peer answered on this session, so it holds it: stop sending PreKeyMessages.
    return {
      session: { ...session, ratchet: out.state, pendingPreKey: null },
      result: {
        plaintext: out.plaintext,
        sender: session.remoteCertificate,
        newSession: false,
        usedPreKeys: null,
        version: 2,
        frankingKey: out.frankingKey,
        attestation: out.attestation,
      },
    };
  }

  serialize(): Uint8Array {
    const { current, previous } = this.#state;
    return encodeCbor([
      RECORD_TAG,
      SESSION_RECORD_VERSION,
      current ? storedSessionToCbor(current, PQ) : null,
      previous.map((s) => storedSessionToCbor(s, PQ)),
    ]);
  }

  /** Loads a record; anything malformed is BAD_RECORD (unknown versions UNSUPPORTED_VERSION), never a partial load. */
  static deserialize(bytes: Uint8Array, provider?: CryptoProvider): SessionRecord {
    const record = new SessionRecord(provider);
    try {
      const f = readVersionedArray(decodeCbor(bytes, 'SessionRecord', MAX_RECORD_BYTES), 'SessionRecord', READABLE_RECORD_VERSIONS, 4, {
        versionIndex: 1,
        tag: RECORD_TAG,
      });
      const read = (v: unknown) => storedSessionFromCbor(v, f[1] as number, PQ);
      const current = readOptional(f[2], read);
      const previous = readArray(f[3], 'previous', { min: 0, max: MAX_ARCHIVED_SESSIONS }).map(read);
      record.#state = { current, previous };
    } catch (e) {
      throw asRecordError(e, 'SessionRecord');
    }
    return record;
  }

  toString(): string {
    return redacted('SessionRecord', { hasSession: this.hasSession, archived: this.archivedCount });
  }
  toJSON(): string {
    return this.toString();
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

/** Sessions are per peer device: the same account and the same device id. */
/** The prekeys an initiator's unanswered session used, as every message it sends repeats them (PreKeyMessage fields 3..6). */
function pendingUse(baseKey: Uint8Array, pending: PendingPreKey): PreKeyUse {
  return {
    baseKey,
    signedPreKeyId: pending.signedPreKeyId,
    oneTimePreKeyId: pending.oneTimePreKeyId,
    kemPreKeyId: pending.kemPreKeyId,
  };
}

function samePeer(a: DeviceCertificate, b: DeviceCertificate): boolean {
  return a.deviceId === b.deviceId && bytesEqual(a.accountKey, b.accountKey);
}

function ratchetOf(s: SessionStateV2): RatchetV2 {
  return { associatedData: s.associatedData, state: s.ratchet };
}

function knowsRatchetKey(s: SessionStateV1, ratchetKey: Uint8Array): boolean {
  if (s.ratchet.receivingChains.some((c) => bytesEqual(c.ratchetKey, ratchetKey))) return true;
  if (s.ratchet.skipped.size === 0) return false;
  const prefix = `${toHex(ratchetKey)}:`;
  for (const id of s.ratchet.skipped.keys()) if (id.startsWith(prefix)) return true;
  return false;
}

/**
 * Makes `session` current and archives the old current session. Archived
 * sessions of another peer (left from before an allowed identity change) are
 * dropped, so a late message on one of them cannot switch the record back.
 */
function withCurrent(state: RecordState, session: SessionState): RecordState {
  const previous = (state.current ? [state.current, ...state.previous] : [...state.previous]).filter((s) =>
    samePeer(s.remoteCertificate, session.remoteCertificate),
  );
  return { current: session, previous: previous.slice(0, MAX_ARCHIVED_SESSIONS) };
}

function promote(state: RecordState, old: SessionState, updated: SessionState): RecordState {
  const rest = state.previous.filter((s) => s !== old);
  const previous = state.current ? [state.current, ...rest] : rest;
  return { current: updated, previous: previous.slice(0, MAX_ARCHIVED_SESSIONS) };
}
