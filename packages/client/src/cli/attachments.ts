/**
 * Files in the CLI: reading one to send. Received ones are saved by the
 * SDK's `saveAttachment` into a `DownloadFolder` (store/download-folder.ts),
 * which also destroys them when their message disappears.
 */
import { createReadStream, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { Readable } from 'node:stream';
import type { FileToSend } from '../attachment-transfer.ts';

const TYPES: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
};

export function fileToSend(path: string): FileToSend {
  const size = statSync(path).size;
  const contentType = TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
  return { stream: Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>, size, fileName: basename(path), contentType };
}
