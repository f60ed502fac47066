// The reported-file check (spec/14-franking.md §6 step 5) against the
// attachment vectors (test-vectors/attachments.json): every valid
// encryption is accepted whole and fed one byte at a time; every invalid
// decryption vector (truncated, trailing data, bad header, wrong key, a
// chunk that does not authenticate, a digest mismatch) is refused. The
// check holds at most one sealed chunk, whatever the feeding.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AttachmentBlobCheck, checkAttachmentBlob } from '../src/attachment/check.ts';
import { contentAttachmentPointers } from '../src/attachment/content.ts';
import { decodePointerFields } from '../src/attachment/pointer.ts';
import type { ReportItem } from '../src/franking/report.ts';
import { MAX_REPORT_BLOB_BYTES, verifyReportAttachments } from '../src/franking/report-attachments.ts';
import { fromHex, toHex } from '../src/bytes.ts';
import { encodeCbor } from '../src/codec/cbor.ts';
import { defaultProvider } from '../src/crypto/provider.ts';
import { filePointer, fileReportItem } from './support/attachment-fixtures.ts';

const b = defaultProvider().backend;
type Vector = Record<string, string>;
const groups = (
  JSON.parse(readFileSync(new URL('../../../test-vectors/attachments.json', import.meta.url), 'utf8')) as {
    testGroups: { type: string; tests: Vector[] }[];
  }
).testGroups;
const tests = (type: string) => groups.filter((g) => g.type === type).flatMap((g) => g.tests);
const infoOf = (t: Vector) => ({
  key: fromHex(t.key as string),
  digest: fromHex(t.digest as string),
  plaintextSize: Number(t.plaintextSize),
  ciphertextSize: Number(t.ciphertextSize),
  chunkSize: Number(t.chunkSize),
});

describe('AttachmentBlobCheck', () => {
  it('accepts every valid vector, whole and one byte at a time', () => {
    const valid = tests('AttachmentEncryption').filter((t) => t.result === 'valid');
    expect(valid.length).toBeGreaterThan(3);
    for (const t of valid) {
      const blob = fromHex(t.ciphertext as string);
      expect(checkAttachmentBlob(b, infoOf(t), blob), t.comment).toBeNull();
      const check = new AttachmentBlobCheck(b, infoOf(t));
      for (const byte of blob) check.update(Uint8Array.of(byte));
      expect(check.finish(), t.comment).toBeNull();
    }
  });

  it('refuses every invalid decryption vector', () => {
    const invalid = tests('AttachmentDecryption').filter((t) => t.result === 'invalid');
    expect(invalid.length).toBeGreaterThan(3);
    for (const t of invalid) {
      let info: ReturnType<typeof infoOf>;
      try {
        info = infoOf(t);
        const failure = checkAttachmentBlob(b, info, fromHex(t.ciphertext as string));
        expect(failure, `${t.tcId} ${t.comment}`).not.toBeNull();
      } catch (e) {
        // A vector whose key info itself is invalid is refused when the check is made.
        expect((e as { code?: string }).code, `${t.tcId} ${t.comment}`).toMatch(/MALFORMED|OVERSIZED/);
      }
    }
  });

  it('names what failed: a flipped header, chunk or extra byte, and another key', () => {
    const t = tests('AttachmentEncryption').find((v) => v.result === 'valid' && Number(v.plaintextSize) > 32) as Vector;
    const blob = fromHex(t.ciphertext as string);
    const flip = (at: number) => {
      const copy = blob.slice();
      copy[at] = (copy[at] as number) ^ 1;
      return copy;
    };
    expect(checkAttachmentBlob(b, infoOf(t), flip(0))).toBe('header');
    expect(checkAttachmentBlob(b, infoOf(t), flip(30))).toBe('wrong-key');
    expect(checkAttachmentBlob(b, infoOf(t), flip(blob.length - 1))).toBe('chunk-auth');
    expect(checkAttachmentBlob(b, infoOf(t), Uint8Array.of(...blob, 0))).toBe('length');
    expect(checkAttachmentBlob(b, infoOf(t), blob.subarray(0, blob.length - 1))).toBe('length');
    expect(checkAttachmentBlob(b, { ...infoOf(t), key: b.randomBytes(32) }, blob)).toBe('wrong-key');
    expect(checkAttachmentBlob(b, { ...infoOf(t), digest: new Uint8Array(32) }, blob)).toBe('digest');
  });
});

describe('contentAttachmentPointers', () => {
  const pointer = fromHex((tests('AttachmentPointer').find((t) => t.result === 'valid') as Vector).encoding as string);
  const content = (version: number, type: number, body: unknown[]) =>
    encodeCbor([version, type, new Uint8Array(16), new Uint8Array(8), 0, null, body as never, null]);

  it('finds the pointer of a v1 or v2 file message, and none elsewhere', () => {
    expect(decodePointerFields(pointer).id).toBeTruthy();
    const hex = (c: Uint8Array) => contentAttachmentPointers(c).map(toHex);
    expect(hex(content(1, 2, [pointer, 'caption']))).toEqual([toHex(pointer)]);
    expect(hex(content(2, 2, [pointer, '']))).toEqual([toHex(pointer)]);
    expect(contentAttachmentPointers(content(1, 1, ['text']))).toEqual([]);
    expect(contentAttachmentPointers(content(3, 2, [pointer, '']))).toEqual([]);
    expect(contentAttachmentPointers(Uint8Array.of(0xff, 0x00))).toEqual([]);
  });
});

describe('verifyReportAttachments bounds', () => {
  it('refuses files above MAX_REPORT_BLOB_BYTES before reading any blob', async () => {
    const size = 100 * 1024 * 1024;
    const pointer = filePointer(size, 1 << 16, { id: 'AAAAAAAAAAAAAAAAAAAAAA' });
    const item = (role: 1 | 2): ReportItem => fileReportItem(role, pointer);
    let reads = 0;
    const v = await verifyReportAttachments(b, { reason: 1, comment: '', items: [item(1), item(2), item(2)] }, async () => {
      reads++;
      return null;
    });
    expect(v).toEqual({ ok: false, code: 'PAYLOAD_TOO_LARGE', item: 2, reason: 'too-large' });
    expect(MAX_REPORT_BLOB_BYTES).toBeLessThan(3 * size);
    expect(reads).toBe(0);
  });
});
