/**
 * Flushing one outbox entry: find the recipients' trusted devices, start
 * sessions where needed, encrypt, send, and follow the relay's corrections.
 * spec/10-client.md §4.1.
 *
 * Every step that changes state is a transaction; the envelopes it produces
 * are saved in the entry before the network is touched, so a retry sends
 * the very same bytes under the same client ids (the relay stores them once).
 * The relay answers a send that does not cover an account's devices exactly
 * with the missing and extra devices; we fetch the list again, judge it,
 * encrypt for the newcomers, drop the envelopes of the departed, and retry.
 *
 * A "stale devices" answer (a device re-registered with a new certificate)
 * is the relay's word only: it is checked against the account's signed
 * list before anything changes. If the newest list still names the
 * certificate we encrypted for, the claim is refused (RELAY_MISBEHAVED) and
 * the session and envelope stay as they are; if the list names a new
 * certificate, the envelope is re-encrypted on a new session and the old
 * session is archived in its record, never deleted (issue 11 finding 5).
 */
import { type DeviceCertificate, SessionRecord, bytesEqual, certificatesEqual } from '@parley/core';
import { decodeContent, encodeContent } from '../content/content.ts';
import { certificateHash } from '../devices/device-list.ts';
import { ClientError, isClientError } from '../errors.ts';
import { type DeviceAddress, accountId, clientIdFor, deviceKey, messageIdText } from '../state/ids.ts';
import type { OutgoingEnvelope } from '../relay-link/link.ts';
import { loadDevices } from '../state/devices.ts';
import { MessageStatus, raiseStatus } from '../state/history.ts';
import { type OutboxEntry, dequeue, getQueued, updateQueued } from '../state/outbox.ts';
import { isRetired } from '../state/restore.ts';
import { getSent, putSent, sameDevice } from '../state/sent-log.ts';
import { loadSession, saveSession } from '../state/sessions.ts';
import { fetchBundles } from './bundles.ts';
import { type Context, Pending } from './context.ts';
import { devicesFor, refreshDevices } from './directory.ts';
import { sendEnvelopes } from '../sealed/send.ts';
import { signedVersion } from '../devices/version-pins.ts';
import { markProbed, noteUpgrade, upgradeDue } from './upgrade.ts';

/** Rounds of "the relay says the device list changed" before giving up for now. */
const MAX_ROUNDS = 4;

export type FlushResult =
  | { readonly status: 'sent' }
  /** The entry is no longer queued. */
  | { readonly status: 'gone' }
  /** An account lists devices we refuse: the entry waits (spec §5). */
  | { readonly status: 'blocked'; readonly error: ClientError }
  /** The relay could not be reached (or kept changing its answer): retry later. */
  | { readonly status: 'unavailable'; readonly error: ClientError }
  /** A permanent refusal: the entry was dropped. */
  | { readonly status: 'failed'; readonly error: Error };

interface Target {
  readonly accountKey: Uint8Array;
  readonly devices: readonly DeviceCertificate[];
}

const addressOf = (c: DeviceCertificate): DeviceAddress => ({ accountKey: c.accountKey, deviceId: c.deviceId });

