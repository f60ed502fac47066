/**
 * Marking messages read (spec/10-client.md §4.4): the command behind
 * `markRead`. Each unread incoming message is raised to `read`; its sender
 * gets read receipts in batches of at most MAX_RECEIPT_IDS ids (folded into
 * a receipt still waiting in the outbox where one fits), and in a
 * one-to-one conversation our other devices get a sync transcript so they
 * mark the same messages read.
 */
import { parseConversationId } from '../state/conversation-id.ts';
import { MessageStatus, listMessages, raiseStatus } from '../state/history.ts';
import { accountId, messageIdText } from '../state/ids.ts';
import { newContent, queueDirect } from './compose.ts';
import { sendReceipt } from '../sealed/receipts.ts';
import type { Command } from './run.ts';

/** Ids per read receipt: under MAX_RECEIPT_IDS (512), the most one receipt may carry. */
const RECEIPT_BATCH = 500;

/** Marks the conversation's unread incoming messages read (all, or those in `messageIds`). */
export function markReadCommand(conversation: string, messageIds?: readonly string[]): Command<void> {
  const ref = parseConversationId(conversation);
  return {
    commit(ctx) {
      const unread = listMessages(ctx.store, conversation).filter(
        (m) => !m.outgoing && m.status !== 'read' && (!messageIds || messageIds.includes(messageIdText(m.content.messageId))),
      );
      const bySender = new Map<string, { account: Uint8Array; ids: Uint8Array[] }>();
      for (const m of unread) {
        raiseStatus(ctx.store, m.sender.accountKey, m.content.messageId, MessageStatus.read);
        const k = accountId(m.sender.accountKey);
        const entry = bySender.get(k) ?? { account: m.sender.accountKey, ids: [] };
        entry.ids.push(m.content.messageId);
        bySender.set(k, entry);
      }
      for (const { account, ids } of bySender.values()) {
        for (let i = 0; i < ids.length; i += RECEIPT_BATCH) sendReceipt(ctx, account, 'read', ids.slice(i, i + RECEIPT_BATCH));
        if (ref.kind === 'direct') {
          const receipt = newContent(ctx, { type: 'receipt', kind: 'read', messageIds: ids.slice(0, RECEIPT_BATCH) });
          const sync = newContent(ctx, { type: 'sync', destination: account, content: receipt });
          queueDirect(ctx, ctx.self.accountKey, sync, { keepForRetry: false });
        }
      }
    },
  };
}
