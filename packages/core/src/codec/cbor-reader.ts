/**
 * Core's one strict decoder of Parley's CBOR subset (spec/01-conventions.md
 * §2.2): one pass over the bytes, refusing every form outside the subset or
 * not canonical as it meets it, so no value is ever re-encoded to be checked.
 *
 * Two entry points share it and differ only in who owns the byte strings:
 * - `readCbor` (here) returns views into the input, for the relay's
 *   per-frame hot path (websocket send and ack frames, spec/09-relay.md §5),
 *   which reads a frame's envelopes during the send and copies what it keeps;
 * - `decodeCbor` (cbor.ts) is `readCbor` plus copies of the byte strings,
 *   for every structure that keeps what it decodes (records, messages).
 *
 * Text is kept exactly as its UTF-8 encodes it: a leading U+FEFF is a
 * character, not a byte-order mark to drop (the cbor-x decoder used before
 * dropped it from strings over 64 bytes, then refused them as non-canonical).
 * A differential test holds this reader to cbor-x plus a canonical re-encode
 * check (packages/core/test/cbor-reader.test.ts), and test-vectors/cbor.json
 * to an independent cborg-based verifier.
 */
import { fromUtf8 } from '../bytes.ts';
import { fail } from '../errors.ts';

/** Arrays nest to a depth of at most 8 (§2.1): an item inside 9 arrays is refused. */
const MAX_DEPTH = 8;

/** Text strings up to this length that are all ASCII are built without TextDecoder (client ids, tags). */
const SHORT_TEXT = 64;

