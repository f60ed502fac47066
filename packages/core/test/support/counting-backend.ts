// A backend that counts its calls by operation: lets tests bound the work an
// input causes by counting primitives, never by timing them.
import type { CryptoBackend } from '../../src/index.ts';

export interface CountingBackend {
  readonly backend: CryptoBackend;
  readonly counts: Map<string, number>;
  reset(): void;
  count(op: string): number;
}

export function countingBackend(inner: CryptoBackend): CountingBackend {
  const counts = new Map<string, number>();
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(prop), (counts.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { backend, counts, reset: () => counts.clear(), count: (op) => counts.get(op) ?? 0 };
}
