/**
 * Self-healing: the two halves of the retry flow. spec/10-client.md §6.
 *
 * Receiver: an envelope that fails to decrypt for a reason a new session can
 * cure (no session, a lost or corrupted record, an unknown prekey, a failed
 * tag, an unknown group chain) is answered with a retry request naming its
 * client id, sent in a fresh session started from the sender's bundle (or
 * in the fresh session we already started and that is still waiting for an
 * answer).
 *
 * Sender: a retry request for a message we still hold, from a device it was
 * sent to, makes us re-send the same content (same message id, so the
 * receiver applies it once) on the session the request just created, once
 * per device. The re-send must cover every device of the requester's
 * account (the relay insists); the others drop it as a duplicate.
 */
import { type DeviceCertificate, bytesEqual } from '@parley/core';
import { type DeviceAddress, accountId, deviceKey, messageIdFromClientId, messageIdText } from '../state/ids.ts';
import { getSent, putSent, sameDevice } from '../state/sent-log.ts';
import { loadSession } from '../state/sessions.ts';
import { newContent, queueDirect, queueEntry } from './compose.ts';
import type { Context, Pending } from './context.ts';

/** Codes a fresh session (or a re-send over one) can cure. */
export const RETRY_CODES: ReadonlySet<string> = new Set([
  'DECRYPT_FAILED',
  // v2 sessions: no header key of any session opens the header (a lost or restored state, as DECRYPT_FAILED in v1).
  'HEADER_DECRYPT_FAILED',
  'NO_SESSION',
  'UNKNOWN_PREKEY',
  'UNKNOWN_CHAIN',
  'BAD_PADDING',
  'TOO_FAR_AHEAD',
  // Only reached for an envelope we never processed (processed ones are caught first): the sender reused keys,
  // e.g. it was restored from a backup.
  'DUPLICATE_MESSAGE',
  // Group messages: a chain or membership we do not hold yet.
  'UNKNOWN_SENDER',
  'UNKNOWN_GROUP',
  'STALE_EPOCH',
]);

/** Retry requests one sender device can cause per hour: a peer sending garbage cannot make us spam it. */
export const MAX_RETRY_REQUESTS_PER_HOUR = 100;

/**
 * Working sessions with one peer account that failures may replace by fresh
 * ones per day. Every failed envelope is the relay's word (it can forge or
 * replay any number), and each fresh session throws away a working one and
 * takes a prekey from a bundle the relay picks. A genuine loss of state
 * needs one fresh session per device of the peer (an account has a handful),
 * so 8 heals a restore of a several-device account with room for a repeat;
 * past it the retry request goes on the current session (spec/10-client.md §6).
 */
export const MAX_SESSION_RESETS_PER_PEER_PER_DAY = 8;

/**
 * Failures a fresh session may cure. Not DUPLICATE_MESSAGE: an envelope that
 * decrypts to a message already read is exactly what a replay looks like
 * (the relay re-sends an old envelope under a new client id), so it gets a
 * retry request on the current session, never a new one.
 */
export function freshSessionMayCure(code: string): boolean {
  return RETRY_CODES.has(code) && code !== 'DUPLICATE_MESSAGE';
}

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

function readCount(ctx: Context, key: string): number {
  return Number(new TextDecoder().decode(ctx.store.get('processed', key) ?? new Uint8Array()) || '0');
}

function writeCount(ctx: Context, key: string, value: number, expiresAt: number): void {
  ctx.store.put('processed', key, new TextEncoder().encode(String(value)), expiresAt);
}

/**
 * Whether a retry request may start a fresh session with `sender`: always
 * when there is no working session to lose (none, or our own fresh one
 * still awaiting its answer, which is reused); otherwise only within the
 * daily per-account budget, which this spends.
 */
function mayReplaceSession(ctx: Context, sender: DeviceAddress): boolean {
  const { record } = loadSession(ctx.store, sender, ctx.provider);
  if (!record.hasSession || record.awaitingReply) return true;
  const now = ctx.clock();
  const key = `s/${accountId(sender.accountKey)}/${Math.floor(now / DAY)}`;
  const used = readCount(ctx, key);
  if (used >= MAX_SESSION_RESETS_PER_PEER_PER_DAY) return false;
  writeCount(ctx, key, used + 1, now + 2 * DAY);
  return true;
}

/**
 * Queues a retry request for a failed envelope, unless the hourly budget for
 * that device is spent. With `freshSession`, the request goes in a fresh
 * session while the per-peer reset budget lasts. Returns true if queued.
 */
export function requestRetry(ctx: Context, sender: DeviceAddress, clientId: string, freshSession: boolean, pending?: Pending): boolean {
  const now = ctx.clock();
  const budgetKey = `r/${deviceKey(sender)}/${Math.floor(now / HOUR)}`;
  const used = readCount(ctx, budgetKey);
  if (used >= MAX_RETRY_REQUESTS_PER_HOUR) return false;
  writeCount(ctx, budgetKey, used + 1, now + 2 * HOUR);
  const fresh = freshSession && mayReplaceSession(ctx, sender);
  if (freshSession && !fresh) {
    pending?.add('warning', {
      code: 'SESSION_RESET_LIMIT',
      message: `failures from ${accountId(sender.accountKey)} replaced ${MAX_SESSION_RESETS_PER_PEER_PER_DAY} sessions today; asking again on the current one`,
    });
  }
  queueDirect(ctx, sender.accountKey, newContent(ctx, { type: 'retry', clientId }), {
    freshSession: fresh ? sender : null,
    keepForRetry: true,
  });
  return true;
}

/** Answers a retry request from `requester` (the certificate of the session it arrived on). */
export function answerRetry(ctx: Context, requester: DeviceCertificate, clientId: string, pending: Pending): void {
  const messageId = messageIdFromClientId(clientId);
  if (!messageId) return;
  const sent = getSent(ctx.store, messageId);
  const who: DeviceAddress = { accountKey: requester.accountKey, deviceId: requester.deviceId };
  // Only a device the message went to may have it again, and only once.
  if (!sent || !sent.recipients.some((r) => sameDevice(r, who)) || sent.resent.some((r) => sameDevice(r, who))) return;
  const own = bytesEqual(requester.accountKey, ctx.self.accountKey);
  const payload = own ? sent.toOwnDevices : sent.toContacts;
  if (!payload) return;
  queueEntry(ctx, {
    messageId,
    attempt: sent.resent.length + 1,
    accounts: [requester.accountKey],
    toContacts: own ? null : payload,
    toOwnDevices: own ? payload : null,
    groupMessage: null,
    freshSession: null,
    keepForRetry: false,
    conversation: null,
    ttlSeconds: null,
  });
  putSent(ctx.store, { ...sent, resent: [...sent.resent, who] });
  pending.add('resent', { messageId: messageIdText(messageId), to: accountId(requester.accountKey) });
}