class Reader {
  at = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
    /** decodeCbor: byte strings are copies (readCborCopied); readCbor: views into `bytes`. */
    readonly copy: boolean,
    /** Items (of any type, at any depth) the input may hold: `maxItems` of `readCbor`. */
    readonly maxItems: number,
  ) {
    this.itemsLeft = maxItems;
  }

  /** Items the input may still hold; below zero it is refused. */
  itemsLeft: number;

  /** The total length of the long byte strings read (copy mode), left as views until the item is complete. */
  longBytes = 0;

  /**
   * The buffer of every empty byte string of the value (copy mode): allocating a zero-length buffer is a
   * slow path in V8 (about 0.3 µs, against 0.05 for one byte), and an input of empty byte strings is the
   * cheapest way to make a decoder allocate. Sharing it exposes nothing (it holds no bytes).
   */
  emptyBuffer: ArrayBuffer | null = null;

  malformed(why: string): never {
    return fail('MALFORMED', `${this.what}: ${why}`);
  }

  tooManyItems(): never {
    return fail('OVERSIZED', `${this.what}: more than ${this.maxItems} CBOR items`, { limit: this.maxItems });
  }

  /** The argument of a head with additional info `info`, refusing over-long and 8-byte forms. */
  argument(info: number): number {
    const b = this.bytes;
    const at = this.at;
    if (info < 24) return info;
    if (info === 24) {
      if (at + 1 > b.length) this.malformed('truncated');
      const v = b[at] as number;
      if (v < 24) this.malformed('non-canonical CBOR encoding');
      this.at = at + 1;
      return v;
    }
    if (info === 25) {
      if (at + 2 > b.length) this.malformed('truncated');
      const v = ((b[at] as number) << 8) | (b[at + 1] as number);
      if (v < 0x100) this.malformed('non-canonical CBOR encoding');
      this.at = at + 2;
      return v;
    }
    if (info === 26) {
      if (at + 4 > b.length) this.malformed('truncated');
      const v = (b[at] as number) * 0x100_0000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
      if (v < 0x1_0000) this.malformed('non-canonical CBOR encoding');
      this.at = at + 4;
      return v;
    }
    // 27: an 8-byte argument (no Parley integer or length needs one); 28-30 reserved; 31 indefinite length.
    return this.malformed(info === 31 ? 'indefinite length' : 'CBOR outside the Parley subset');
  }

  item(depth: number): unknown {
    if (depth > MAX_DEPTH) this.malformed('nested too deeply');
    // Counted before the item is read: the input is refused at the first item past the budget, whatever follows.
    if (--this.itemsLeft < 0) this.tooManyItems();
    const b = this.bytes;
    if (this.at >= b.length) this.malformed('truncated');
    const head = b[this.at++] as number;
    const major = head >> 5;
    const info = head & 0x1f;
    switch (major) {
      case 0:
        return this.argument(info);
      case 2: {
        const n = this.argument(info);
        const start = this.at;
        if (n > b.length - start) this.malformed('truncated');
        this.at = start + n;
        if (!this.copy) return b.subarray(start, start + n);
        if (n === 0) return new Uint8Array((this.emptyBuffer ??= new ArrayBuffer(0)));
        if (n <= OWN_COPY_MAX) return b.slice(start, start + n);
        this.longBytes += n;
        return b.subarray(start, start + n);
      }
      case 3: {
        const n = this.argument(info);
        const start = this.at;
        if (n > b.length - start) this.malformed('truncated');
        this.at = start + n;
        return this.text(start, n);
      }
      case 4: {
        const n = this.argument(info);
        // An array claiming more items than the budget has left is refused on its head, before any of them.
        if (n > this.itemsLeft) this.tooManyItems();
        // Every item takes at least one byte: a length beyond what is left is refused before any work.
        if (n > b.length - this.at) this.malformed('truncated');
        // Grown as items are read, not allocated from the claimed length: nested heads may each claim
        // what is left, and a refusal after the first item would otherwise have paid for all of them
        // (8 levels of a 1 MiB input: 64 MB of empty arrays, 5x decodeCbor's time).
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 7:
        if (head === 0xf4) return false;
        if (head === 0xf5) return true;
        if (head === 0xf6) return null;
        return this.malformed('CBOR type outside the Parley subset');
      default:
        // 1 negative integer, 5 map, 6 tag.
        return this.malformed('CBOR type outside the Parley subset');
    }
  }

  text(start: number, n: number): string {
    const b = this.bytes;
    if (n <= SHORT_TEXT) {
      let ascii = true;
      for (let i = start; i < start + n; i++) {
        if ((b[i] as number) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return String.fromCharCode.apply(null, b.subarray(start, start + n) as unknown as number[]);
    }
    try {
      return fromUtf8(b.subarray(start, start + n));
    } catch {
      return this.malformed('invalid UTF-8');
    }
  }
}

/**
 * Decodes `bytes` as exactly one canonical CBOR item of Parley's subset, no
 * longer than `maxBytes` (OVERSIZED before parsing), or throws MALFORMED.
 * Byte strings in the value are views into `bytes`: for a caller that reads
 * the value while `bytes` is unchanged and copies what it keeps (the relay's
 * frames). `decodeCbor` is the same reader with copies of the byte strings.
 */
export function readCbor(bytes: Uint8Array, what: string, maxBytes: number, options: ReadCborOptions = {}): unknown {
  return read(bytes, what, maxBytes, false, options.maxItems ?? Number.POSITIVE_INFINITY);
}

/** Bounds on what `readCbor` may build, past its byte bound. */
export interface ReadCborOptions {
  /**
   * The most items (of every type, at every depth, the outer one included)
   * the input may hold: the input is refused with OVERSIZED
   * (`details.limit`) at the first item past it, before that item is read
   * or anything more is built. For a caller that knows how many items a
   * legitimate input can hold (the relay's frames, spec/09-relay.md §5.4):
   * without it, the cheapest items (one byte each: empty strings and arrays,
   * small integers) make an input of n bytes cost n items of work.
   */
  readonly maxItems?: number;
}

/**
 * `readCbor` with byte strings that share no memory with `bytes` (decodeCbor,
 * spec/01-conventions.md §2.2): plain Uint8Arrays, a short one with a buffer
 * of its own, the long ones of the value in one new buffer of exactly their
 * total size.
 */
export function readCborCopied(bytes: Uint8Array, what: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail('MALFORMED', `${what}: expected bytes`);
  // A Buffer's slice() is a view, and its memory may be Node's shared pool: read a plain view of it, so
  // every copy below is a plain Uint8Array of its own.
  const plain = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return read(plain, what, maxBytes, true, Number.POSITIVE_INFINITY);
}

/**
 * Byte strings up to this length are copied one by one (V8 keeps a typed
 * array of at most 64 bytes on the JavaScript heap: tens of ns). A longer
 * one needs a native buffer (about 1 µs to allocate and later free), so the
 * long ones of a value share one.
 */
const OWN_COPY_MAX = 64;

function read(bytes: Uint8Array, what: string, maxBytes: number, copy: boolean, maxItems: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail('MALFORMED', `${what}: expected bytes`);
  if (bytes.length > maxBytes)
    fail('OVERSIZED', `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`, { length: bytes.length, limit: maxBytes });
  if (bytes.length === 0) fail('MALFORMED', `${what}: empty input`);
  const reader = new Reader(bytes, what, copy, maxItems);
  const value = reader.item(0);
  if (reader.at !== bytes.length) reader.malformed('trailing bytes after the item');
  if (reader.longBytes === 0) return value;
  // Long byte strings are copied only once the whole input is accepted: a refused input never pays for them.
  if (value instanceof Uint8Array) return value.slice();
  moveLong(value as unknown[], new Uint8Array(reader.longBytes), 0);
  return value;
}

/** Moves the long byte strings of `v` (still views into the input) into `shared`, from `from` on; returns where the next goes. */
function moveLong(v: unknown[], shared: Uint8Array, from: number): number {
  let at = from;
  for (let i = 0; i < v.length; i++) {
    const item = v[i];
    if (item instanceof Uint8Array) {
      if (item.length > OWN_COPY_MAX) {
        shared.set(item, at);
        v[i] = shared.subarray(at, at + item.length);
        at += item.length;
      }
    } else if (Array.isArray(item)) at = moveLong(item, shared, at);
  }
  return at;
}
