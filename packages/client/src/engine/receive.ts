/**
 * Processing one envelope from the relay. spec/10-client.md §4.2.
 *
 * The order is what makes delivery exactly-once: (1) an envelope already
 * handled is only acknowledged again; (2) decryption, the session update,
 * the prekey store, the stored message and the deduplication records commit
 * in one transaction; (3) only then does the caller acknowledge, so the
 * relay deletes nothing the store does not hold. A failure that a fresh
 * session can cure queues a retry request (retry.ts) in the same transaction
 * that marks the envelope handled.
 *
 * The ack policy (spec §4.2.2): only a failure of this device's store leaves
 * an envelope unacknowledged, and only MAX_LOCAL_ATTEMPTS times before it is
 * parked as a dead letter. Whatever else fails (a typed error or an untyped
 * one: a peer's input reached a bug) is recorded, reported and acknowledged,
 * so no sender can hold the envelopes behind its own. The origin is decided
 * at the store boundary (store-origin.ts), not by listing inputs.
 */
import {
  type CryptoProvider,
  type DeviceCertificate,
  MessageType,
  ParleyError,
  type PreparedCurves,
  PreKeyStore,
  bytesEqual,
  groupLimits,
  peekGroupMessage,
  prepareAsyncCurves,
} from '@parley/core';
import { type Content, decodeContent } from '../content/content.ts';
import { ClientError, isClientError } from '../errors.ts';
import { type DeviceAddress, accountId } from '../state/ids.ts';
import { pinOfTrustedDevice } from '../devices/version-pins.ts';
import { loadDevices } from '../state/devices.ts';
import type { IncomingEnvelope } from '../relay-link/link.ts';
import { envelopeSeen, markEnvelope } from '../state/dedup.ts';
import { loadGroup, saveGroup } from '../state/groups.ts';
import { savePreKeys } from '../state/identity.ts';
import { loadSession, saveSession } from '../state/sessions.ts';
import { applyContent } from './apply.ts';
import { type Context, Pending } from './context.ts';
import { countLocalFailure, deadLetterId, MAX_LOCAL_ATTEMPTS, parkEnvelope } from './dead-letters.ts';
import { acceptSignedList, trustSender, trustedCertificate } from './directory.ts';
import { spendFirstContact, startsHandshake } from './first-contact.ts';
import { RETRY_CODES, freshSessionMayCure, requestRetry } from './retry.ts';
import { LocalStoreFailure, taggingStoreFailures } from './store-origin.ts';
import { type Unsealed, checkSealedSender, isSealed, unseal } from '../sealed/receive.ts';
import { noteUpgrade } from './upgrade.ts';

export interface ReceiveOutcome {
  /** A new session used our prekeys: upkeep should check the relay's counts. */
  readonly usedPreKeys: boolean;
}

/** Longest client id the receive path keys records by; the relay's own are far shorter. */
const MAX_ENVELOPE_CLIENT_ID_CHARS = 256;

/**
 * Handles one envelope; when it returns, the envelope may be acknowledged.
 * Throws only a LocalStoreFailure (this device's store failed, fewer than
 * MAX_LOCAL_ATTEMPTS times for this envelope, or `park` is false): then the
 * envelope must not be acknowledged, and the relay delivers it again.
 */
export async function receiveEnvelope(ctx: Context, env: IncomingEnvelope, options: { park?: boolean } = {}): Promise<ReceiveOutcome> {
  const local: Context = { ...ctx, store: taggingStoreFailures(ctx.store) };
  const prepared = ctx.curves ? await prepareCurves(local, env) : null;
  try {
    return receiveChecked(local, env, prepared?.provider ?? local.provider);
  } catch (e) {
    // receiveChecked lets nothing but the store's own failures escape.
    const failure = e instanceof LocalStoreFailure ? e : new LocalStoreFailure(e);
    // A dead letter being retried by the app is not counted again: it is already parked.
    if (options.park !== false && parkIfExhausted(ctx, env, failure)) return { usedPreKeys: false };
    throw failure;
  } finally {
    prepared?.wipe();
  }
}

/** Thrown to roll back the speculative transaction of `prepareCurves`. */
const SPECULATIVE = Symbol('speculative receive');

/**
 * With asynchronous curves (WebCrypto), computes this envelope's curve
 * operations before the synchronous transaction: the transaction's own body
 * runs speculatively in a transaction that is always rolled back (so the
 * store, the events and the dedup record are untouched, and the operations
 * are asked for in exactly the order the real run asks), and the real run
 * then finds every answer ready (spec 01 §4.2.1). Preparing is only a speed-up:
 * on any failure (and for PreKeyMessages) the receive runs on the synchronous provider.
 */
