/**
 * Applying a decrypted content: history, receipts, timers, groups, retry
 * requests. spec/10-client.md §4.2 and §8.
 *
 * Runs inside the transaction that decrypted the envelope, so the session
 * step, the stored message and the deduplication record commit together.
 * Follow-ups (receipts, re-sends) are queued in the outbox within the same
 * transaction; events wait in `pending` until the commit.
 */
import { type DeviceCertificate, bytesEqual } from '@parley/core';
import type { Content } from '../content/content.ts';
import type { MessageBody } from '../events.ts';
import { accountId, messageIdText } from '../state/ids.ts';
import { getExpireTimer, mergeSyncedContact, setExpireTimer } from '../state/contacts.ts';
import { conversationId, parseConversationId } from '../state/conversation-id.ts';
import { markMessage, messageSeen } from '../state/dedup.ts';
import { loadGroup } from '../state/groups.ts';
import { MessageStatus, addMessage, findMessage, historyKey, raiseStatus } from '../state/history.ts';
import { putFranked } from '../franking/store.ts';
import type { DeliveryRecord } from '../relay-link/link.ts';
import { answerContactsRequest } from './contacts-sync.ts';
import type { Context, Pending } from './context.ts';
import { applyDistribution, applyGroupState } from './groups.ts';
import { answerRetry } from './retry.ts';
import { acceptGrant, acceptOwnGrant } from '../sealed/grants.ts';
import { sendReceipt } from '../sealed/receipts.ts';

export interface Received {
  /** The sending device (verified: the session's peer, or a group member's chain). */
  readonly sender: DeviceCertificate;
  readonly content: Content;
  /** 'direct': a one-to-one session; 'group': a sender-key group message. */
  readonly via: 'direct' | 'group';
  /** A v2 message's checked franking material, stored with the message for reports (franking/store.ts). */
  readonly franking?: Franking | null;
}

/** What a received v2 message adds to its stored row: the rest of a report item comes from the message itself. */
export interface Franking {
  readonly delivery: DeliveryRecord;
  readonly frankingKey: Uint8Array;
  /** The exact plaintext bytes the tag commits to. */
  readonly plaintext: Uint8Array;
  readonly attestation: Uint8Array | null;
  readonly sealed: boolean;
}

export function applyContent(ctx: Context, r: Received, pending: Pending): void {
  const { sender, content } = r;
  if (messageSeen(ctx.store, sender.accountKey, content.messageId)) return;
  markMessage(ctx.store, sender.accountKey, content.messageId, ctx.clock());
  const fromSelf = bytesEqual(sender.accountKey, ctx.self.accountKey);
  const body = content.body;

  // Which conversation: a group (we must hold it and the sender must be a member) or the sender.
  let conversation: string;
  if (content.group) {
    const group = loadGroup(ctx.store, content.group, ctx.provider);
    const member = group?.members.some((m) => bytesEqual(m, sender.accountKey)) ?? false;
    if (body.type === 'distribution') {
      if (r.via === 'direct') applyDistribution(ctx, sender, content.group, body.distribution, body.state, pending);
      return;
    }
    if (body.type === 'group-update') {
      applyGroupState(ctx, sender, content.group, body.state, pending);
      return;
    }
    if (!group || !member) {
      pending.add('warning', { code: 'UNKNOWN_GROUP', message: 'a message for a group we do not hold, or from a non-member' });
      return;
    }
    conversation = conversationId({ kind: 'group', groupId: content.group });
  } else {
    conversation = accountId(sender.accountKey);
  }

  switch (body.type) {
    case 'text':
    case 'attachment':
      if (fromSelf && !content.group) return; // our own devices talk to us through sync transcripts only
      adoptTimer(ctx, conversation, content.expireTimer, sender, pending);
      store(ctx, conversation, sender, content, fromSelf, pending, fromSelf ? null : (r.franking ?? null));
      if (!fromSelf && ctx.options.deliveryReceipts) sendReceipt(ctx, sender.accountKey, 'delivered', [content.messageId]);
      return;
    case 'receipt':
      for (const id of body.messageIds) {
        const found = findMessage(ctx.store, ctx.self.accountKey, id);
        // A receipt counts only from someone the message went to.
        if (!found || !sentTo(ctx, found.message.conversation, sender.accountKey)) continue;
        const status = body.kind === 'delivered' ? MessageStatus.delivered : MessageStatus.read;
        if (raiseStatus(ctx.store, ctx.self.accountKey, id, status)) {
          pending.add('receipt', {
            conversation: found.message.conversation,
            messageId: messageIdText(id),
            status: body.kind,
            from: accountId(sender.accountKey),
          });
        }
      }
      return;
    case 'typing':
      if (!fromSelf)
        pending.add('typing', {
          conversation,
          from: { account: accountId(sender.accountKey), deviceId: sender.deviceId },
          typing: body.typing,
        });
      return;
    case 'retry':
      answerRetry(ctx, sender, body.clientId, pending);
      return;
    case 'timer':
      if (content.expireTimer !== getExpireTimer(ctx.store, conversation))
        adoptTimer(ctx, conversation, content.expireTimer, sender, pending);
      return;
    case 'device-list':
      return; // accepted before the content was applied (receive.ts)
    case 'sync':
      if (!fromSelf || r.via !== 'direct' || !body.destination) return;
      // A grant another of our devices made: its hash names that contact on this device too (spec/12 §3).
      if (body.content.body.type === 'token-grant') acceptOwnGrant(ctx, body.destination, body.content);
      else applySync(ctx, sender, body.destination, body.content, pending);
      return;
    case 'token-grant':
      // Only in a one-to-one session, and never in a group's name (the decoder refuses a group on it).
      if (r.via === 'direct') acceptGrant(ctx, sender.accountKey, body);
      return;
    case 'contacts':
      // Only our own devices may name our contacts, and only in a one-to-one session with us.
      if (!fromSelf || r.via !== 'direct') {
        pending.add('warning', { code: 'CONTACTS_NOT_FROM_SELF', message: 'a contacts list from another account was ignored' });
        return;
      }
      // An empty list is a newly linked device asking for ours.
      if (body.contacts.length === 0) answerContactsRequest(ctx);
      for (const c of body.contacts) if (!bytesEqual(c.accountKey, ctx.self.accountKey)) mergeSyncedContact(ctx.store, c);
      return;
    case 'distribution':
    case 'group-update':
      return; // handled above (they always name a group)
  }
}

