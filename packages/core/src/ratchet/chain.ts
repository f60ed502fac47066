/**
 * Walking a receiving chain forward, bounded by MAX_FORWARD_JUMP
 * (spec/04-double-ratchet.md §4.4), shared by the v1 and v2 ratchets. Knows nothing of headers.
 */
import type { CryptoBackend } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { MAX_FORWARD_JUMP } from '../limits.ts';
import { type MessageKeys, messageKeys, nextChainKey } from './kdf.ts';

/** Steps from position `from` to `to`: the keys of messages from..to-1 and the chain key at `to`. */
export function skipAhead(
  b: CryptoBackend,
  chainKey: Uint8Array,
  from: number,
  to: number,
): { skipped: MessageKeys[]; chainKey: Uint8Array } {
  if (to - from > MAX_FORWARD_JUMP) {
    fail('TOO_FAR_AHEAD', `message is ${to - from} ahead in its chain (limit ${MAX_FORWARD_JUMP})`, {
      jump: to - from,
      limit: MAX_FORWARD_JUMP,
    });
  }
  const skipped: MessageKeys[] = [];
  let ck = chainKey;
  for (let i = from; i < to; i++) {
    skipped.push(messageKeys(b, ck));
    ck = nextChainKey(b, ck);
  }
  return { skipped, chainKey: ck };
}

/** As `skipAhead`, plus the keys of message `to` and the chain key after it. */
export function walkChain(
  b: CryptoBackend,
  chainKey: Uint8Array,
  from: number,
  to: number,
): { skipped: MessageKeys[]; keys: MessageKeys; chainKey: Uint8Array } {
  const ahead = skipAhead(b, chainKey, from, to);
  return { skipped: ahead.skipped, keys: messageKeys(b, ahead.chainKey), chainKey: nextChainKey(b, ahead.chainKey) };
}
