/**
 * Plaintext padding. spec/04-double-ratchet.md §5.
 *
 * The plaintext is followed by a single 0x80 byte and then zero bytes up to
 * the padded length, so the padding is removed unambiguously. The padded
 * length of n = len(plaintext) + 1 bytes is:
 *   - up to 4096: the next multiple of 160 (short chat messages, which are
 *     most of the traffic, fall into a few coarse buckets);
 *   - above: Padme(n), which rounds n to a value with at most
 *     floor(log2(floor(log2 n))) + 1 significant bits, so the leak is
 *     O(log log n) bits with at most ~12% overhead.
 * Padding is inside the AEAD, so only the sender controls it.
 */
import { fail } from '../errors.ts';

const BLOCK = 160;
const BLOCK_LIMIT = 4096;

export function paddedLength(n: number): number {
  if (n <= BLOCK_LIMIT) return Math.max(BLOCK, Math.ceil(n / BLOCK) * BLOCK);
  const e = Math.floor(Math.log2(n));
  const s = Math.floor(Math.log2(e)) + 1;
  const mask = 2 ** (e - s) - 1;
  return Math.floor((n + mask) / (mask + 1)) * (mask + 1);
}

export function pad(plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(paddedLength(plaintext.length + 1));
  out.set(plaintext, 0);
  out[plaintext.length] = 0x80;
  return out;
}

export function unpad(padded: Uint8Array): Uint8Array {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0 || padded[i] !== 0x80) fail('BAD_PADDING', 'message padding is malformed');
  return padded.subarray(0, i);
}