/** A transcript from one of our other devices: what it sent (or read) in a one-to-one conversation. */
function applySync(ctx: Context, sender: DeviceCertificate, destination: Uint8Array, inner: Content, pending: Pending): void {
  const conversation = accountId(destination);
  const body = inner.body;
  if (body.type === 'text' || body.type === 'attachment') {
    adoptTimer(ctx, conversation, inner.expireTimer, sender, pending);
    store(ctx, conversation, sender, inner, true, pending);
  } else if (body.type === 'receipt' && body.kind === 'read') {
    for (const id of body.messageIds) raiseStatus(ctx.store, destination, id, MessageStatus.read);
  } else if (body.type === 'timer') {
    adoptTimer(ctx, conversation, inner.expireTimer, sender, pending);
  }
}

function store(
  ctx: Context,
  conversation: string,
  sender: DeviceCertificate,
  content: Content,
  outgoing: boolean,
  pending: Pending,
  franking: Franking | null = null,
): void {
  const body = content.body;
  if (body.type !== 'text' && body.type !== 'attachment') return;
  const now = ctx.clock();
  // The timer counts from when this device stored the message, not from the sender's clock.
  const expiresAt = content.expireTimer > 0 ? now + content.expireTimer * 1000 : null;
  addMessage(ctx.store, {
    conversation,
    outgoing,
    sender: { accountKey: sender.accountKey, deviceId: sender.deviceId },
    content,
    storedAt: now,
    status: outgoing ? MessageStatus.sent : MessageStatus.delivered,
    expiresAt,
  });
  // Same transaction, same expiry: the franked row exists exactly as long as the message (formats-v2 §9.4).
  if (franking) {
    putFranked(ctx.store, {
      messageKey: historyKey(conversation, now, content.messageId),
      conversation,
      group: content.group,
      messageId: content.messageId,
      sender: { accountKey: sender.accountKey, deviceId: sender.deviceId },
      recipientDevice: ctx.self.deviceId,
      delivery: franking.delivery,
      frankingKey: franking.frankingKey,
      plaintext: franking.plaintext,
      attestation: franking.attestation,
      sealed: franking.sealed,
      receivedAt: now,
      expiresAt,
    });
  }
  const shown: MessageBody =
    body.type === 'text' ? { type: 'text', text: body.text } : { type: 'attachment', attachment: body.attachment, caption: body.caption };
  pending.add('message', {
    conversation,
    messageId: messageIdText(content.messageId),
    sender: { account: accountId(sender.accountKey), deviceId: sender.deviceId },
    outgoing,
    sentAt: content.sentAt,
    body: shown,
    expiresAt,
  });
}

/** A message whose timer differs from the conversation's changes it (as in Signal: the latest sender's setting wins). */
function adoptTimer(ctx: Context, conversation: string, expireTimer: number, sender: DeviceCertificate, pending: Pending): void {
  if (getExpireTimer(ctx.store, conversation) === expireTimer) return;
  setExpireTimer(ctx.store, conversation, expireTimer);
  pending.add('timer-change', { conversation, expireTimer, by: accountId(sender.accountKey) });
}

function sentTo(ctx: Context, conversation: string, account: Uint8Array): boolean {
  const ref = parseConversationId(conversation);
  if (ref.kind === 'direct') return bytesEqual(ref.accountKey, account);
  return loadGroup(ctx.store, ref.groupId, ctx.provider)?.members.some((m) => bytesEqual(m, account)) ?? false;
}
