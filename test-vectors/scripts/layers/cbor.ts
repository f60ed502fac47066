/**
 * cbor.json: the strict decoding rules of spec/01-conventions.md §2.2, one
 * input per rule. Valid inputs decode to `value` and re-encode to the same
 * bytes; every other input is refused, MALFORMED (or OVERSIZED above the
 * limit) before any structure is read. Structure-level cases (a map or a tag
 * inside a certificate, ...) live in the files of those structures.
 */
import { type CborValue, PROTOCOL_VERSION, decodeCbor, fromHex } from '@parley/core';
import { type Json, type TestCase, type VectorFile, finish, hex } from '../lib/vector-file.ts';

/** The byte limit the group's decoder is called with. */
const MAX_BYTES = 64;

/** A decoded value as JSON: byte strings as { bytes: hex }, text as { text }, arrays, numbers, booleans, null. */
export function cborJson(v: CborValue): Json {
  if (v instanceof Uint8Array) return { bytes: hex(v) };
  if (typeof v === 'string') return { text: v };
  if (Array.isArray(v)) return v.map(cborJson);
  return v as Json;
}

const nest = (depth: number, inner: string) => '81'.repeat(depth) + inner;

const VALID: readonly [string, string][] = [
  ['00', 'integer 0'],
  ['17', 'integer 23, the largest inline'],
  ['1818', 'integer 24, the smallest one-byte form'],
  ['19ffff', 'integer 65535'],
  ['1affffffff', 'integer 2^32 - 1, the largest Parley integer'],
  ['40', 'empty byte string'],
  ['4401020304', 'byte string of 4 bytes'],
  ['60', 'empty text string'],
  ['63e282ac', 'text "€" (3-byte UTF-8)'],
  ['64f09f9880', 'text U+1F600 (4-byte UTF-8)'],
  ['f4', 'false'],
  ['f5', 'true'],
  ['f6', 'null'],
  ['80', 'empty array'],
  ['8301f64100', 'array [1, null, h"00"]'],
  [nest(8, '00'), 'an integer enclosed in 8 arrays (the deepest nesting allowed)'],
  [nest(8, '80'), 'an empty array enclosed in 8 arrays (its depth is 8: an array with no items nests no deeper)'],
];

/** The byte limit of the text group: room for text strings longer than 64 bytes. */
const TEXT_MAX_BYTES = 1024;

const textHead = (n: number): string =>
  n < 24 ? (0x60 + n).toString(16) : n < 256 ? `78${n.toString(16).padStart(2, '0')}` : `79${n.toString(16).padStart(4, '0')}`;
const text = (utf8Hex: string): string => textHead(utf8Hex.length / 2) + utf8Hex;
const BOM = 'efbbbf';

/**
 * Text strings are kept exactly as their UTF-8 bytes say: a leading U+FEFF (EF BB BF) is a character of
 * the text, not a byte-order mark to drop (core's decoder before session 6 dropped it from strings
 * longer than 64 bytes, then refused them as non-canonical). Lengths on both sides of 64 bytes.
 */
const VALID_TEXT: readonly [string, string][] = [
  [text(`${BOM}61`), 'text U+FEFF "a" (4 bytes): the leading U+FEFF is part of the value'],
  [text(`${BOM}${'61'.repeat(61)}`), 'text U+FEFF then 61 "a" (64 bytes)'],
  [text(`${BOM}${'61'.repeat(62)}`), 'text U+FEFF then 62 "a" (65 bytes): the leading U+FEFF is part of the value at every length'],
  [text(`${BOM}${'c3a9'.repeat(100)}`), 'text U+FEFF then 100 "é" (203 bytes)'],
  [text(`${BOM}${BOM}${'62'.repeat(80)}`), 'text of two U+FEFF then 80 "b" (86 bytes): both are kept'],
  [
    `82${text(`${'63'.repeat(80)}${BOM}`)}${text(`${BOM}${'64'.repeat(70)}`)}`,
    'array of two texts, one ending and one starting with U+FEFF',
  ],
  [text('61'.repeat(300)), 'text of 300 "a" (a two-byte length)'],
  [text(`efbfbf${'61'.repeat(70)}`), 'text starting with the noncharacter U+FFFF (valid UTF-8, kept)'],
];

const INVALID_TEXT: readonly [string, string][] = [
  [text(`${BOM.slice(0, 4)}${'61'.repeat(70)}`), 'text starting with a truncated U+FEFF (EF BB without its last byte)'],
  [text(`feff${'00'.repeat(70)}`), 'text starting with the UTF-16 byte-order mark FE FF (never valid UTF-8)'],
];

