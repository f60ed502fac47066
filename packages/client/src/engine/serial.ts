/**
 * Runs async jobs one at a time, in order. The SDK puts every job that
 * reads and then writes protocol state (processing an envelope, flushing an
 * outbox entry, prekey upkeep) through one queue, so two jobs never start a
 * session with the same device at once or interleave their read-modify-write
 * of a record across an `await`.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  /** Jobs queued or running: zero means a synchronous step may run now without overtaking one (engine/run.ts). */
  #unsettled = 0;

  run<T>(job: () => Promise<T> | T): Promise<T> {
    this.#unsettled++;
    const result = this.#tail.then(job, job);
    // The queue continues whatever the job's outcome; the caller sees the outcome.
    this.#tail = result.then(
      () => {
        this.#unsettled--;
      },
      () => {
        this.#unsettled--;
      },
    );
    return result;
  }

  /** True while a job is queued or running. */
  get busy(): boolean {
    return this.#unsettled > 0;
  }

  /** Resolves when every job queued so far has finished. */
  idle(): Promise<void> {
    return this.#tail.then(() => undefined);
  }
}
