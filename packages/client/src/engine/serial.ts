/**
 * Runs async jobs one at a time, in order. The SDK puts every job that
 * reads and then writes protocol state (processing an envelope, flushing an
 * outbox entry, prekey upkeep) through one queue, so two jobs never start a
 * session with the same device at once or interleave their read-modify-write
 * of a record across an `await`.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(job, job);
    // The queue continues whatever the job's outcome; the caller sees the outcome.
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves when every job queued so far has finished. */
  idle(): Promise<void> {
    return this.#tail.then(() => undefined);
  }
}