async function prepareCurves(ctx: Context, env: IncomingEnvelope): Promise<PreparedCurves | null> {
  if (!ctx.curves || !validClientId(env.clientId)) return null;
  const type = messageTypeOf(env.envelope);
  // A PreKeyMessage needs about ten curve operations, so ten replayed runs of the whole handshake:
  // in Chromium that cost more than noble saves (bench/results/browser.md, "setup, stored records").
  // Sessions start rarely; the ratchet steps and group messages that follow are where the curves win.
  if (type === MessageType.preKey) return null;
  try {
    return await prepareAsyncCurves(
      ctx.curves,
      (provider) =>
        ctx.store.transaction(() => {
          const body: Context = { ...ctx, provider };
          if (type === MessageType.group) receiveGroup(body, env, new Pending());
          else receiveDirect(body, env, new Pending());
          throw SPECULATIVE;
        }),
      { base: ctx.provider },
    );
  } catch {
    return null;
  }
}

function receiveChecked(ctx: Context, delivered: IncomingEnvelope, bodyProvider: CryptoProvider): ReceiveOutcome {
  // A client id we cannot key a record by is the relay's fault; refused without a dedup record.
  const keyable = validClientId(delivered.clientId);
  if (keyable && envelopeSeen(ctx.store, delivered.sender, delivered.clientId)) return { usedPreKeys: false };
  let env = delivered;
  let unsealed: Unsealed | null = null;
  const attempt = new Pending();
  try {
    if (!keyable) throw new ClientError('RELAY_MISBEHAVED', 'the relay delivered an envelope with an unusable client id');
    // A sealed envelope is opened first (spec/12 §4.3); what it holds takes the normal path from its sender's device.
    if (isSealed(delivered)) {
      unsealed = unseal(ctx, delivered);
      if (unsealed.echo) {
        // Our own seal to ourselves (spec/12 §13): nothing to read.
        ctx.store.transaction(() => markEnvelope(ctx.store, delivered.sender, delivered.clientId, ctx.clock()));
        return { usedPreKeys: false };
      }
      env = unsealed.envelope;
      if (envelopeSeen(ctx.store, env.sender, env.clientId)) {
        ctx.store.transaction(() => markEnvelope(ctx.store, delivered.sender, delivered.clientId, ctx.clock()));
        return { usedPreKeys: false };
      }
    }
    const type = messageTypeOf(env.envelope);
    // A device the account's signed list leaves out is refused before any decryption. A PreKeyMessage
    // is the exception: it may carry a newer list that names its sender (a just-linked device).
    if (type !== MessageType.preKey && !listedSender(ctx, env.sender)) throw untrustedAddress(env.sender);
    // A handshake is paid for before it runs, so one that fails still counts (first-contact.ts).
    if (type === MessageType.preKey && startsHandshake(ctx.store, ctx.provider, env.sender, env.envelope)) {
      spendFirstContact(ctx.store, env.sender, ctx.clock());
    }
    // The transaction body alone runs on the prepared provider, so that its curve calls line up with the preparation.
    const body: Context = bodyProvider === ctx.provider ? ctx : { ...ctx, provider: bodyProvider };
    const usedPreKeys = ctx.store.transaction(() => {
      const used = type === MessageType.group ? receiveGroup(body, env, attempt) : receiveDirect(body, env, attempt, unsealed !== null);
      // The seal's sender key must be the decrypting session's peer; otherwise the whole step rolls back.
      if (unsealed) checkSealedSender(unsealed, sealedPeer(ctx, env, type));
      markEnvelope(ctx.store, env.sender, env.clientId, ctx.clock());
      if (unsealed) markEnvelope(ctx.store, delivered.sender, delivered.clientId, ctx.clock());
      return used;
    });
    attempt.flush(ctx.events);
    return { usedPreKeys };
  } catch (e) {
    if (e instanceof LocalStoreFailure) throw e;
    recordFailureSafely(ctx, env, typedFailure(e), keyable);
    return { usedPreKeys: false };
  }
}

/** The certificate the inner message was authenticated under: the session's peer (1:1), or the trusted device (group). */
function sealedPeer(ctx: Context, env: IncomingEnvelope, type: number): DeviceCertificate | null {
  if (type === MessageType.group) return trustedCertificate(ctx, env.sender.accountKey, env.sender.deviceId);
  return loadSession(ctx.store, env.sender, ctx.provider).record.remoteCertificate;
}

