/**
 * Node files for `sendFile`: `fileFromPath('clip.mp4')`, or
 * `fileFromStream(fs.createReadStream(path), size)`. `sendFile` takes a web
 * `ReadableStream<Uint8Array>`; Node's `Readable.toWeb` returns a type that
 * strict TypeScript does not accept as one without a cast (and yields
 * Buffers or strings). This adapts any Node readable (an async iterable of
 * chunks) into exactly that, reading only as fast as the upload pulls.
 * Published as part of `@parley/client/node`.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { FileToSend } from './transfer.ts';

/** Media types by file extension, for the receiver's display (anything else is application/octet-stream). */
const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.mp4': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
};

export interface FileOptions {
  /** The name the receiver sees (default: the path's base name). */
  readonly fileName?: string;
  /** Default: from the extension. */
  readonly contentType?: string;
}

/** The media type of a file name, from its extension. */
export function mediaTypeOf(fileName: string): string {
  return MEDIA_TYPES[extname(fileName).toLowerCase()] ?? 'application/octet-stream';
}

/** A web stream of bytes from a Node readable (`fs.createReadStream`, a socket, any async iterable of chunks). */
export function webStreamFrom(source: AsyncIterable<Uint8Array | string>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await iterator.next();
      if (done) controller.close();
      // A Buffer is a Uint8Array over a shared pool: hand over a view of just its bytes.
      else
        controller.enqueue(
          typeof value === 'string' ? encoder.encode(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
        );
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/** A file to send from a Node stream whose size is known (the relay needs it before the upload starts). */
export function fileFromStream(source: AsyncIterable<Uint8Array | string>, size: number, options: FileOptions = {}): FileToSend {
  return {
    stream: webStreamFrom(source),
    size,
    ...(options.fileName ? { fileName: options.fileName } : {}),
    contentType: options.contentType ?? (options.fileName ? mediaTypeOf(options.fileName) : 'application/octet-stream'),
  };
}

/**
 * A file on disk to send: its size from `stat`, its name and media type
 * from the path. Throws the file system's error (ENOENT, EISDIR) before
 * anything is uploaded.
 */
export async function fileFromPath(path: string, options: FileOptions = {}): Promise<FileToSend> {
  const info = await stat(path);
  if (info.isDirectory()) throw Object.assign(new Error(`EISDIR: a folder, not a file: ${path}`), { code: 'EISDIR', path });
  const fileName = options.fileName ?? basename(path);
  return fileFromStream(createReadStream(path), info.size, { fileName, contentType: options.contentType ?? mediaTypeOf(fileName) });
}
