/**
 * The content format (spec/10-client.md §3): every type round-trips, the
 * encoding is the one the spec gives byte by byte, and bad input is a typed
 * error, never a crash.
 */
import { ParleyError, decodeCbor, encodeCbor, fields, toHex } from '@parley/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeAttachmentPointer } from '../src/attachments/index.ts';
import {
  type Content,
  type ContentBody,
  MAX_RECEIPT_IDS,
  MAX_TEXT_BYTES,
  attachmentInfo,
  decodeContent,
  encodeContent,
} from '../src/content/content.ts';

const id = new Uint8Array(16).fill(0xab);
const group = new Uint8Array(32).fill(0x47);
const account = new Uint8Array(32).fill(0x11);
const pointer = encodeAttachmentPointer({
  id: 'AAAAAAAAAAAAAAAAAAAAAA',
  key: new Uint8Array(32).fill(1),
  digest: new Uint8Array(32).fill(2),
  plaintextSize: 10,
  ciphertextSize: 56 + 10 + 16,
  chunkSize: 65536,
  fileName: 'a.txt',
  contentType: 'text/plain',
});

const base = (body: ContentBody, extra: Partial<Content> = {}): Content => ({
  messageId: id,
  sentAt: 1_700_000_000_123,
  expireTimer: 0,
  group: null,
  body,
  deviceList: null,
  ...extra,
});

const inner = base({ type: 'text', text: 'hi' });
const state = {
  revision: 3,
  name: 'g',
  members: [account],
  admins: [account],
  parent: new Uint8Array(32).fill(5),
  author: account,
  epoch: 2,
};
const samples: Content[] = [
  base({ type: 'text', text: 'héllo 👋' }, { expireTimer: 3600 }),
  base({ type: 'attachment', attachment: attachmentInfo(pointer), caption: 'see' }),
  base({ type: 'receipt', kind: 'delivered', messageIds: [id, new Uint8Array(16)] }),
  base({ type: 'receipt', kind: 'read', messageIds: [id] }),
  base({ type: 'typing', typing: true }),
  base({ type: 'retry', clientId: 'q6urq6urq6urq6urq6urqw.r1' }),
  base({ type: 'sync', destination: account, content: inner }),
  base({ type: 'distribution', distribution: Uint8Array.of(1, 2, 3), state }, { group }),
  base({ type: 'group-update', state }, { group }),
  base({ type: 'device-list' }, { deviceList: Uint8Array.of(9, 9) }),
  base({ type: 'timer' }, { expireTimer: 60 }),
  base({ type: 'text', text: 'in a group' }, { group }),
];

describe('content codec', () => {
  it('round-trips text that starts with U+FEFF, short and long (the old decoder refused the long ones as non-canonical)', () => {
    for (const text of ['\ufeffhi', `\ufeff${'long text '.repeat(20)}`, `\ufeff${'é'.repeat(100)}`]) {
      const c = base({ type: 'text', text });
      const back = decodeContent(encodeContent(c));
      expect(back.body).toEqual({ type: 'text', text });
    }
  });

  it('round-trips every type', () => {
    for (const c of samples) {
      const bytes = encodeContent(c);
      const back = decodeContent(bytes);
      expect(toHex(encodeContent(back))).toBe(toHex(bytes));
      expect(back.body.type).toBe(c.body.type);
    }
  });

  it('encodes a text message exactly as spec/10-client.md §3.4 shows', () => {
    const bytes = encodeContent(base({ type: 'text', text: 'hi' }, { sentAt: 0x0102030405, expireTimer: 30 }));
    expect(toHex(bytes)).toBe(`880101 50${'ab'.repeat(16)} 48 0000000102030405 181e f6 8162 6869 f6`.replace(/ /g, ''));
  });

  it('refuses unknown versions and types as UNSUPPORTED_VERSION', () => {
    const text = encodeContent(base({ type: 'text', text: 'x' }));
    const f = [2, ...decodeFields(text).slice(1)];
    expect(() => decodeContent(encodeCbor(f as never))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }));
    const g = decodeFields(text);
    g[1] = 99;
    expect(() => decodeContent(encodeCbor(g as never))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_VERSION' }));
  });

  it('refuses shape errors: a sync inside a sync, a distribution without a group, a device-list without a list', () => {
    const sync = base({ type: 'sync', destination: account, content: inner });
    const nested = base({ type: 'sync', destination: account, content: sync });
    expect(() => encodeContent(nested)).toThrow(ParleyError);
    expect(() => encodeContent(base({ type: 'distribution', distribution: Uint8Array.of(1), state }))).toThrow(ParleyError);
    expect(() => encodeContent(base({ type: 'device-list' }))).toThrow(ParleyError);
    expect(() => encodeContent(base({ type: 'sync', destination: null, content: inner }))).toThrow(ParleyError);
  });

  it("reads fields with core's codes: an over-long array is MALFORMED, text over its UTF-8 byte bound OVERSIZED", () => {
    // The client's readers are core's (content/fields.ts): the same input gets the same code in both.
    const receipt = decodeFields(encodeContent(base({ type: 'receipt', kind: 'read', messageIds: [id] })));
    receipt[6] = [1, Array.from({ length: MAX_RECEIPT_IDS + 1 }, () => id)];
    expect(() => decodeContent(encodeCbor(receipt as never))).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    expect(() => fields.readArray([1, 2, 3], 'x', { min: 0, max: 2 })).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
    // Within the bound in UTF-16 code units, over it in UTF-8 bytes: the byte bound is what holds.
    const text = decodeFields(encodeContent(base({ type: 'text', text: 'x' })));
    text[6] = ['\u00e9'.repeat(MAX_TEXT_BYTES / 2 + 1)];
    expect(() => decodeContent(encodeCbor(text as never))).toThrow(expect.objectContaining({ code: 'OVERSIZED' }));
  });

  it('turns any byte string into a content or a ParleyError, never anything else (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          decodeContent(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(ParleyError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('survives mutations of valid contents with typed errors only (property)', () => {
    const valid = samples.map(encodeContent);
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }), (bytes, at, value) => {
        const mutated = bytes.slice();
        mutated[at % mutated.length] = value;
        try {
          decodeContent(mutated);
        } catch (e) {
          expect(e).toBeInstanceOf(ParleyError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

/** The top-level fields of an encoded content, through core's strict decoder. */
function decodeFields(bytes: Uint8Array): unknown[] {
  return [...(decodeCbor(bytes, 'test', 1 << 20) as unknown[])];
}
