// How a storage rule's batches run (storage/rules/step.ts): `getAll` hands
// several queries over at once and `getLast` lets a pipelining backend send
// its COMMIT behind the rule's final queries. These are the guarantees the
// PostgreSQL driver's two-round-trip send relies on (spec/09-relay.md §7.3).
import { describe, expect, it } from 'vitest';
import { type Rule, abort, get, getAll, getLast, runAsync, runSync } from '../src/storage/rules/step.ts';

/** A backend's query log: each query is recorded when it is issued, not when it answers. */
function backend() {
  const issued: string[] = [];
  const query = <T>(name: string, value: T, fail?: Error): Promise<T> => {
    issued.push(name);
    return fail ? Promise.reject(fail) : new Promise((resolve) => setTimeout(() => resolve(value), 1));
  };
  return { issued, query };
}

describe('storage rule batches', () => {
  it('getAll issues every query before awaiting any, and answers in order (both drivers)', async () => {
    const rule = (q: (n: string, v: number) => number | Promise<number>) =>
      function* (): Rule<number[]> {
        const [a, b, c] = yield* getAll(q('a', 1), q('b', 2), q('c', 3));
        const [d] = yield* getLast(q('d', a + b + c));
        return [a, b, c, d];
      };
    const { issued, query } = backend();
    let commits = 0;
    const run = await runAsync(rule(query)(), {
      commitBehind: () => {
        // The commit goes out right behind the last queries, before they answer.
        expect(issued).toEqual(['a', 'b', 'c', 'd']);
        commits++;
        return Promise.resolve();
      },
    });
    expect(run).toEqual({ result: [1, 2, 3, 6], committed: true });
    expect(commits).toBe(1);
    expect(runSync(rule((_, v) => v)())).toEqual([1, 2, 3, 6]);
  });

  it('the first failure in issue order is what the rule sees, and no rejection is left unhandled', async () => {
    const { query } = backend();
    const first = new Error('deadlock');
    const rule = function* (): Rule<string> {
      try {
        yield* getAll(query('a', 1, first), query('b', 2, new Error('transaction aborted')));
        return 'no';
      } catch (error) {
        return (error as Error).message;
      }
    };
    expect((await runAsync(rule())).result).toBe('deadlock');
  });

  it('a failed last batch fails the run (the commit behind it rolled back), and the driver commits nothing more', async () => {
    const { query } = backend();
    const rule = function* (): Rule<number> {
      const [n] = yield* getLast(query('insert', 1, new Error('unique violation')));
      return n;
    };
    await expect(runAsync(rule(), { commitBehind: () => Promise.resolve() })).rejects.toThrow('unique violation');
  });

  it('a rule may neither query nor abort once its last queries committed', async () => {
    const { query } = backend();
    const hooks = { commitBehind: () => Promise.resolve() };
    const queries = function* (): Rule<number> {
      yield* getLast(query('a', 1));
      return yield* get(query('b', 2));
    };
    await expect(runAsync(queries(), hooks)).rejects.toThrow('queried after its last queries');
    const aborts = function* (): Rule<number> {
      yield* getLast(query('a', 1));
      return abort(0);
    };
    await expect(runAsync(aborts(), hooks)).rejects.toThrow('aborted after its last queries had committed');
  });

  it('without a commit hook a last batch is an ordinary one: the driver commits after the rule', async () => {
    const { query } = backend();
    const rule = function* (): Rule<number> {
      const [n] = yield* getLast(query('a', 5));
      return n;
    };
    expect(await runAsync(rule())).toEqual({ result: 5, committed: false });
  });

  it('runSync refuses a promise inside a batch: the rest of the rule would run outside the write', () => {
    const rule = function* (): Rule<number> {
      const [n] = yield* getAll(Promise.resolve(1));
      return n;
    };
    expect(() => runSync(rule())).toThrow('returned a promise');
  });
});