const INVALID: readonly [string, string][] = [
  ['', 'empty input'],
  ['0000', 'trailing byte after a complete item'],
  ['1817', 'integer 23 in the one-byte form (not the shortest)'],
  ['190017', 'integer 23 in the two-byte form'],
  ['1a0000ffff', 'integer 65535 in the four-byte form'],
  ['1b0000000100000000', 'integer 2^32 (8-byte form)'],
  ['1b0000000000000001', 'integer 1 in the 8-byte form'],
  ['20', 'negative integer -1'],
  ['3903e7', 'negative integer -1000'],
  ['580100', 'byte string of 1 byte with a one-byte length (not the shortest)'],
  ['5f4101ff', 'indefinite-length byte string'],
  ['7f6161ff', 'indefinite-length text string'],
  ['9f01ff', 'indefinite-length array'],
  ['bfff', 'indefinite-length map'],
  ['ff', 'a lone break code'],
  ['a0', 'empty map'],
  ['a10102', 'map {1: 2}'],
  ['c11a00000001', 'tag 1 (epoch time) on an integer'],
  ['c24101', 'tag 2 (bignum) on a byte string'],
  ['d8404101', 'tag 64 (typed array) on a byte string'],
  ['d9d9f700', 'tag 55799 (self-described CBOR) on an integer'],
  ['8101c0f6', 'tag 0 on null inside an array'],
  ['62c328', 'text with invalid UTF-8 (0xc3 0x28: a lead byte without its continuation)'],
  ['62c080', 'text with an overlong UTF-8 encoding of U+0000'],
  ['63eda080', 'text with a UTF-8-encoded surrogate (U+D800)'],
  ['61ff', 'text with the byte 0xff'],
  ['f7', 'undefined'],
  ['8101f7', 'undefined inside an array'],
  ['f0', 'simple value 16'],
  ['f820', 'simple value 32 (one-byte form)'],
  ['f93c00', 'float16 1.0'],
  ['fa3f800000', 'float32 1.0'],
  ['fb3ff0000000000000', 'float64 1.0'],
  ['fb41f0000000000000', 'float64 2^32 (an integral value beyond the range)'],
  [nest(9, '00'), 'an integer enclosed in 9 arrays (deeper than 8)'],
  [nest(9, '80'), 'an empty array enclosed in 9 arrays'],
  ['f814', 'false in the two-byte simple-value form (RFC 8949 §3.3 forbids it)'],
  ['f98000', 'float16 -0.0 (a value a lenient walk may take for the integer 0)'],
  ['f97c00', 'float16 infinity'],
  ['f97e00', 'float16 NaN'],
  ['c480', 'tag 4 (decimal fraction) on an empty array'],
  ['5b000000000000000100', 'byte string of 1 byte with an 8-byte length'],
  ['a201020103', 'map with a duplicate key {1: 2, 1: 3}'],
  ['a202000100', 'map with keys out of order {2: 0, 1: 0}'],
  ['64f4908080', 'text with a code point above U+10FFFF (f4 90 80 80)'],
  ['66eda0bdedb880', 'text with a surrogate pair encoded as two 3-byte sequences (CESU-8)'],
  ['65f888808080', 'text with a 5-byte sequence'],
  ['82', 'array of 2 with no items (truncated)'],
  ['4401', 'byte string shorter than its length (truncated)'],
];

export function cborFile(): string {
  const valid: TestCase[] = VALID.map(([input, comment]) => ({
    comment,
    input,
    value: cborJson(decodeCbor(fromHex(input), 'cbor.json', MAX_BYTES) as CborValue),
    result: 'valid',
  }));
  const invalid: TestCase[] = INVALID.map(([input, comment]) => ({ comment, input, result: 'invalid', error: 'MALFORMED' }));
  const textTests: TestCase[] = [
    ...VALID_TEXT.map(
      ([input, comment]): TestCase => ({
        comment,
        input,
        value: cborJson(decodeCbor(fromHex(input), 'cbor.json', TEXT_MAX_BYTES) as CborValue),
        result: 'valid',
      }),
    ),
    ...INVALID_TEXT.map(([input, comment]): TestCase => ({ comment, input, result: 'invalid', error: 'MALFORMED' })),
  ];
  invalid.push({
    comment: `a valid byte string of ${MAX_BYTES + 1} bytes in all: over the limit, refused before parsing`,
    input: `583f${'00'.repeat(MAX_BYTES - 1)}`,
    result: 'invalid',
    error: 'OVERSIZED',
  });
  const file: VectorFile = {
    description:
      'Deterministic CBOR: the inputs a strict decoder accepts (with the decoded value) and those it refuses, one per rule of spec/01-conventions.md §2.2.',
    spec: 'spec/01-conventions.md §2',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      value:
        'A decoded value in JSON: a byte string is {"bytes": hex}, a text string is {"text": string}, an array a JSON array, an unsigned integer a number, and true, false, null themselves.',
      limit: `Every input is decoded with a byte limit of maxBytes (the group's field); an input longer than that is OVERSIZED without being parsed.`,
    },
    testGroups: [
      {
        type: 'CborDecoding',
        spec: 'spec/01-conventions.md §2.1-§2.2',
        description:
          'Valid: decoding input (at most maxBytes) gives value, and encoding value gives input back. Invalid: decoding input fails with error, before any structure-level field reader runs.',
        maxBytes: MAX_BYTES,
        tests: [...valid, ...invalid],
      },
      {
        type: 'CborDecoding',
        spec: 'spec/01-conventions.md §2.1-§2.2',
        description:
          'Text strings on both sides of 64 bytes: a valid text decodes to exactly the characters its UTF-8 bytes encode, a leading U+FEFF included (it is not a byte-order mark to strip), and encodes back to the input.',
        maxBytes: TEXT_MAX_BYTES,
        tests: textTests,
      },
    ],
  };
  return finish(file);
}
