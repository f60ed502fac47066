/**
 * The attachment pointer's content-type rule, exactly as spec/11-attachments.md
 * §5 states it: at most MAX_CONTENT_TYPE_LENGTH (255) bytes of UTF-8, checked
 * first (OVERSIZED), then `type "/" subtype [ *SP ";" params ]` with type and
 * subtype 1+ characters in 0x21-0x7E and params 0+ characters in 0x20-0x7E
 * (MALFORMED otherwise). Each case goes through the encoder (refuses what the
 * decoder would, as a RangeError naming the code) and, encoded by hand,
 * through the decoder.
 */
import { encodeCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { decodeAttachmentPointer, encodeAttachmentPointer, isAttachmentError } from '../src/attachments/index.ts';

const base = {
  id: 'AbC-123_xyz',
  key: new Uint8Array(32).fill(1),
  digest: new Uint8Array(32).fill(2),
  plaintextSize: 43,
  ciphertextSize: 147,
  chunkSize: 16,
};

/** The pointer encoded by hand, so the decoder sees the content type whatever the encoder would say. */
function rawPointer(contentType: string): Uint8Array {
  return encodeCbor([1, base.id, base.key, base.digest, base.plaintextSize, base.ciphertextSize, base.chunkSize, contentType, null]);
}

/** 'ok' or the code of the bad-pointer error, from the decoder and from the encoder (which must agree). */
function verdict(contentType: string): string {
  const outcome = (fn: () => unknown) => {
    try {
      fn();
      return 'ok';
    } catch (e) {
      if (isAttachmentError(e, 'bad-pointer')) return e.code;
      throw e;
    }
  };
  const decoded = outcome(() => decodeAttachmentPointer(rawPointer(contentType)));
  // The encoder reports the same refusal as caller misuse: a RangeError naming the code.
  let encoded = 'ok';
  try {
    encodeAttachmentPointer({ ...base, contentType });
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    encoded = /cannot encode pointer: ([A-Z_]+):/.exec(e.message)?.[1] ?? e.message;
  }
  expect(encoded, `encoder and decoder disagree on ${JSON.stringify(contentType)}`).toBe(decoded);
  return decoded;
}

describe('attachment pointer content type (spec 11 §5)', () => {
  it('accepts printable ASCII of the form type/subtype with optional ;-parameters', () => {
    for (const ok of [
      'image/jpeg',
      'text/plain; charset=utf-8',
      'text/plain;charset=utf-8',
      'text/plain  ;  a=b  ',
      'text/plain;',
      'application/vnd.example+json',
      'a/b/c', // "/" and ";" are not excluded from type and subtype
      `a/${'b'.repeat(253)}`, // 255 bytes
    ]) {
      expect(verdict(ok), ok).toBe('ok');
    }
  });

  it('refuses anything else as MALFORMED', () => {
    for (const bad of [
      '',
      'text',
      'text/',
      '/plain',
      ' text/plain',
      'text /plain',
      'text/ plain',
      'text/plain charset=utf-8', // a space must lead to ";"
      'text/plain\t;a=b',
      'text/plain;\u0007',
      'text/plain\n',
      'text/pl\u00e4in',
      'text/plain; name=\u00e9',
    ]) {
      expect(verdict(bad), JSON.stringify(bad)).toBe('MALFORMED');
    }
  });

  it('measures the 255-byte limit in UTF-8 bytes, before the grammar: OVERSIZED even when the grammar would also fail', () => {
    expect(verdict(`a/${'b'.repeat(254)}`)).toBe('OVERSIZED'); // 256 ASCII bytes
    // 130 characters, 258 bytes: over the limit in bytes although not in characters.
    expect(verdict(`a/${'\u00e9'.repeat(128)}`)).toBe('OVERSIZED');
    // 100 characters, 199 bytes: within the limit, so the grammar decides.
    expect(verdict(`a/${'\u00e9'.repeat(98)}`)).toBe('MALFORMED');
  });
});
