/** Assertions for the checkers: each failure names the field and both values. */
import { ProtocolError } from './errors.mjs';
import { toHex } from './hex.mjs';

export class Mismatch extends Error {}

const short = (s) => (s.length > 80 ? `${s.slice(0, 40)}...${s.slice(-16)} (${s.length / 2} bytes)` : s);

/** `actual` (bytes, number, string, boolean or null) must equal the vector's value (bytes given as hex). */
export function same(what, actual, expected) {
  const bytes = actual instanceof Uint8Array;
  const a = bytes ? toHex(actual) : JSON.stringify(actual);
  const e = bytes ? (expected instanceof Uint8Array ? toHex(expected) : String(expected)) : JSON.stringify(expected);
  if (a !== e) throw new Mismatch(`${what}: computed ${short(a)}, vector has ${short(e)}`);
}

export function truth(what, condition) {
  if (!condition) throw new Mismatch(what);
}

/** `fn` must refuse with the error code. */
export function refuses(what, fn, code) {
  try {
    fn();
  } catch (e) {
    if (e instanceof ProtocolError) {
      if (e.code !== code) throw new Mismatch(`${what}: refused with ${e.code} (${e.message}), vector expects ${code}`);
      return;
    }
    throw e;
  }
  throw new Mismatch(`${what}: accepted, vector expects ${code}`);
}

/** Runs every test of a file and collects failures. */
export class FileCheck {
  constructor(name, vectors) {
    this.name = name;
    this.vectors = vectors;
    this.count = 0;
    this.failures = [];
  }

  groups(type) {
    const groups = this.vectors.testGroups.filter((g) => g.type === type);
    if (groups.length === 0) this.failures.push({ tcId: null, message: `no test group of type ${type}` });
    return groups;
  }

  run(test, fn) {
    this.count++;
    try {
      fn();
      if (test.result !== 'valid' && test.result !== 'invalid') throw new Mismatch(`unknown result ${test.result}`);
    } catch (e) {
      this.failures.push({
        tcId: test.tcId,
        comment: test.comment,
        message: e instanceof Mismatch ? e.message : `${e.name}: ${e.message}`,
      });
    }
  }

  /** Every test of the file must have been run. */
  finish() {
    const total = this.vectors.testGroups.reduce((n, g) => n + g.tests.length, 0);
    if (total !== this.count) this.failures.push({ tcId: null, message: `ran ${this.count} of ${total} tests` });
    if (this.vectors.numberOfTests !== total)
      this.failures.push({ tcId: null, message: `numberOfTests says ${this.vectors.numberOfTests}, file has ${total}` });
    return { file: this.name, tests: this.count, failures: this.failures };
  }
}
