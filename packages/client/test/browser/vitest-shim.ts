/**
 * Just enough of vitest's `describe`/`it`/`expect` to run the store contract
 * (test/support/store-contract.ts) inside a browser page, where vitest does
 * not run. browser-store.test.ts bundles the contract with `vitest` aliased
 * to this file. Only the matchers the contract uses exist; a missing one is
 * a TypeError, so a contract change cannot pass here by being skipped.
 */
export interface Case {
  readonly name: string;
  readonly fn: () => unknown;
}

export const cases: Case[] = [];
const prefix: string[] = [];

export function describe(name: string, fn: () => void): void {
  prefix.push(name);
  try {
    fn();
  } finally {
    prefix.pop();
  }
}

export function it(name: string, fn: () => unknown): void {
  cases.push({ name: [...prefix, name].join(' > '), fn });
}

function equal(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    return a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    return a.every((x, i) => equal(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

const show = (v: unknown) => {
  try {
    return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? `bytes(${[...x].join(',')})` : x));
  } catch {
    return String(v);
  }
};

function fail(message: string): never {
  throw new Error(`expect: ${message}`);
}

export function expect(actual: unknown) {
  return {
    toEqual(expected: unknown) {
      if (!equal(actual, expected)) fail(`${show(actual)} to equal ${show(expected)}`);
    },
    toBe(expected: unknown) {
      if (!Object.is(actual, expected)) fail(`${show(actual)} to be ${show(expected)}`);
    },
    toBeUndefined() {
      if (actual !== undefined) fail(`${show(actual)} to be undefined`);
    },
    toThrow(expected?: string | (new (...args: never[]) => unknown)) {
      if (typeof actual !== 'function') fail('toThrow needs a function');
      try {
        (actual as () => unknown)();
      } catch (e) {
        if (typeof expected === 'string' && !String((e as Error)?.message).includes(expected))
          fail(`threw "${(e as Error)?.message}", not "${expected}"`);
        if (typeof expected === 'function' && !(e instanceof expected)) fail(`threw ${(e as Error)?.name}, not ${expected.name}`);
        return;
      }
      fail('the function did not throw');
    },
  };
}
