/**
 * Files in the CLI: reading one to send (the SDK's Node helper). Received
 * ones are saved by the SDK's `saveAttachment` into a `DownloadFolder`
 * (store/download-folder.ts), which also destroys them when their message
 * disappears.
 */
import type { FileToSend } from '../files/transfer.ts';
import { fileFromPath } from '../files/node-file.ts';

export function fileToSend(path: string): Promise<FileToSend> {
  return fileFromPath(path);
}
