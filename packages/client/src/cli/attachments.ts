/**
 * Files in the CLI: reading one to send, saving received ones. A received
 * file is written under a temporary name and renamed only once its stream
 * closed, i.e. once every chunk and the whole-blob digest verified.
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import type { ParleyClient } from '../client.ts';
import type { AttachmentInfo } from '../content/content.ts';
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

/** Downloads, verifies and saves an attachment in `dir`; returns the saved path. */
export async function saveAttachment(client: ParleyClient, attachment: AttachmentInfo, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const name = basename(attachment.fileName ?? `${attachment.id}.bin`);
  let target = join(dir, name);
  for (let i = 1; existsSync(target); i++) target = join(dir, `${basename(name, extname(name))} (${i})${extname(name)}`);
  const partial = `${target}.part`;
  try {
    await client.openAttachment(attachment).pipeTo(Writable.toWeb(createWriteStream(partial)) as WritableStream<Uint8Array>);
    renameSync(partial, target);
    return target;
  } catch (e) {
    rmSync(partial, { force: true });
    throw e;
  }
}