/**
 * Records a refused envelope. Should recording itself fail on the input (a
 * bug: say, in the retry bookkeeping), the bare minimum is recorded instead,
 * so that failure cannot hold the envelope either.
 */
function recordFailureSafely(ctx: Context, env: IncomingEnvelope, error: ParleyError | ClientError, keyable: boolean): void {
  const failed = new Pending();
  try {
    ctx.store.transaction(() => recordFailure(ctx, env, error, failed, keyable));
  } catch (e) {
    if (e instanceof LocalStoreFailure) throw e;
    const bare = new Pending();
    ctx.store.transaction(() => {
      if (keyable) markEnvelope(ctx.store, env.sender, env.clientId, ctx.clock());
      bare.add('undecryptable', {
        sender: { account: accountId(env.sender.accountKey), deviceId: env.sender.deviceId },
        clientId: keyable ? env.clientId : '',
        code: 'INTERNAL',
        retryRequested: false,
      });
    });
    bare.flush(ctx.events);
    return;
  }
  failed.flush(ctx.events);
}

/** A peer-caused failure as the coded error it is reported as: untyped ones become INTERNAL (never their message). */
function typedFailure(e: unknown): ParleyError | ClientError {
  if (e instanceof ParleyError || e instanceof ClientError) return e;
  return new ClientError('INTERNAL', 'an envelope made the receive path fail without a code', {
    error: e instanceof Error ? e.name : typeof e,
  });
}

function validClientId(clientId: unknown): clientId is string {
  return (
    typeof clientId === 'string' &&
    clientId.length > 0 &&
    clientId.length <= MAX_ENVELOPE_CLIENT_ID_CHARS &&
    /^[\x21-\x7e]*$/.test(clientId)
  );
}

/**
 * Counts a local failure of `env` and parks it once it has failed
 * MAX_LOCAL_ATTEMPTS times. Returns true when parked (acknowledge it). When
 * the store cannot even count, the envelope stays on the relay (nothing is
 * lost; the relay's TTL bounds how long).
 */
function parkIfExhausted(ctx: Context, env: IncomingEnvelope, failure: LocalStoreFailure): boolean {
  const id = deadLetterId(ctx.provider, env.sender, String(env.clientId));
  const now = ctx.clock();
  let parked: { attempts: number } | null = null;
  try {
    parked = ctx.store.transaction(() => {
      const attempts = countLocalFailure(ctx.store, id, now);
      if (attempts < MAX_LOCAL_ATTEMPTS) return null;
      // Not marked handled: `retryDeadLetter` runs it through this path again.
      parkEnvelope(ctx.store, id, env, failure.code, attempts, now);
      return { attempts };
    });
  } catch {
    return false;
  }
  if (!parked) return false;
  ctx.events.emit('dead-letter', {
    id,
    sender: { account: accountId(env.sender.accountKey), deviceId: env.sender.deviceId },
    clientId: String(env.clientId),
    code: failure.code,
    attempts: parked.attempts,
  });
  return true;
}

/** The type byte of a core message: [version, type, ...] with a one-byte array header. Full decoding checks it all. */
function messageTypeOf(bytes: Uint8Array): number {
  return bytes.length >= 3 && (bytes[0] as number) >= 0x82 && (bytes[0] as number) <= 0x97 ? (bytes[2] as number) : -1;
}

/** The version byte of a core message (same layout); full decoding checks it. */
function messageVersionOf(bytes: Uint8Array): number {
  return bytes.length >= 3 && (bytes[0] as number) >= 0x82 && (bytes[0] as number) <= 0x97 ? (bytes[1] as number) : -1;
}

/**
 * The franking tag a v2 message must come with: the one in the relay's
 * delivery record (the relay franked exactly that tag). A v2 message without
 * one (the relay dropped it, or sent a record without the form of one) is
 * refused before any decryption: it could never be reported, and a message
 * shown unreportable is what a relay hiding abuse would want.
 */
function deliveredTag(env: IncomingEnvelope): Uint8Array {
  if (env.delivery) return env.delivery.frankingTag;
  throw new ParleyError('FRANKING_TAG_MISMATCH', 'a version-2 message came without its franking tag', {
    reason: env.deliveryError ? 'malformed-record' : 'missing',
  });
}

