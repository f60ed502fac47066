/**
 * How one rule runs on a synchronous backend (SQLite) and an asynchronous
 * one (PostgreSQL) alike.
 *
 * A rule is a generator: each query it needs is handed to the backend with
 * `yield* get(q.someQuery(...))` and the rule resumes with the query's
 * value. SQLite answers at once, so `runSync` drives the whole rule inside
 * one synchronous write (its group commit, storage/write-batcher.ts, cannot
 * span an `await`: a read on the same connection would see half a batch).
 * PostgreSQL answers with promises, which `runAsync` awaits inside its
 * transaction. The rule itself neither knows nor cares which.
 */

/** A query's value: at once (SQLite) or later (PostgreSQL). */
export type Maybe<T> = T | Promise<T>;

/** A storage rule: yields query results, returns its verdict. */
export type Rule<T> = Generator<unknown, T, unknown>;

/** Inside a rule, the value of one query: `const row = yield* get(q.device(a, 1))`. */
export function* get<T>(value: Maybe<T>): Generator<Maybe<T>, T, unknown> {
  return (yield value) as T;
}

/**
 * Thrown (by `abort`) inside a rule to roll its transaction or savepoint
 * back and answer `result` instead: a refusal found after writes began.
 */
export class Abort<T> extends Error {
  constructor(readonly result: T) {
    super('aborted write');
  }
}

export function abort<T>(result: T): never {
  throw new Abort(result);
}

/** Turns an `Abort` that escaped a rolled-back write into its answer. */
export function unwrapAbort<T>(e: unknown): T {
  if (e instanceof Abort) return e.result as T;
  throw e;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** Drives a rule whose queries all answer at once (SQLite, inside one write). */
export function runSync<T>(rule: Rule<T>): T {
  let step = rule.next();
  while (!step.done) {
    // A promise here would run the rest of the rule outside the write: refuse it loudly.
    if (isThenable(step.value)) throw new Error('a synchronous storage driver returned a promise');
    step = rule.next(step.value);
  }
  return step.value;
}

/** Drives a rule whose queries answer with promises (PostgreSQL, inside one transaction). */
export async function runAsync<T>(rule: Rule<T>): Promise<T> {
  let step = rule.next();
  while (!step.done) {
    let value: unknown;
    try {
      value = await step.value;
    } catch (error) {
      // The rule sees the failure where its query was, like a synchronous throw.
      step = rule.throw(error);
      continue;
    }
    step = rule.next(value);
  }
  return step.value;
}
