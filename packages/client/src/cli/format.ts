/**
 * How the CLI prints things: one line per message, contacts by name.
 */
import type { ParleyClient } from '../client.ts';
import type { MessageEvent } from '../events.ts';
import type { StoredMessage } from '../state/history.ts';
import { accountId } from '../state/ids.ts';

/** A contact's name, a group's name, or a shortened id. */
export function nameOf(client: ParleyClient, idOrConversation: string): string {
  if (idOrConversation === client.accountId) return 'me';
  const contact = client.contacts().find((c) => c.account === idOrConversation);
  if (contact) return contact.name;
  const group = idOrConversation.startsWith('g.') ? client.group(idOrConversation) : null;
  if (group) return `#${group.name}`;
  return `${idOrConversation.slice(0, 8)}…`;
}

/** Local date and time, "2026-12-06 14:03": a message read days later says when it was written. */
export function time(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}`;
}

/** History as people read it: by the time each message was written (the sender's clock), not by arrival. */
export function byMessageTime(messages: readonly StoredMessage[]): StoredMessage[] {
  return [...messages].sort((a, b) => a.content.sentAt - b.content.sentAt || a.storedAt - b.storedAt);
}

function bodyText(body: MessageEvent['body']): string {
  if (body.type === 'text') return body.text;
  const a = body.attachment;
  const size = a.size >= 1 << 20 ? `${(a.size / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(a.size / 1024)} KiB`;
  return `[file ${a.fileName ?? 'unnamed'}, ${size}]${body.caption ? ` ${body.caption}` : ''}`;
}

export function formatEvent(client: ParleyClient, m: MessageEvent): string {
  const where = m.conversation.startsWith('g.') ? `${nameOf(client, m.conversation)} ` : '';
  const who = m.outgoing ? `me (device ${m.sender.deviceId}) → ${nameOf(client, m.conversation)}` : nameOf(client, m.sender.account);
  return `[${time(m.sentAt)}] ${where}${who}: ${bodyText(m.body)}`;
}

/** A short quote of a stored message, for notes about it. */
export function preview(m: StoredMessage): string {
  const b = m.content.body;
  const text = b.type === 'text' ? b.text : b.type === 'attachment' ? `[file ${b.attachment.fileName ?? 'unnamed'}]` : `[${b.type}]`;
  return text.length > 40 ? `"${text.slice(0, 39)}…"` : `"${text}"`;
}

export function formatStored(client: ParleyClient, m: StoredMessage): string {
  const b = m.content.body;
  const body =
    b.type === 'text' || b.type === 'attachment'
      ? bodyText(b.type === 'text' ? b : { type: 'attachment', attachment: b.attachment, caption: b.caption })
      : '';
  const who = m.outgoing ? 'me' : nameOf(client, accountId(m.sender.accountKey));
  const status = m.outgoing ? `  (${m.status})` : '';
  return `[${time(m.content.sentAt)}] ${who}: ${body}${status}`;
}