function receiveDirect(ctx: Context, env: IncomingEnvelope, pending: Pending, sealed = false): boolean {
  const peer = env.sender;
  // A v2 message's tag is part of its authenticated data: a tag the relay changed fails decryption (DECRYPT_FAILED).
  const frankingTag = messageVersionOf(env.envelope) === 2 ? deliveredTag(env) : undefined;
  const { record, corrupted } = loadSession(ctx.store, peer, ctx.provider);
  const before = record.sessionVersion;
  if (corrupted) pending.add('warning', { code: 'BAD_RECORD', message: 'a stored session did not load; it will be rebuilt' });
  const prekeyBytes = messageTypeOf(env.envelope) === MessageType.preKey ? ctx.store.get('identity', 'prekeys') : undefined;
  const prekeys = prekeyBytes ? PreKeyStore.deserialize(prekeyBytes, ctx.device, ctx.provider) : undefined;
  // A first message from a device pinned at a higher version than it offers is a downgrade (devices/version-pins.ts).
  const minVersion = prekeys
    ? pinOfTrustedDevice(loadDevices(ctx.store, peer.accountKey, ctx.provider), peer.deviceId, ctx.provider)
    : undefined;
  const result = record.decrypt(env.envelope, {
    device: ctx.device,
    prekeys,
    expectedAccountKey: peer.accountKey,
    ...(minVersion !== undefined ? { minVersion } : {}),
    localVersions: ctx.options.sessionVersions,
    ...(frankingTag ? { frankingTag } : {}),
  });
  if (result.sender.deviceId !== peer.deviceId || !bytesEqual(result.sender.accountKey, peer.accountKey)) {
    throw new ClientError('RELAY_MISBEHAVED', 'the envelope was sent by another device than the relay says', { deviceId: peer.deviceId });
  }
  let content: Content | null = null;
  try {
    content = decodeContent(result.plaintext);
  } catch (e) {
    pending.add('warning', {
      code: (e as ParleyError).code ?? 'MALFORMED',
      message: 'a decrypted message has content this client cannot read',
    });
  }
  if (content?.deviceList) {
    try {
      acceptSignedList(ctx, peer.accountKey, content.deviceList, pending);
    } catch (e) {
      pending.add('warning', { code: (e as ParleyError).code ?? 'BAD_DEVICE_LIST', message: 'a device list in a message did not verify' });
    }
  }
  if (!trustSender(ctx, result.sender, pending)) throw untrusted(result.sender);
  saveSession(ctx.store, peer, record);
  if (result.newSession && prekeys) savePreKeys(ctx.store, prekeys);
  // The peer moved our v1 session to v2 (engine/upgrade.ts): the v1 one is archived in the record.
  if (result.newSession) noteUpgrade(pending, peer, before, record.sessionVersion);
  const franking =
    result.version === 2 && result.frankingKey && env.delivery
      ? { delivery: env.delivery, frankingKey: result.frankingKey, plaintext: result.plaintext, attestation: result.attestation, sealed }
      : null;
  if (content) applyContent(ctx, { sender: result.sender, content, via: 'direct', franking }, pending);
  return result.newSession;
}

function receiveGroup(ctx: Context, env: IncomingEnvelope, pending: Pending): boolean {
  const header = peekGroupMessage(env.envelope);
  const sender = env.sender;
  if (header.sender.deviceId !== sender.deviceId || !bytesEqual(header.sender.accountKey, sender.accountKey)) {
    throw new ClientError('RELAY_MISBEHAVED', 'the group message names another sender than the relay says', { deviceId: sender.deviceId });
  }
  const group = loadGroup(ctx.store, header.groupId, ctx.provider);
  if (!group) throw new ParleyError('UNKNOWN_GROUP', 'a group message for a group we do not hold');
  if (!group.members.some((m) => bytesEqual(m, sender.accountKey)))
    throw new ParleyError('UNKNOWN_SENDER', 'a group message from a non-member account');
  const certificate = trustedCertificate(ctx, sender.accountKey, sender.deviceId);
  if (!certificate)
    throw new ParleyError('UNKNOWN_SENDER', 'a group message from a device we do not know yet', { deviceId: sender.deviceId });
  const member = { accountKey: sender.accountKey, deviceId: sender.deviceId };
  if (!group.session.isMember(member)) {
    if (group.session.members.length >= groupLimits.MAX_GROUP_MEMBER_DEVICES) {
      throw new ClientError('LIMIT_EXCEEDED', 'a group message from a new device of a group that is full', {
        limit: groupLimits.MAX_GROUP_MEMBER_DEVICES,
      });
    }
    group.session.changeMembers({ add: [member] });
  }
  // A v2 group message's tag is signed in its header; core also holds it to the one the relay franked.
  const frankingTag = messageVersionOf(env.envelope) === 2 ? deliveredTag(env) : undefined;
  const opened = group.session.decrypt(env.envelope, frankingTag ? { frankingTag } : {});
  saveGroup(ctx.store, group);
  let content: Content;
  try {
    content = decodeContent(opened.plaintext);
  } catch (e) {
    pending.add('warning', {
      code: (e as ParleyError).code ?? 'MALFORMED',
      message: 'a group message has content this client cannot read',
    });
    return false;
  }
  if (!content.group || !bytesEqual(content.group, header.groupId)) {
    pending.add('warning', { code: 'MALFORMED', message: 'a group message whose content names another group' });
    return false;
  }
  const franking =
    opened.franking && env.delivery
      ? {
          delivery: env.delivery,
          frankingKey: opened.franking.key,
          plaintext: opened.plaintext,
          attestation: opened.franking.attestation,
          sealed: false,
        }
      : null;
  applyContent(ctx, { sender: certificate, content, via: 'group', franking }, pending);
  return false;
}

