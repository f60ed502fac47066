/**
 * padding.json: the padded length for plaintext lengths around every
 * boundary, full padded bytes for short plaintexts, and padded plaintexts a
 * receiver must refuse. Pins spec/04-double-ratchet.md §5.
 */
import { PROTOCOL_VERSION, pad, paddedLength, unpad, utf8 } from '@parley/core';
import type { Cast } from '../lib/cast.ts';
import { type TestCase, type VectorFile, finish, hex } from '../lib/vector-file.ts';

const LENGTHS_WITH_BYTES = [0, 1, 2, 158, 159, 160, 318, 319];
const LENGTHS_ONLY = [4094, 4095, 4096, 4097, 5000, 8191, 8192, 65535, 65536, 100000, 1048575, 1048576];

export function paddingFile(cast: Cast): string {
  const full: TestCase[] = LENGTHS_WITH_BYTES.map((n) => {
    const plaintext = cast.rng.value(`padding.plaintext${n}`, n);
    const padded = pad(plaintext);
    return {
      comment: `${n}-byte plaintext`,
      plaintextLength: n,
      paddedLength: padded.length,
      plaintext: hex(plaintext),
      padded: hex(padded),
      result: 'valid',
    };
  });
  const trailing = Uint8Array.of(...utf8('ends in 0x80 and 0x00'), 0x80, 0x00, 0x00);
  full.push({
    comment: 'plaintext whose own last bytes are 0x80 0x00 0x00 (only the last 0x80 before the zero run is the marker)',
    plaintextLength: trailing.length,
    paddedLength: pad(trailing).length,
    plaintext: hex(trailing),
    padded: hex(pad(trailing)),
    result: 'valid',
  });
  const lengths: TestCase[] = LENGTHS_ONLY.map((n) => ({
    comment: `${n}-byte plaintext`,
    plaintextLength: n,
    paddedLength: paddedLength(n + 1),
    result: 'valid',
  }));
  const lenient = Uint8Array.of(...utf8('hi'), 0x80, 0, 0, 0);
  const unpadValid: TestCase[] = [
    {
      comment: 'a receiver accepts any padded length (the sender alone chooses it)',
      padded: hex(lenient),
      plaintext: hex(unpad(lenient)),
      result: 'valid',
    },
  ];
  const invalid = (comment: string, padded: Uint8Array): TestCase => ({
    comment,
    padded: hex(padded),
    result: 'invalid',
    error: 'BAD_PADDING',
  });
  const file: VectorFile = {
    description: 'Plaintext padding: the padded length, the padded bytes, and padded plaintexts that must be refused.',
    spec: 'spec/04-double-ratchet.md §5',
    version: 1,
    protocolVersion: PROTOCOL_VERSION,
    notes: {
      rule: 'padded = plaintext || 0x80 || 0x00 ... up to paddedLength(len(plaintext) + 1): below or at 4096 bytes the next multiple of 160 (at least 160); above, Padme.',
      randomness: 'The plaintext bytes are arbitrary fixed bytes.',
    },
    testGroups: [
      {
        type: 'Pad',
        spec: 'spec/04-double-ratchet.md §5',
        description: 'pad(plaintext) = padded; removing the padding gives plaintext back.',
        tests: full,
      },
      {
        type: 'PaddedLength',
        spec: 'spec/04-double-ratchet.md §5',
        description: 'The padded length of a plaintext of plaintextLength bytes.',
        tests: lengths,
      },
      {
        type: 'Unpad',
        spec: 'spec/04-double-ratchet.md §5',
        description: 'Removing padding: strip the trailing zero bytes, then one 0x80 byte. Invalid: that must fail with the error.',
        tests: [
          ...unpadValid,
          invalid('all zero: no marker', new Uint8Array(160)),
          invalid('empty', new Uint8Array(0)),
          invalid('last non-zero byte is 0x01, not the marker', Uint8Array.of(...utf8('hi'), 0x80, 0x01, 0, 0)),
          invalid('no zero run and no marker', utf8('no padding at all')),
        ],
      },
    ],
  };
  return finish(file);
}
