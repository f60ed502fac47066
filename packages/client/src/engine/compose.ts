/**
 * Building outgoing contents and queueing them. spec/10-client.md §3-§4.
 *
 * Every helper here runs inside a transaction (it writes the outbox, and
 * usually history too); the outbox pump sends later.
 */

import { bytesEqual } from '@parley/core';
import { type Content, type ContentBody, MAX_RECEIPT_IDS, decodeContent, encodeContent } from '../content/content.ts';
import { MessageStatus, addMessage } from '../state/history.ts';
import { type DeviceAddress, newMessageId } from '../state/ids.ts';
import { type OutboxEntry, enqueue, listQueued, updateQueued } from '../state/outbox.ts';
import type { Context } from './context.ts';

export function newContent(ctx: Context, body: ContentBody, options: { group?: Uint8Array | null; expireTimer?: number } = {}): Content {
  return {
    messageId: newMessageId(ctx.provider),
    sentAt: ctx.clock(),
    expireTimer: options.expireTimer ?? 0,
    group: options.group ?? null,
    body,
    deviceList: null,
  };
}

export interface QueueOptions {
  /** Copy to this account's other devices as a sync transcript (destination = the one account). */
  syncToOwnDevices?: boolean;
  keepForRetry?: boolean;
  conversation?: string | null;
  freshSession?: DeviceAddress | null;
  ttlSeconds?: number | null;
}

/** Queues a one-to-one content for every device of `to` (and, optionally, our other devices). Returns the outbox key. */
export function queueDirect(ctx: Context, to: Uint8Array, content: Content, options: QueueOptions = {}): string {
  const toSelf = bytesEqual(to, ctx.self.accountKey);
  const encoded = encodeContent(content);
  const sync =
    options.syncToOwnDevices && !toSelf
      ? encodeContent({ ...content, group: null, body: { type: 'sync', destination: to, content }, deviceList: null })
      : null;
  const accounts = toSelf ? [to] : sync ? [to, ctx.self.accountKey] : [to];
  return enqueue(ctx.store, {
    messageId: content.messageId,
    attempt: 0,
    accounts,
    toContacts: toSelf ? null : encoded,
    toOwnDevices: toSelf ? encoded : sync,
    groupMessage: null,
    freshSession: options.freshSession ?? null,
    keepForRetry: options.keepForRetry ?? true,
    conversation: options.conversation ?? null,
    ttlSeconds: options.ttlSeconds ?? null,
    envelopes: [],
    createdAt: ctx.clock(),
  });
}

/**
 * Writes a message this device just queued into its conversation's history
 * (status queued), expiring with the content's disappearing timer counted
 * from now.
 */
export function recordOutgoing(ctx: Context, conversation: string, content: Content): void {
  const now = ctx.clock();
  addMessage(ctx.store, {
    conversation,
    outgoing: true,
    sender: ctx.self,
    content,
    storedAt: now,
    status: MessageStatus.queued,
    expiresAt: content.expireTimer > 0 ? now + content.expireTimer * 1000 : null,
  });
}

/** Queues raw entry fields (group messages, re-sends). */
export function queueEntry(ctx: Context, entry: Omit<OutboxEntry, 'envelopes' | 'createdAt'>): string {
  return enqueue(ctx.store, { ...entry, envelopes: [], createdAt: ctx.clock() });
}

/**
 * Queues a receipt to `to`, folding it into a receipt of the same kind to
 * the same account that is still waiting unencrypted (a backlog of messages
 * then costs one receipt, not one per message).
 */
export function queueReceipt(ctx: Context, to: Uint8Array, kind: 'delivered' | 'read', messageIds: readonly Uint8Array[]): void {
  for (const { key, entry } of listQueued(ctx.store)) {
    if (entry.envelopes.length || !entry.toContacts || entry.accounts.length !== 1 || !bytesEqual(entry.accounts[0] as Uint8Array, to))
      continue;
    const content = decodeContent(entry.toContacts);
    const b = content.body;
    if (b.type !== 'receipt' || b.kind !== kind || b.messageIds.length + messageIds.length > MAX_RECEIPT_IDS) continue;
    const merged = encodeContent({ ...content, body: { ...b, messageIds: [...b.messageIds, ...messageIds] } });
    updateQueued(ctx.store, key, { ...entry, toContacts: merged });
    return;
  }
  queueDirect(ctx, to, newContent(ctx, { type: 'receipt', kind, messageIds }), { keepForRetry: false });
}
