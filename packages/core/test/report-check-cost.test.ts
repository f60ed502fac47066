// The work a report's file check may cost (spec/14-franking.md §6.1, §8).
// Reading a blob costs per byte (SHA-256, ChaCha20) and per chunk (one AEAD
// open, key setup and tag, whatever the chunk's size). The sender picks the
// chunk size, down to 16 bytes, so a bound on bytes alone lets one report
// name 256 MiB of 16-byte chunks: about 8 million AEAD opens, some 30 times
// the work of the same bytes at the default chunk size. The bound counts
// both: a file costs its ciphertext bytes plus REPORT_CHUNK_COST_BYTES per
// chunk. Work is counted in backend calls, never timed.
import { describe, expect, it } from 'vitest';
import { AttachmentBlobCheck } from '../src/attachment/check.ts';
import { DEFAULT_CHUNK_SIZE, chunkCountOf, ciphertextSizeOf } from '../src/attachment/format.ts';
import { encodeCbor } from '../src/codec/cbor.ts';
import { defaultProvider } from '../src/crypto/provider.ts';
import {
  MAX_REPORT_BLOB_BYTES,
  REPORT_CHUNK_COST_BYTES,
  reportAttachmentsCost,
  verifyReportAttachments,
} from '../src/franking/report-attachments.ts';
import { filePointer, fileReportItem, sealZeroBlob } from './support/attachment-fixtures.ts';
import { countingBackend } from './support/counting-backend.ts';

const b = defaultProvider().backend;

describe('the cost bound of a report file check', () => {
  it('refuses 240 MiB of 16-byte chunks (7.9 million AEAD opens) before reading any blob', async () => {
    // Under the byte bound: 56 + 120 MiB + 7.86 M × 16 B tags = 240 MiB.
    const tiny = filePointer(120 * 1024 * 1024, 16);
    let reads = 0;
    const verdict = await verifyReportAttachments(b, { reason: 1, comment: '', items: [fileReportItem(1, tiny)] }, async () => {
      reads++;
      return null;
    });
    expect(verdict).toEqual({ ok: false, code: 'PAYLOAD_TOO_LARGE', item: 0, reason: 'too-large' });
    expect(reads).toBe(0);
  });

  it('still accepts the relay default largest file (100 MiB) at the default chunk size, twice per report', () => {
    const big = filePointer(100 * 1024 * 1024, DEFAULT_CHUNK_SIZE);
    const report = { reason: 1, comment: '', items: [fileReportItem(1, big), fileReportItem(2, big)] };
    expect(reportAttachmentsCost(report)).toBeLessThanOrEqual(MAX_REPORT_BLOB_BYTES);
  });

  it('counts bytes and chunks; a report without files costs nothing; a bad pointer costs nothing', () => {
    const p = filePointer(1000, 16);
    const chunks = chunkCountOf(1000, 16);
    expect(reportAttachmentsCost({ reason: 1, comment: '', items: [fileReportItem(1, p)] })).toBe(
      ciphertextSizeOf(1000, 16) + chunks * REPORT_CHUNK_COST_BYTES,
    );
    const text = { ...fileReportItem(1, p), plaintext: encodeCbor([1, 1, new Uint8Array(16), new Uint8Array(8), 0, null, ['hi'], null]) };
    expect(reportAttachmentsCost({ reason: 1, comment: '', items: [{ ...text, attachments: [] }] })).toBe(0);
    expect(reportAttachmentsCost({ reason: 1, comment: '', items: [{ ...fileReportItem(1, p), plaintext: Uint8Array.of(0xff) }] })).toBe(0);
  });

  it('the AEAD opens one report can cause stay under MAX_REPORT_BLOB_BYTES / REPORT_CHUNK_COST_BYTES at any chunk size', async () => {
    const counting = countingBackend(b);
    // The smallest chunk size the format allows, with the largest file count the bound lets through.
    const chunkSize = 16;
    const plain = 64 * 1024;
    const sealed = sealZeroBlob(b, plain, chunkSize);
    const p = filePointer(plain, chunkSize, { key: sealed.key, digest: sealed.digest });
    const perFile = ciphertextSizeOf(plain, chunkSize) + chunkCountOf(plain, chunkSize) * REPORT_CHUNK_COST_BYTES;
    const files = Math.min(11, Math.floor(MAX_REPORT_BLOB_BYTES / perFile));
    const items = Array.from({ length: files }, (_, i) => fileReportItem(i === 0 ? 1 : 2, p, sealed.blob));
    const verdict = await verifyReportAttachments(counting.backend, { reason: 1, comment: '', items }, async () => null);
    expect(verdict).toEqual({ ok: true, checked: files });
    expect(counting.count('aeadOpen')).toBe(files * chunkCountOf(plain, chunkSize));
    expect(counting.count('aeadOpen')).toBeLessThanOrEqual(MAX_REPORT_BLOB_BYTES / REPORT_CHUNK_COST_BYTES);
    // And one file over the bound is refused whole, before its first chunk.
    counting.reset();
    const over = Math.floor(MAX_REPORT_BLOB_BYTES / (16 + REPORT_CHUNK_COST_BYTES)) * 16;
    const v2 = await verifyReportAttachments(
      counting.backend,
      { reason: 1, comment: '', items: [fileReportItem(1, filePointer(over, 16))] },
      async () => null,
    );
    expect(v2).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(counting.count('aeadOpen')).toBe(0);
  });

  it('AttachmentBlobCheck answers a reason, never throws, on any split of a real blob or of a damaged one', () => {
    const sealed = sealZeroBlob(b, 300, 16);
    const info = { key: sealed.key, digest: sealed.digest, plaintextSize: 300, ciphertextSize: sealed.blob.length, chunkSize: 16 };
    for (const step of [1, 7, 32, 33, 1000]) {
      const check = new AttachmentBlobCheck(b, info);
      for (let at = 0; at < sealed.blob.length; at += step) check.update(sealed.blob.subarray(at, at + step));
      expect(check.finish(), `step ${step}`).toBeNull();
    }
  });
});

// The blob store decides how a stored blob is cut into pieces, and on
// PostgreSQL that is the uploader: each upload request is its own row, and
// a read yields one piece per row. The check used to keep the pieces in a
// list and shift them off one by one, quadratic in the number of pieces
// per chunk: one 256 KiB chunk in 1-byte pieces took 51 s here, a 4 MiB one
// hours. It now copies each piece once into the unit it fills (the header,
// then one sealed chunk), so its work is linear in bytes however they are
// cut. The test bounds nothing by the clock: on the old code it does not
// finish within the test's time limit (a hang), on the new one it does.
describe('the blob check, fed in tiny pieces', () => {
  it('one 256 KiB chunk fed one byte at a time is checked, and a flipped byte refused', () => {
    const size = 1 << 18;
    const sealed = sealZeroBlob(b, size, size);
    const info = { key: sealed.key, digest: sealed.digest, plaintextSize: size, ciphertextSize: sealed.blob.length, chunkSize: size };
    const check = new AttachmentBlobCheck(b, info);
    for (let at = 0; at < sealed.blob.length; at++) check.update(sealed.blob.subarray(at, at + 1));
    expect(check.finish()).toBeNull();
    const bad = sealed.blob.slice();
    bad[bad.length - 100] = (bad[bad.length - 100] as number) ^ 1;
    const again = new AttachmentBlobCheck(b, info);
    for (let at = 0; at < bad.length; at++) again.update(bad.subarray(at, at + 1));
    expect(again.finish()).toBe('chunk-auth');
  }, 15_000);
});
