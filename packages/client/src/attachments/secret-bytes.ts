/**
 * Bytes that carry a secret (an attachment pointer holds the attachment
 * key), and that say so whenever something tries to print them.
 * spec/10-client.md §8.
 *
 * Apps log events and history entries; a plain Uint8Array inside one turns
 * into its byte values under JSON.stringify, util.inspect and String(). A
 * SecretBytes is a Uint8Array (every API that takes bytes takes it, CBOR
 * encodes it as bytes, `slice` keeps the type), but its text forms name
 * only the length. The bytes stay readable on purpose (indexing, copying):
 * this guards against logging by accident, not against code that reads
 * the secret on purpose.
 */

const REDACTED = (n: number) => `<secret: ${n} bytes>`;

export class SecretBytes extends Uint8Array {
  toJSON(): string {
    return REDACTED(this.length);
  }

  override toString(): string {
    return REDACTED(this.length);
  }

  override toLocaleString(): string {
    return REDACTED(this.length);
  }

  // util.inspect (console.log) through the global symbol registry: no Node import, so browsers load this too.
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SecretBytes(${REDACTED(this.length)})`;
  }
}

/** A SecretBytes copy of `bytes`. */
export function secretBytes(bytes: Uint8Array): SecretBytes {
  const out = new SecretBytes(bytes.length);
  out.set(bytes);
  return out;
}