export async function flushEntry(ctx: Context, key: string): Promise<FlushResult> {
  const pending = new Pending();
  const refresh = new Set<string>();
  /** Devices the relay called stale in the last round -> the certificate hash we had encrypted for. */
  const staleClaims = new Map<string, { address: DeviceAddress; hash: Uint8Array | undefined }>();
  try {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = getQueued(ctx.store, key);
      if (!entry) return { status: 'gone' };

      // 1. Whom to cover: every trusted device of every account (a refused one blocks the entry).
      const targets: Target[] = [];
      for (const accountKey of entry.accounts) {
        let known = await devicesFor(ctx, accountKey, pending, refresh.has(accountId(accountKey)));
        // A refusal may be out of date (the ghost removed, or the list that names a new device arrived): ask again once.
        if (known.refused.length && !refresh.has(accountId(accountKey))) known = await refreshDevices(ctx, accountKey, pending);
        const refused = known.refused[0];
        if (refused) {
          return {
            status: 'blocked',
            error: new ClientError('UNTRUSTED_DEVICE', 'the relay lists a device this account did not certify; the message waits', {
              account: accountId(accountKey),
              deviceId: refused.deviceId,
              reason: refused.reason,
              messageId: messageIdText(entry.messageId),
            }),
          };
        }
        targets.push({ accountKey, devices: known.trusted });
      }
      refresh.clear();

      // A stale claim stands only if the account's newest signed list moved the device to another certificate.
      const refuted = refutedStaleClaims(ctx, targets, staleClaims);
      staleClaims.clear();
      if (refuted) {
        pending.add('warning', {
          code: 'RELAY_MISBEHAVED',
          message: `the relay called a device stale that its account's signed list still names (${accountId(refuted.accountKey)} device ${refuted.deviceId})`,
        });
        return {
          status: 'blocked',
          error: new ClientError('RELAY_MISBEHAVED', 'the relay says a device was re-registered, but its signed device list disagrees', {
            account: accountId(refuted.accountKey),
            deviceId: refuted.deviceId,
            messageId: messageIdText(entry.messageId),
          }),
        };
      }

      // 2. Sessions to start (only for one-to-one payloads).
      const bundlesByAccount = new Map<string, Awaited<ReturnType<typeof fetchBundles>>>();
      if (!entry.groupMessage) {
        for (const t of targets) {
          // A new session, or a v1 session to move to v2 (engine/upgrade.ts).
          const need = t.devices.filter((c) => !hasEnvelope(entry, c) && needsBundle(ctx, entry, c));
          if (need.length === 0) continue;
          const fetched = await fetchBundles(ctx, t.accountKey, need);
          if (fetched.mismatched.length) refresh.add(accountId(t.accountKey));
          bundlesByAccount.set(accountId(t.accountKey), fetched);
        }
        if (refresh.size) continue;
      }

      // 3. Encrypt for every device still without an envelope; commit sessions and envelopes together.
      const envelopes = ctx.store.transaction(() => encryptMissing(ctx, key, targets, bundlesByAccount, pending));
      if (envelopes.length === 0) {
        ctx.store.transaction(() => finish(ctx, key, entry, []));
        return { status: 'sent' };
      }

      // 4. Send; the relay checks coverage and certificate hashes.
      // Sealed when every recipient account granted us a token (spec/12 §6), identified otherwise.
      const outcome = await sendEnvelopes(ctx, entry.accounts, envelopes, entry.ttlSeconds ? { ttlSeconds: entry.ttlSeconds } : undefined);
      if (outcome.status === 'stored') {
        ctx.store.transaction(() => finish(ctx, key, entry, envelopes));
        pending.add('sent', { messageId: messageIdText(entry.messageId), conversation: entry.conversation });
        return { status: 'sent' };
      }
      ctx.store.transaction(() => {
        const current = getQueued(ctx.store, key);
        if (!current) return;
        const drop = new Set<string>();
        if (outcome.status === 'mismatched-devices') {
          for (const m of outcome.mismatches) {
            refresh.add(accountId(m.accountKey));
            for (const d of m.extraDevices) drop.add(deviceKey({ accountKey: m.accountKey, deviceId: d }));
          }
        } else {
          // Nothing is dropped or deleted on the relay's word: the next round checks the claim (see above).
          for (const s of outcome.stale) {
            refresh.add(accountId(s.accountKey));
            for (const d of s.staleDevices) {
              const address = { accountKey: s.accountKey, deviceId: d };
              const sent = current.envelopes.find((e) => deviceKey(e.recipient) === deviceKey(address));
              staleClaims.set(deviceKey(address), { address, hash: sent?.certificateHash });
            }
          }
        }
        updateQueued(ctx.store, key, { ...current, envelopes: current.envelopes.filter((e) => !drop.has(deviceKey(e.recipient))) });
      });
    }
    return { status: 'unavailable', error: new ClientError('RELAY_UNAVAILABLE', 'the device lists kept changing during the send') };
  } catch (e) {
    if (isClientError(e, 'RELAY_UNAVAILABLE')) return { status: 'unavailable', error: e };
    ctx.store.transaction(() => dequeue(ctx.store, key));
    return { status: 'failed', error: e as Error };
  } finally {
    pending.flush(ctx.events);
  }
}

/**
 * The first stale claim that the trusted set (judged against the newest
 * signed list, just fetched again) contradicts: the device is still trusted
 * with the very certificate we encrypted for. Null when every claim holds.
 */
function refutedStaleClaims(
  ctx: Context,
  targets: readonly Target[],
  claims: ReadonlyMap<string, { address: DeviceAddress; hash: Uint8Array | undefined }>,
): DeviceAddress | null {
  for (const { address, hash } of claims.values()) {
    const target = targets.find((t) => bytesEqual(t.accountKey, address.accountKey));
    const trusted = target?.devices.find((c) => c.deviceId === address.deviceId);
    if (trusted && hash && bytesEqual(certificateHash(trusted, ctx.provider), hash)) return address;
  }
  return null;
}

function hasEnvelope(entry: OutboxEntry, c: DeviceCertificate): boolean {
  return entry.envelopes.some((e) => e.recipient.deviceId === c.deviceId && bytesEqual(e.recipient.accountKey, c.accountKey));
}

/**
 * A device needs a new session when we hold none with its current
 * certificate, or when the entry asks for a fresh one (a retry request) and
 * the current one is not already a fresh session of ours still awaiting its
 * first reply (reusing that one heals as well and spends no prekey).
 */
function needsNewSession(
  ctx: Context,
  entry: OutboxEntry,
  c: DeviceCertificate,
  record = loadSession(ctx.store, addressOf(c), ctx.provider).record,
): boolean {
  const peer = record.remoteCertificate;
  if (!record.hasSession || !peer || !certificatesEqual(peer, c)) return true;
  // A session retired after a store restore never encrypts again (spec §7.5).
  if (isRetired(ctx.store, addressOf(c), record.sessionId)) return true;
  const fresh = entry.freshSession;
  if (fresh && fresh.deviceId === c.deviceId && bytesEqual(fresh.accountKey, c.accountKey)) return !record.awaitingReply;
  return false;
}

