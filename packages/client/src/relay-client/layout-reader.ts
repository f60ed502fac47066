/**
 * A reader of a fixed layout in deterministic CBOR (RFC 8949 §4.2.1:
 * definite lengths, shortest heads), for the binary push frame and the
 * delivery record inside it (spec/09-relay.md §5.2.2). The caller reads
 * field by field and the reader takes only the shape asked for at each
 * position, so a structure it accepts is one canonical CBOR item of
 * Parley's subset, as core's strict decoder would take it
 * (test/relay-client-push-frames.test.ts checks the two agree on mutated
 * frames). Why not core's decoder: it decodes, then re-encodes to compare,
 * which cost about as much per 1 KiB envelope as JSON.parse and base64
 * (bench/results/relay-latency.md, "Binary push frames"); this reads each
 * byte once. Every read is bounded by the input's length.
 */

const TWO_32 = 0x1_0000_0000;
const CBOR_NULL = 0xf6;
/** 1 for each byte of [A-Za-z0-9._:-]. */
const CLIENT_ID_BYTE = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-') CLIENT_ID_BYTE[c.charCodeAt(0)] = 1;

export class LayoutReader {
  #at = 0;
  readonly #b: Uint8Array;
  readonly #bad: (field: string, why: string) => Error;
  /** `bad` makes the error for a field that is wrong (each caller's typed code). */
  constructor(bytes: Uint8Array, bad: (field: string, why: string) => Error) {
    this.#b = bytes;
    this.#bad = bad;
  }

  /** A head of major type `major` in shortest form; returns its argument. Other types, 64-bit and indefinite arguments are refused. */
  head(major: number, field: string, what: string): number {
    const b = this.#b;
    const at = this.#at;
    if (at >= b.length) throw this.#bad(field, 'is cut short');
    const initial = b[at] as number;
    if (initial >> 5 !== major) throw this.#bad(field, `expected ${what}`);
    const info = initial & 31;
    if (info < 24) {
      this.#at = at + 1;
      return info;
    }
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : 0;
    // 27 (a 64-bit argument) is past Parley's 32-bit integers and any length allowed here; 28-31 are reserved or indefinite.
    if (size === 0) throw this.#bad(field, `expected ${what}`);
    if (at + 1 + size > b.length) throw this.#bad(field, 'is cut short');
    let arg = 0;
    for (let i = 1; i <= size; i++) arg = arg * 256 + (b[at + i] as number);
    // Shortest form only: one encoding per value.
    if (arg < (size === 1 ? 24 : size === 2 ? 0x100 : 0x1_0000)) throw this.#bad(field, 'is not in its shortest encoding');
    this.#at = at + 1 + size;
    return arg;
  }

  uint(field: string, max: number): number {
    const n = this.head(0, field, 'an unsigned integer');
    if (n > max) throw this.#bad(field, `expected an integer in 0..${max}`);
    return n;
  }

  /** A byte string of `min..max` bytes, copied (the input is the socket's buffer, which the caller should not keep alive). */
  bytes(field: string, min: number, max: number): Uint8Array {
    const n = this.head(2, field, 'a byte string');
    if (n < min || n > max) throw this.#bad(field, min === max ? `expected ${min} bytes` : `expected ${min}..${max} bytes`);
    // new Uint8Array(view) copies (a Buffer's slice would not): a plain Uint8Array of its own.
    return new Uint8Array(this.#take(field, n));
  }

  /** A u64: 8 bytes, big-endian, `min..2^53-1`. */
  u64(field: string, min: number): number {
    if (this.head(2, field, '8 bytes') !== 8) throw this.#bad(field, 'expected 8 bytes');
    const b = this.#take(field, 8);
    const hi = (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0;
    if (hi > 0x1f_ffff) throw this.#bad(field, 'beyond 2^53-1');
    const n = hi * TWO_32 + ((((b[4] as number) << 24) | ((b[5] as number) << 16) | ((b[6] as number) << 8) | (b[7] as number)) >>> 0);
    if (n < min) throw this.#bad(field, `below ${min}`);
    return n;
  }

  /** A client id: 1-64 of A-Z a-z 0-9 . _ : - (ASCII, so the UTF-8 is valid by construction). */
  clientId(field: string): string {
    const n = this.head(3, field, 'a text string');
    if (n < 1 || n > 64) throw this.#bad(field, 'expected 1-64 characters');
    const b = this.#take(field, n);
    let out = '';
    for (let i = 0; i < n; i++) {
      const c = b[i] as number;
      if (CLIENT_ID_BYTE[c] !== 1) throw this.#bad(field, 'expected 1-64 of [A-Za-z0-9._:-]');
      out += String.fromCharCode(c);
    }
    return out;
  }

  /** Exactly `expected` (a fixed head and text). */
  literal(expected: Uint8Array, field: string, what: string): void {
    const b = this.#b;
    if (this.#at + expected.length > b.length) throw this.#bad(field, `expected ${what}`);
    for (let i = 0; i < expected.length; i++) if (b[this.#at + i] !== expected[i]) throw this.#bad(field, `expected ${what}`);
    this.#at += expected.length;
  }

  /** The next item is null (consumed) or not (left). */
  null(): boolean {
    if (this.#b[this.#at] !== CBOR_NULL) return false;
    this.#at++;
    return true;
  }

  /** A byte string's contents without a copy (for a nested structure read at once). */
  view(field: string, max: number): Uint8Array {
    const n = this.head(2, field, 'a byte string or null');
    if (n > max) throw this.#bad(field, `longer than ${max} bytes`);
    return this.#take(field, n);
  }

  end(field: string): void {
    if (this.#at !== this.#b.length) throw this.#bad(field, 'has bytes after its end');
  }

  #take(field: string, n: number): Uint8Array {
    const at = this.#at;
    if (at + n > this.#b.length) throw this.#bad(field, 'is cut short');
    this.#at = at + n;
    return this.#b.subarray(at, at + n);
  }
}
