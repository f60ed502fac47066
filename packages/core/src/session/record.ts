/**
 * SessionRecord: every session this device has with one peer device, the
 * current one and up to MAX_ARCHIVED_SESSIONS older ones.
 * spec/04-double-ratchet.md §6 (sessions), spec/03-handshake.md §3-§6
 * (initiator and responder steps, simultaneous initiation, identity changes).
 *
 * `encrypt` and `decrypt` are transactions: they compute a whole new record
 * from the old one (the ratchet transitions are pure) and swap it in only on
 * success, so any failure leaves the record exactly as it was, byte for byte.
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
import {
  type Message,
  type RatchetMessage,
  decodeMessage,
  encodePreKeyMessage,
  encodeRatchetMessage,
  preKeyFieldsBytes,
} from './messages.ts';
import { type SessionState, sessionFromCbor, sessionToCbor } from './state.ts';

const RECORD_TAG = 'parley/session-record';

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
}

export interface DecryptResult {
  readonly plaintext: Uint8Array;
  /** The sender device's certificate (already verified). */
  readonly sender: DeviceCertificate;
  /** True when this message created a new session (a PreKeyMessage accepted). */
  readonly newSession: boolean;
  /** The prekeys a new session used (the one-time ones are now deleted from the store). */
  readonly usedPreKeys: PreKeyUse | null;
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
    if (hs.version !== 1) {
      // The v2 ratchet (ratchet/v2/) is not wired into records yet: never start a session it would have to run.
      wipe(hs.sharedSecret);
      fail('UNSUPPORTED_VERSION', 'version-2 sessions are not available in this build; offer localVersions [1]');
    }
    const ratchet = initInitiator(p, hs.sharedSecret, hs.bundle.signedPreKey.publicKey, generateDhKeyPair(p));
    wipe(hs.sharedSecret);
    const session: SessionState = {
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

  /** Encrypts with the current session. Throws NO_SESSION without one. */
  encrypt(plaintext: Uint8Array): Uint8Array {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('"plaintext" expected Uint8Array');
    if (plaintext.length > MAX_PLAINTEXT_BYTES) throw new RangeError(`"plaintext" exceeds ${MAX_PLAINTEXT_BYTES} bytes`);
    const current = this.#state.current;
    if (!current) fail('NO_SESSION', 'no session with this device');
    const out = ratchetEncrypt(this.#provider, current.ratchet, pad(plaintext), current.associatedData);
    const inner = encodeRatchetMessage(out.headerBytes, out.ciphertext);
    const pending = current.pendingPreKey;
    const message = pending
      ? encodePreKeyMessage(
          pending.localCertificate,
          {
            baseKey: current.baseKey,
            signedPreKeyId: pending.signedPreKeyId,
            oneTimePreKeyId: pending.oneTimePreKeyId,
            kemPreKeyId: pending.kemPreKeyId,
          },
          pending.kemCiphertext,
          inner,
        )
      : inner;
    this.#state = { ...this.#state, current: { ...current, ratchet: out.state } };
    return message;
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

    const p = this.#provider;
    const preKeyDigest = p.backend.sha256(preKeyFieldsBytes(message));
    const existing = this.#find((s) => bytesEqual(s.baseKey, message.use.baseKey));
    if (existing) {
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
    return { plaintext, sender, newSession: true, usedPreKeys: message.use };
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
  #decryptOnExisting(message: RatchetMessage, only: SessionState | null): DecryptResult {
    const { current, previous } = this.#state;
    const first = only ?? current;
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
    for (let i = 0; i < previous.length; i++) {
      const session = previous[i] as SessionState;
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
  #commitOn(session: SessionState, message: RatchetMessage): DecryptResult {
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
    return { plaintext, sender: session.remoteCertificate, newSession: false, usedPreKeys: null };
  }

  serialize(): Uint8Array {
    const { current, previous } = this.#state;
    return encodeCbor([RECORD_TAG, PROTOCOL_VERSION, current ? sessionToCbor(current) : null, previous.map(sessionToCbor)]);
  }

  /** Loads a record; anything malformed is BAD_RECORD (unknown versions UNSUPPORTED_VERSION), never a partial load. */
  static deserialize(bytes: Uint8Array, provider?: CryptoProvider): SessionRecord {
    const record = new SessionRecord(provider);
    try {
      const f = readVersionedArray(decodeCbor(bytes, 'SessionRecord', MAX_RECORD_BYTES), 'SessionRecord', [PROTOCOL_VERSION], 4, {
        versionIndex: 1,
        tag: RECORD_TAG,
      });
      const current = readOptional(f[2], sessionFromCbor);
      const previous = readArray(f[3], 'previous', { min: 0, max: MAX_ARCHIVED_SESSIONS }).map(sessionFromCbor);
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
function samePeer(a: DeviceCertificate, b: DeviceCertificate): boolean {
  return a.deviceId === b.deviceId && bytesEqual(a.accountKey, b.accountKey);
}

function knowsRatchetKey(s: SessionState, ratchetKey: Uint8Array): boolean {
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
