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
import { type AttachmentPointer, decodePointerFields } from '../attachment/pointer.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import type { AbuseReport } from './report.ts';

/**
 * Ciphertext bytes one report may make the verifier read and decrypt: the
 * relay's default largest attachment (100 MiB) with room for a few smaller
 * files among the context. Work per report stays bounded however many
 * items name large files.
 */
export const MAX_REPORT_BLOB_BYTES = 256 * 1024 * 1024;

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
      bytes += pointer.ciphertextSize;
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
