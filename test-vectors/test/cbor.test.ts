// cbor.json through core's decodeCbor / encodeCbor and the one-pass readCbor (spec/01-conventions.md §2).
import { type CborValue, decodeCbor, encodeCbor, readCbor } from '@parley/core';
import { describe, expect, it } from 'vitest';
import { cborJson } from '../scripts/layers/cbor.ts';
import { type Vec, bytes, expectParleyError, hexOf, loadVectors, testsOf } from './support.ts';

const file = loadVectors('cbor.json');

/** The JSON form of cbor.json back to a value, independently of the generator's cborJson. */
function fromJson(v: Vec): CborValue {
  if (Array.isArray(v)) return v.map(fromJson);
  if (v !== null && typeof v === 'object') return 'bytes' in v ? bytes(v.bytes) : (v.text as string);
  return v;
}

describe('cbor.json', () => {
  const cases = testsOf(file, 'CborDecoding');

  it('decodes every valid input to its value, and encodes the value back to the input', () => {
    for (const { group, test } of cases.filter(({ test }) => test.result === 'valid')) {
      const value = decodeCbor(bytes(test.input), 'vector', group.maxBytes) as CborValue;
      expect(cborJson(value), test.comment).toEqual(test.value);
      expect(cborJson(readCbor(bytes(test.input), 'vector', group.maxBytes) as CborValue), test.comment).toEqual(test.value);
      expect(hexOf(encodeCbor(fromJson(test.value))), test.comment).toBe(test.input);
    }
  });

  it('refuses every invalid input with its code', () => {
    const invalid = cases.filter(({ test }) => test.result === 'invalid');
    expect(invalid.length).toBeGreaterThan(30);
    for (const { group, test } of invalid) {
      expectParleyError(() => decodeCbor(bytes(test.input), 'vector', group.maxBytes), test.error);
      expectParleyError(() => readCbor(bytes(test.input), 'vector', group.maxBytes), test.error);
    }
  });
});
