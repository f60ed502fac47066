/**
 * The shape every vector file shares (test-vectors/README.md "Format"),
 * and the one serializer, so the bytes of a file depend only on its content.
 */
import { toHex } from '@parley/core';

/** Bump when the shape of the files changes (not when a protocol byte changes: that is PROTOCOL_VERSION's job). */
export const VECTOR_FORMAT_VERSION = 1;

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export interface TestCase {
  tcId?: number;
  comment: string;
  result: 'valid' | 'invalid';
  /** Invalid cases that must fail with a ParleyError: its code. */
  error?: string;
  [field: string]: Json | undefined;
}

export interface TestGroup {
  type: string;
  /** The spec section this group pins. */
  spec: string;
  description: string;
  [field: string]: Json | TestCase[];
  tests: TestCase[];
}

export interface VectorFile {
  description: string;
  spec: string;
  version: number;
  protocolVersion: number;
  notes: Record<string, string>;
  testGroups: TestGroup[];
}

/** The note every file with a case flagged as a known deviation carries. */
export const DEVIATION_NOTE =
  'knownDeviation marks a case where the reference code still deviates from the specification (spec/README.md, "Review findings", table "Open"): the case states what the specification requires (result, error), and knownDeviation says on which crypto backends the reference code does otherwise (v1Error: the code it raises instead, or null when it accepts the input). A conforming implementation follows error.';

/** Lowercase hex, the only encoding of bytes in the files. */
export const hex = (b: Uint8Array): string => toHex(b);

/** Numbers the tests of a file 1..n in order and adds the count, Wycheproof-style. */
export function finish(file: VectorFile): string {
  let id = 0;
  for (const g of file.testGroups) for (const t of g.tests) t.tcId = ++id;
  const ordered = {
    description: file.description,
    spec: file.spec,
    version: file.version,
    protocolVersion: file.protocolVersion,
    numberOfTests: id,
    notes: file.notes,
    testGroups: file.testGroups.map((g) => {
      const { type, spec, description, tests, ...rest } = g;
      return { type, spec, description, ...rest, tests: tests.map(({ tcId, comment, ...t }) => ({ tcId, comment, ...t })) };
    }),
  };
  return `${JSON.stringify(ordered, null, 2).replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/**
 * Characters a reader of a vector file cannot see (zero-width and format characters, U+FEFF, line and
 * paragraph separators) are written as JSON escapes: the same string to a JSON parser, visible in the file.
 */
const INVISIBLE = /[\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff]/g;
