/**
 * A FIFO of byte pieces as they arrive from a stream, from which exact-size
 * runs are taken. Streams deliver pieces of any size; chunks need exactly
 * `chunkSize` bytes, so this re-slices without ever concatenating more than
 * one chunk's worth.
 */
export class ByteQueue {
  #pieces: Uint8Array[] = [];
  /** Index of the first unread piece (pieces before it are spent). */
  #first = 0;
  /** Read position inside the first unread piece. */
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.#pieces.push(piece);
    this.#length += piece.length;
  }

  /**
   * Removes and returns the next `n` bytes (n <= length). The result is a
   * view into a pushed piece when one piece holds all of it, else a copy.
   */
  take(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.#length) throw new RangeError(`cannot take ${n} of ${this.#length} bytes`);
    const first = this.#pieces[this.#first];
    if (first !== undefined && first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n);
      this.#advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.#pieces[this.#first] as Uint8Array;
      const count = Math.min(piece.length - this.#head, n - filled);
      out.set(piece.subarray(this.#head, this.#head + count), filled);
      filled += count;
      this.#advance(count);
    }
    return out;
  }

  /** Drops everything (e.g. on error). */
  clear(): void {
    this.#pieces = [];
    this.#first = 0;
    this.#head = 0;
    this.#length = 0;
  }

  #advance(n: number): void {
    this.#head += n;
    this.#length -= n;
    if (this.#head === this.#pieces[this.#first]?.length) {
      this.#first++;
      this.#head = 0;
      // Spent pieces are dropped in batches: shifting one at a time would be
      // quadratic when a source delivers many tiny pieces.
      if (this.#first >= 1024 || this.#first === this.#pieces.length) {
        this.#pieces = this.#pieces.slice(this.#first);
        this.#first = 0;
      }
    }
  }
}
