/**
 * Sending to a conversation: the commands behind sendText, sendFile,
 * sendAttachment, setTyping and setExpireTimer. spec/10-client.md §4.
 *
 * A send fetches the device lists it needs (prepare), then queues the
 * content and records it in history in one transaction (commit); the outbox
 * pump encrypts and sends it later. The conversation's disappearing timer
 * is read in that transaction, so a timer another job just changed is the
 * one the message carries.
 */
import { bytesEqual } from '@parley/core';
import type { ContentBody } from '../content/content.ts';
import { ClientError } from '../errors.ts';
import { getExpireTimer, setExpireTimer } from '../state/contacts.ts';
import { type ConversationRef, parseConversationId } from '../state/conversation-id.ts';
import { newContent, queueDirect, recordOutgoing } from './compose.ts';
import { releaseReceiptsTo } from '../sealed/receipts.ts';
import { devicesFor, refreshDevices } from './directory.ts';
import { prepareGroupSend, queueGroupContent } from './groups.ts';
import type { Command, Queued } from './run.ts';

export interface SendResult {
  /** The message id (base64url), as in events and history. */
  readonly messageId: string;
}

/** What a send command queued: the outbox entry to wait for, and the message id. */
export interface QueuedSend extends Queued {
  readonly messageId: Uint8Array;
}

/**
 * Queues `body` to a conversation. `record`: a message the user sees
 * (history, a sync transcript to our devices, kept for retry requests);
 * otherwise a signal (typing, a timer change) that is only sent.
 */
export function sendCommand(conversation: string, body: ContentBody, record: boolean): Command<QueuedSend> {
  const ref: ConversationRef = parseConversationId(conversation);
  return {
    async prepare(ctx, pending) {
      if (ref.kind === 'group') return prepareGroupSend(ctx, ref.groupId, pending);
      if (bytesEqual(ref.accountKey, ctx.self.accountKey)) throw new TypeError('"conversation" is this account itself');
      const known = await devicesFor(ctx, ref.accountKey, pending);
      if (known.trusted.length === 0 && known.refused.length === 0) {
        const again = await refreshDevices(ctx, ref.accountKey, pending);
        if (again.trusted.length === 0 && again.refused.length === 0)
          throw new ClientError('UNKNOWN_ACCOUNT', 'no device of this account is registered');
      }
      await devicesFor(ctx, ctx.self.accountKey, pending);
    },
    commit(ctx) {
      const timer = getExpireTimer(ctx.store, conversation);
      if (ref.kind === 'group') {
        const content = newContent(ctx, body, { group: ref.groupId, expireTimer: timer });
        return { key: queueGroupContent(ctx, ref.groupId, content, record), messageId: content.messageId };
      }
      const content = newContent(ctx, body, { expireTimer: timer });
      // Receipts held back for this peer ride along with a message (spec/12 §8).
      if (record) releaseReceiptsTo(ctx, ref.accountKey);
      const key = queueDirect(ctx, ref.accountKey, content, {
        syncToOwnDevices: record || body.type === 'timer',
        keepForRetry: body.type !== 'typing',
        conversation: record ? conversation : null,
        ttlSeconds: timer > 0 ? timer : null,
      });
      if (record) recordOutgoing(ctx, conversation, content);
      return { key, messageId: content.messageId };
    },
  };
}

/** Sets a conversation's disappearing-message timer here; the `timer` content that tells the others is a send of its own. */
export function setTimerCommand(conversation: string, seconds: number): Command<void> {
  parseConversationId(conversation);
  return {
    commit(ctx) {
      setExpireTimer(ctx.store, conversation, seconds);
    },
  };
}
