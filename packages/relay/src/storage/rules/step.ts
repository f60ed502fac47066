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
 *
 * Round trips: a rule may hand over several queries at once (`getAll`),
 * which a backend that pipelines (PostgreSQL) sends together and waits for
 * once; and it may mark its final queries (`getLast`), behind which such a
 * backend sends its COMMIT in the same flight. On SQLite both are plain
 * queries, answered at once.
 */

/** A query's value: at once (SQLite) or later (PostgreSQL). */
export type Maybe<T> = T | Promise<T>;

/** A storage rule: yields query results, returns its verdict. */
export type Rule<T> = Generator<unknown, T, unknown>;

/** Inside a rule, the value of one query: `const row = yield* get(q.device(a, 1))`. */
export function* get<T>(value: Maybe<T>): Generator<Maybe<T>, T, unknown> {
  return (yield value) as T;
}

/** Queries handed over together (`getAll`); `last`: nothing follows them (`getLast`). */
export class Batch {
  constructor(
    readonly values: readonly unknown[],
    readonly last: boolean,
  ) {}
}

type Answers<T extends readonly unknown[]> = { -readonly [K in keyof T]: Awaited<T[K]> };

/**
 * Inside a rule, several queries at once: `const [a, b] = yield* getAll(q.x(), q.y())`.
 * Every query is already issued when this is called, so a query whose
 * sending depends on another one's answer does not belong in the same
 * call. They run in order; the first failure is the one the rule sees.
 */
export function* getAll<T extends readonly unknown[]>(...values: T): Generator<Batch, Answers<T>, unknown> {
  return (yield new Batch(values, false)) as Answers<T>;
}

/**
 * The rule's final queries: the rule returns right after their answers,
 * without another query and without `abort` (its transaction may already
 * be committing behind them). A failure of one of them still rolls the
 * whole transaction back; the rule must let it propagate.
 */
export function* getLast<T extends readonly unknown[]>(...values: T): Generator<Batch, Answers<T>, unknown> {
  return (yield new Batch(values, true)) as Answers<T>;
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
    const value = step.value instanceof Batch ? step.value.values : step.value;
    if (isThenable(value) || (Array.isArray(value) && value.some(isThenable))) {
      throw new Error('a synchronous storage driver returned a promise');
    }
    step = rule.next(value);
  }
  return step.value;
}

/** What a transaction's driver does around the rule (PostgreSQL: send COMMIT behind the last queries). */
export interface AsyncHooks {
  /** Issues the commit right behind the rule's last queries; resolves when it is done. */
  readonly commitBehind?: () => Promise<unknown>;
}

/**
 * Drives a rule whose queries answer with promises (PostgreSQL, inside one
 * transaction). `committed` in the answer: the rule's last queries carried
 * the commit (`hooks.commitBehind`), so the caller must not commit again.
 */
export async function runAsync<T>(rule: Rule<T>, hooks: AsyncHooks = {}): Promise<{ result: T; committed: boolean }> {
  let step = rule.next();
  let committed = false;
  while (!step.done) {
    if (committed) throw new Error('a storage rule queried after its last queries');
    let value: unknown;
    try {
      const yielded = step.value;
      if (yielded instanceof Batch) {
        const pending = [...yielded.values];
        if (yielded.last && hooks.commitBehind) {
          pending.push(hooks.commitBehind());
          committed = true;
        }
        // Every promise is awaited (no rejection goes unhandled); the first failure in order wins.
        const settled = await Promise.allSettled(pending);
        const failed = settled.find((s) => s.status === 'rejected');
        if (failed) throw (failed as PromiseRejectedResult).reason;
        value = settled.slice(0, yielded.values.length).map((s) => (s as PromiseFulfilledResult<unknown>).value);
      } else {
        value = await yielded;
      }
    } catch (error) {
      // The rule sees the failure where its query was, like a synchronous throw.
      step = rule.throw(error);
      continue;
    }
    if (!committed) {
      step = rule.next(value);
      continue;
    }
    // Committed behind the last queries: nothing may be queried or undone any more.
    try {
      step = rule.next(value);
    } catch (error) {
      throw error instanceof Abort ? new Error('a storage rule aborted after its last queries had committed') : error;
    }
  }
  return { result: step.value, committed };
}
