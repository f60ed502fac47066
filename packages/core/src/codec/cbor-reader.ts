/**
 * A one-pass strict decoder of Parley's CBOR subset (spec/01-conventions.md
 * §2.2), for the relay's per-frame hot path (websocket send and ack frames,
 * spec/09-relay.md §5).
 *
 * `decodeCbor` (cbor.ts) decodes with the lenient cbor-x, walks the value,
 * re-encodes it and compares the bytes: three passes, two of them over every
 * byte of every envelope in a send frame (10-20 µs per 8-envelope frame,
 * issue 15's relay profile). This reader refuses every non-canonical form
 * while it reads, so a byte string is never touched: it becomes a view into
 * the input (as cbor-x's are), with no copy and no re-encoding.
 *
 * It accepts and refuses the same inputs as `decodeCbor`, with the same
 * codes (the vectors of test-vectors/cbor.json and a differential test
 * against `decodeCbor`, packages/core/test/cbor-reader.test.ts). One
 * deliberate difference: a text string that starts with U+FEFF is kept as
 * it is here; cbor-x drops that BOM from long strings (then `decodeCbor`
 * refuses them as non-canonical) and keeps it in short ones.
 */
import { fail } from '../errors.ts';

/** Arrays nest to a depth of at most 8 (§2.1): an item inside 9 arrays is refused. */
const MAX_DEPTH = 8;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Text strings up to this length that are all ASCII are built without TextDecoder (client ids, tags). */
const SHORT_TEXT = 64;

class Reader {
  at = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {}

  malformed(why: string): never {
    return fail('MALFORMED', `${this.what}: ${why}`);
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
      return utf8.decode(b.subarray(start, start + n));
    } catch {
      return this.malformed('invalid UTF-8');
    }
  }
}

/**
 * Decodes `bytes` as exactly one canonical CBOR item of Parley's subset, no
 * longer than `maxBytes` (OVERSIZED before parsing), or throws MALFORMED.
 * The same accepted inputs, values and refusals as `decodeCbor`; byte
 * strings in the value are views into `bytes` (copy them to keep them past
 * the input's life).
 */
export function readCbor(bytes: Uint8Array, what: string, maxBytes: number): unknown {
  if (!(bytes instanceof Uint8Array)) fail('MALFORMED', `${what}: expected bytes`);
  if (bytes.length > maxBytes)
    fail('OVERSIZED', `${what}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`, { length: bytes.length, limit: maxBytes });
  if (bytes.length === 0) fail('MALFORMED', `${what}: empty input`);
  const reader = new Reader(bytes, what);
  const value = reader.item(0);
  if (reader.at !== bytes.length) reader.malformed('trailing bytes after the item');
  return value;
}
