/**
 * Conversation ids: a one-to-one conversation is named by the other
 * account's id; a group by `g.` and its group id in base64url (a dot never
 * appears in base64url, so the two cannot collide). spec/10-client.md §2.
 */
import { accountId, fromBase64Url, toBase64Url } from './ids.ts';

export type ConversationRef =
  | { readonly kind: 'direct'; readonly accountKey: Uint8Array }
  | { readonly kind: 'group'; readonly groupId: Uint8Array };

export function conversationId(ref: ConversationRef): string {
  return ref.kind === 'direct' ? accountId(ref.accountKey) : `g.${toBase64Url(ref.groupId)}`;
}

/** Parses a conversation id; throws a TypeError naming the argument otherwise. */
export function parseConversationId(id: string): ConversationRef {
  if (id.startsWith('g.')) {
    const groupId = fromBase64Url(id.slice(2), 32);
    if (groupId) return { kind: 'group', groupId };
  } else {
    const accountKey = fromBase64Url(id, 32);
    if (accountKey) return { kind: 'direct', accountKey };
  }
  throw new TypeError('"conversation" expected an account id or a group id (g.<base64url>)');
}
