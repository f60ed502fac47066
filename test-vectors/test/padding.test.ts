// padding.json through core's pad / unpad / paddedLength.
import { pad, paddedLength, unpad } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { bytes, expectRefusal, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('padding.json');

describe('padding.json', () => {
  it('pads short plaintexts to the listed bytes and back', () => {
    for (const { test } of testsOf(file, 'Pad')) {
      const padded = pad(bytes(test.plaintext));
      expect(hexOf(padded)).toBe(test.padded);
      expect(padded.length).toBe(test.paddedLength);
      expect(hexOf(unpad(padded))).toBe(test.plaintext);
    }
  });

  it('gives the listed padded length around every boundary', () => {
    for (const { test } of testsOf(file, 'PaddedLength')) {
      expect(paddedLength(test.plaintextLength + 1), test.comment).toBe(test.paddedLength);
      expect(pad(new Uint8Array(test.plaintextLength)).length).toBe(test.paddedLength);
    }
  });

  it('removes valid padding and refuses invalid padding', () => {
    for (const { test } of testsOf(file, 'Unpad')) {
      if (test.result === 'valid') expect(hexOf(unpad(bytes(test.padded)))).toBe(test.plaintext);
      else expectRefusal(() => unpad(bytes(test.padded)), test, null);
    }
  });
});
