/**
 * spec/14-franking.md §6 step 5: a reported file message fixes one file.
 * The franked plaintext (a Content) carries the attachment pointer, which
 * names the blob by id and commits to it by SHA-256 digest and key
 * commitment; this check makes the report show that file and no other.
 *
 * For every item: the item lists each pointer of its plaintext exactly once
 * (a report cannot leave a file out, or name one the message does not
 * carry); each pointer decodes; the blob (sent with the report, or fetched
 * by the pointer's id while the relay stores it) is exactly the pointer's
 * attachment (AttachmentBlobCheck: length, header, key commitment, every
 * chunk tag, digest). Every cheap check of every item runs before any blob
 * byte is read, and the bytes checked per report are bounded.
 */
import { AttachmentBlobCheck, type BlobCheckFailure } from '../attachment/check.ts';
import { contentAttachmentPointers } from '../attachment/content.ts';
import { chunkCountOf } from '../attachment/format.ts';
import { type AttachmentPointer, decodePointerFields } from '../attachment/pointer.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import type { AbuseReport } from './report.ts';

/**
 * The file-check work one report may cause, in bytes of ciphertext read and
 * decrypted (each chunk counted as REPORT_CHUNK_COST_BYTES more, below): the
 * relay's default largest attachment (100 MiB) at the default chunk size
 * twice, with room for smaller files among the context. Work per report
 * stays bounded however many items name large files.
 */
export const MAX_REPORT_BLOB_BYTES = 256 * 1024 * 1024;

/**
 * What one chunk costs on top of its bytes: an AEAD open pays a key setup
 * and a tag whatever the chunk's size, about as much as 1 KiB of
 * ChaCha20-Poly1305 and SHA-256 throughput (measured: 7.2 µs per chunk
 * against 8.2 ns per byte). The sender picks the chunk size down to 16
 * bytes, so a bound on bytes alone let one report cost 8 million opens
 * (30 times the work of the same bytes in 64 KiB chunks). At the default
 * chunk size this adds 1.6 %.
 */
export const REPORT_CHUNK_COST_BYTES = 1024;

export type AttachmentRefusalCode = 'ATTACHMENT_MISMATCH' | 'ATTACHMENT_UNAVAILABLE' | 'PAYLOAD_TOO_LARGE';

/** Why the check refused, for the moderator and the tests (never key or content bytes). */
export type AttachmentRefusalReason = 'unlisted' | 'pointer' | 'unavailable' | 'too-large' | BlobCheckFailure;

export type AttachmentVerdict =
  | { readonly ok: true; readonly checked: number }
  | { readonly ok: false; readonly code: AttachmentRefusalCode; readonly item: number; readonly reason: AttachmentRefusalReason };

/** The stored blob for an attachment id, as a stream of bytes, or null when it is not (or no longer) stored. */
export type BlobSource = (id: string) => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array> | null>;

interface Planned {
  readonly item: number;
  readonly pointer: AttachmentPointer;
  readonly blob: Uint8Array | null;
}

function refuse(code: AttachmentRefusalCode, item: number, reason: AttachmentRefusalReason): AttachmentVerdict {
  return { ok: false, code, item, reason };
}

/** The check cost of one pointer: its ciphertext bytes and a fixed cost per chunk. */
function checkCost(p: AttachmentPointer): number {
  return p.ciphertextSize + chunkCountOf(p.plaintextSize, p.chunkSize) * REPORT_CHUNK_COST_BYTES;
}

/**
 * What `verifyReportAttachments` would spend on this report's files, in the
 * unit of MAX_REPORT_BLOB_BYTES (0 when it carries none). Cheap (pointers
 * only, no blob): a caller charges it to a budget before the check runs.
 * Pointers that do not decode cost nothing (the check refuses them unread).
 */
export function reportAttachmentsCost(report: AbuseReport): number {
  let cost = 0;
  for (const item of report.items) {
    const pointers = contentAttachmentPointers(item.plaintext);
    for (const a of item.attachments) {
      const encoded = pointers[a.pointerIndex];
      if (encoded === undefined) continue;
      try {
        cost += checkCost(decodePointerFields(encoded));
      } catch {
        // Refused by the check before any blob is read.
      }
    }
  }
  return cost;
}

/** Step 5 for the whole report; `checked` is the number of blobs verified. */
export async function verifyReportAttachments(
  backend: CryptoBackend,
  report: AbuseReport,
  fetchBlob: BlobSource,
): Promise<AttachmentVerdict> {
  const plan: Planned[] = [];
  let bytes = 0;
  for (const [n, item] of report.items.entries()) {
    const pointers = contentAttachmentPointers(item.plaintext);
    const listed = new Set(item.attachments.map((a) => a.pointerIndex));
    if (item.attachments.length !== pointers.length || listed.size !== pointers.length) return refuse('ATTACHMENT_MISMATCH', n, 'unlisted');
    for (const a of item.attachments) {
      const encoded = pointers[a.pointerIndex];
      if (encoded === undefined) return refuse('ATTACHMENT_MISMATCH', n, 'unlisted');
      let pointer: AttachmentPointer;
      try {
        pointer = decodePointerFields(encoded);
      } catch {
        return refuse('ATTACHMENT_MISMATCH', n, 'pointer');
      }
      // Bytes and chunks both cost (REPORT_CHUNK_COST_BYTES): the sender picks the chunk size.
      bytes += checkCost(pointer);
      if (bytes > MAX_REPORT_BLOB_BYTES) return refuse('PAYLOAD_TOO_LARGE', n, 'too-large');
      plan.push({ item: n, pointer, blob: a.blob });
    }
  }
  for (const p of plan) {
    const check = new AttachmentBlobCheck(backend, p.pointer);
    if (p.blob !== null) {
      check.update(p.blob);
    } else {
      const source = await fetchBlob(p.pointer.id);
      if (source === null) return refuse('ATTACHMENT_UNAVAILABLE', p.item, 'unavailable');
      try {
        for await (const chunk of source) {
          check.update(chunk);
          // Stop reading a blob as soon as it cannot be the pointer's.
          if (check.failure !== null) break;
        }
      } catch {
        // The store failed mid-read (a blob deleted under the reader): as if it were gone.
        check.finish();
        return refuse('ATTACHMENT_UNAVAILABLE', p.item, 'unavailable');
      }
    }
    const failure = check.finish();
    if (failure !== null) return refuse('ATTACHMENT_MISMATCH', p.item, failure);
  }
  return { ok: true, checked: plan.length };
}