function needsBundle(ctx: Context, entry: OutboxEntry, c: DeviceCertificate): boolean {
  const { record } = loadSession(ctx.store, addressOf(c), ctx.provider);
  return needsNewSession(ctx, entry, c, record) || upgradeDue(ctx, record, c);
}

function encryptMissing(
  ctx: Context,
  key: string,
  targets: readonly Target[],
  bundlesByAccount: Map<string, Awaited<ReturnType<typeof fetchBundles>>>,
  pending: Pending,
): OutgoingEnvelope[] {
  const entry = getQueued(ctx.store, key) as OutboxEntry;
  const wanted = new Map(
    targets.flatMap((t) => t.devices.map((c) => [deviceKey(addressOf(c)), certificateHash(c, ctx.provider)] as const)),
  );
  // Envelopes for devices no longer trusted (or gone), or encrypted for a certificate the device no longer has, are dropped.
  const envelopes = entry.envelopes.filter((e) => {
    const hash = wanted.get(deviceKey(e.recipient));
    return hash !== undefined && (!e.certificateHash || bytesEqual(hash, e.certificateHash));
  });
  const ownList = loadDevices(ctx.store, ctx.self.accountKey, ctx.provider).list;
  for (const t of targets) {
    for (const c of t.devices) {
      if (envelopes.some((e) => e.recipient.deviceId === c.deviceId && bytesEqual(e.recipient.accountKey, c.accountKey))) continue;
      const peer = addressOf(c);
      let envelope: Uint8Array;
      let frankingTag: Uint8Array | null = null;
      if (entry.groupMessage) {
        envelope = entry.groupMessage;
        frankingTag = entry.groupFrankingTag ?? null;
      } else {
        const { record: loaded } = loadSession(ctx.store, peer, ctx.provider);
        const fetched = bundlesByAccount.get(accountId(c.accountKey));
        const bundle = fetched?.bundles.get(c.deviceId);
        let record = loaded;
        const before = record.sessionVersion;
        // Fetched only to see whether a working v1 session can move to v2: a v1 answer keeps it (engine/upgrade.ts).
        const probeOnly = bundle && !needsNewSession(ctx, entry, c, loaded) && signedVersion(bundle) < 2;
        if (probeOnly) markProbed(ctx, peer);
        if (bundle && !probeOnly) {
          // The version pin and this client's versions decide the session's version (engine/bundles.ts).
          const versions = { minVersion: fetched?.pins.get(c.deviceId), localVersions: ctx.options.sessionVersions };
          if (!record.hasSession)
            record = SessionRecord.initiate(ctx.device, bundle, { expectedAccountKey: c.accountKey, provider: ctx.provider, ...versions });
          else record.initiate(ctx.device, bundle, { expectedAccountKey: c.accountKey, ...versions });
          noteUpgrade(pending, peer, before, record.sessionVersion);
        }
        const own = bytesEqual(c.accountKey, ctx.self.accountKey);
        let payload = own ? entry.toOwnDevices : entry.toContacts;
        if (!payload) throw new TypeError('outbox entry has no payload for this kind of recipient');
        // A new session may be the peer's first contact with us: attach our signed device list (spec §5).
        if (record.awaitingReply && ownList) {
          const content = decodeContent(payload);
          if (!content.deviceList) payload = encodeContent({ ...content, deviceList: ownList.encoded });
        }
        // A v2 session's message comes with its franking tag, which travels beside it (spec/14-franking.md §2).
        ({ message: envelope, frankingTag } = record.encryptWithTag(payload));
        saveSession(ctx.store, peer, record);
      }
      envelopes.push({
        recipient: peer,
        clientId: clientIdFor(entry.messageId, entry.attempt),
        envelope,
        certificateHash: certificateHash(c, ctx.provider),
        ...(frankingTag ? { frankingTag } : {}),
      });
    }
  }
  updateQueued(ctx.store, key, { ...entry, envelopes });
  return envelopes;
}

function finish(ctx: Context, key: string, entry: OutboxEntry, envelopes: readonly OutgoingEnvelope[]): void {
  dequeue(ctx.store, key);
  if (entry.keepForRetry && envelopes.length > 0) {
    // One message may go out as several entries (one per account): the log keeps every recipient.
    const held = getSent(ctx.store, entry.messageId);
    const recipients = [
      ...(held?.recipients ?? []),
      ...envelopes.map((e) => e.recipient).filter((r) => !held?.recipients.some((h) => sameDevice(h, r))),
    ];
    putSent(ctx.store, {
      messageId: entry.messageId,
      toContacts: entry.toContacts ?? held?.toContacts ?? null,
      toOwnDevices: entry.toOwnDevices ?? held?.toOwnDevices ?? null,
      recipients,
      resent: held?.resent ?? [],
      sentAt: held?.sentAt ?? ctx.clock(),
    });
  }
  if (entry.conversation) raiseStatus(ctx.store, ctx.self.accountKey, entry.messageId, MessageStatus.sent);
}
