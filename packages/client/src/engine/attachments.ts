/**
 * Attachments as the app handles them: uploading a file before its message
 * is sent, and saving a received one into the app's files.
 * spec/10-client.md §4.5 and §7.4.
 *
 * The transfers stream for as long as the file takes, so they run outside
 * the serial queue (they read and write no protocol state); only the
 * download record of a disappearing message is a store write, and it goes
 * through the queue like any other.
 */
import type { AttachmentInfo } from '../content/content.ts';
import { ClientError } from '../errors.ts';
import { downloadFile } from '../files/transfer.ts';
import { parseConversationId } from '../state/conversation-id.ts';
import { listMessages } from '../state/history.ts';
import { messageIdText } from '../state/ids.ts';
import { type AttachmentFiles, forgetDownload, recordDownload } from '../store/downloads.ts';
import type { Context } from './context.ts';
import type { Command } from './run.ts';

/** What `saveAttachment` works with: the app's files, the runner for its store writes, and the client's `openAttachment`. */
export interface SaveDeps {
  readonly files: AttachmentFiles;
  readonly run: <T>(command: Command<T>) => Promise<T>;
  readonly open: (attachment: AttachmentInfo) => ReadableStream<Uint8Array>;
}

/** A verified, decrypted stream of a received attachment; it errors if the ciphertext is not what the sender described. */
export function openAttachment(ctx: Context, attachment: AttachmentInfo): ReadableStream<Uint8Array> {
  return downloadFile(ctx.relay, attachment.pointer, ctx.provider);
}

/**
 * Downloads an attachment message into `files` and returns where it is. The
 * file of a disappearing message is recorded before it is written, so upkeep
 * destroys it with the message; a download that fails, or outlives the
 * message, is removed again.
 */
export async function saveAttachment(ctx: Context, deps: SaveDeps, conversation: string, messageId: string): Promise<string> {
  const { files, run, open } = deps;
  parseConversationId(conversation);
  const found = listMessages(ctx.store, conversation).find((m) => messageIdText(m.content.messageId) === messageId);
  if (!found || found.content.body.type !== 'attachment')
    throw new ClientError('UNKNOWN_MESSAGE', 'no stored attachment message with this id in the conversation');
  const { attachment } = found.content.body;
  const expiresAt = found.expiresAt;
  const location = await files.reserve(attachment.fileName ?? `${attachment.id}.bin`);
  const record = expiresAt === null ? null : await run({ commit: () => recordDownload(ctx.store, location, expiresAt) });
  const discard = async () => {
    await files.remove(location);
    if (record) await run({ commit: () => forgetDownload(ctx.store, record) });
  };
  try {
    await files.write(location, open(attachment));
  } catch (e) {
    await discard();
    throw e;
  }
  // The timer may have run out during the download: upkeep may already have passed this record by.
  if (expiresAt !== null && ctx.clock() >= expiresAt) {
    await discard();
    throw new ClientError('UNKNOWN_MESSAGE', 'the message disappeared during the download');
  }
  return location;
}
