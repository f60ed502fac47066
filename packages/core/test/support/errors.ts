// Assertions on ParleyError codes, shared by the core test files.
import { expect } from 'vitest';
import { ParleyError, toHex } from '../../src/index.ts';

/** The code of the ParleyError `fn` throws, or 'NO_ERROR'; any other exception propagates. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ParleyError) return e.code;
    throw e;
  }
  return 'NO_ERROR';
}

/** `fn` must throw a ParleyError with `code`; returns it. */
export function expectCode(fn: () => unknown, code: string): ParleyError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ParleyError);
    expect((e as ParleyError).code).toBe(code);
    return e as ParleyError;
  }
  throw new Error(`expected ParleyError ${code}, nothing was thrown`);
}

/** `fn` must fail with `code` and leave `state`'s serialized bytes exactly as they were. */
export function expectUnchanged(state: { serialize(): Uint8Array }, fn: () => unknown, code: string): ParleyError {
  const before = toHex(state.serialize());
  const error = expectCode(fn, code);
  expect(toHex(state.serialize())).toBe(before);
  return error;
}