function untrusted(c: DeviceCertificate): ClientError {
  return untrustedAddress({ accountKey: c.accountKey, deviceId: c.deviceId });
}

function untrustedAddress(a: DeviceAddress): ClientError {
  return new ClientError('UNTRUSTED_DEVICE', 'a message from a device its account does not list', {
    account: accountId(a.accountKey),
    deviceId: a.deviceId,
  });
}

/** False when we hold the sender account's signed device list and it does not name this device id. */
function listedSender(ctx: Context, sender: DeviceAddress): boolean {
  const list = loadDevices(ctx.store, sender.accountKey, ctx.provider).list;
  return list === null || list.devices.has(sender.deviceId);
}

/**
 * A v2 RatchetMessage whose header opened but whose body did not (DECRYPT_FAILED after the header
 * trial): the header keys agree, so the session is in step and a fresh one cures nothing. What fails
 * there is what the relay can change (the ciphertext, or the franking tag, which is the body's
 * associated data): the re-send goes on the current session, and no working session is replaced.
 */
function v2BodyFailure(env: IncomingEnvelope, error: ParleyError | ClientError): boolean {
  return error.code === 'DECRYPT_FAILED' && messageVersionOf(env.envelope) === 2 && messageTypeOf(env.envelope) === MessageType.ratchet;
}

/** Marks a failed envelope handled and, when a fresh session can cure it, asks its sender to re-send. */
function recordFailure(ctx: Context, env: IncomingEnvelope, error: ParleyError | ClientError, pending: Pending, keyable: boolean): void {
  if (keyable) markEnvelope(ctx.store, env.sender, env.clientId, ctx.clock());
  const sender = { account: accountId(env.sender.accountKey), deviceId: env.sender.deviceId };
  const clientId = keyable ? env.clientId : '';
  // A device outside the account's list gets no retry request (it would not be encrypted to anyway).
  if (isClientError(error, 'UNTRUSTED_DEVICE') || !listedSender(ctx, env.sender)) {
    pending.add('untrusted-device', { account: sender.account, deviceId: sender.deviceId, reason: 'not-in-device-list' });
    return;
  }
  if (error instanceof ParleyError && error.code === 'DOWNGRADE_REFUSED') {
    // Not retried (a retry request would invite the same downgrade): parked for the app, and reported.
    const { version, minVersion } = error.details as { version: number; minVersion: number };
    pending.add('downgrade-refused', { account: sender.account, deviceId: sender.deviceId, version, minVersion });
    if (keyable) {
      const id = deadLetterId(ctx.provider, env.sender, env.clientId);
      parkEnvelope(ctx.store, id, env, error.code, 1, ctx.clock());
      pending.add('dead-letter', { id, sender, clientId, code: error.code, attempts: 1 });
    }
  }
  let retryRequested = false;
  if (keyable && RETRY_CODES.has(error.code)) {
    // A group failure needs no new one-to-one session, only the content again.
    const direct = messageTypeOf(env.envelope) !== MessageType.group;
    retryRequested = requestRetry(
      ctx,
      env.sender,
      env.clientId,
      direct && freshSessionMayCure(error.code) && !v2BodyFailure(env, error),
      pending,
    );
  }
  pending.add('undecryptable', { sender, clientId, code: error.code, retryRequested });
}
