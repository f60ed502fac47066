/**
 * The sender chain's key derivation. spec/08-groups.md §3.
 *
 *   L = "Parley v1 group chain" (UTF-8)
 *   next chain key  = HMAC-SHA256(ck, L || 0x02)
 *   message key     = HMAC-SHA256(ck, L || 0x01)            (32-byte AEAD key)
 *   message nonce   = HMAC-SHA256(ck, L || 0x03)[0..12]     (12-byte AEAD nonce)
 *
 * The same shape as the one-to-one KDF_CK (spec/04-double-ratchet.md §2), with
 * the label prefixed so that a group chain key and a one-to-one chain key can
 * never yield the same message key even if they were ever equal.
 *
 * This module knows nothing of members, headers or state.
 */
import { concatBytes, utf8 } from '../bytes.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { ChainConstant, Label } from '../labels.ts';
import type { MessageKeys } from '../ratchet/kdf.ts';
import { MAX_GROUP_FORWARD_JUMP } from './limits.ts';

const LABEL = utf8(Label.groupChain);
const MESSAGE_KEY_INPUT = concatBytes(LABEL, ChainConstant.messageKey);
const NEXT_CHAIN_KEY_INPUT = concatBytes(LABEL, ChainConstant.nextChainKey);
const NONCE_INPUT = concatBytes(LABEL, ChainConstant.messageNonce);

export function nextGroupChainKey(backend: CryptoBackend, chainKey: Uint8Array): Uint8Array {
  return backend.hmacSha256(chainKey, NEXT_CHAIN_KEY_INPUT);
}

export function groupMessageKeys(backend: CryptoBackend, chainKey: Uint8Array): MessageKeys {
  return {
    key: backend.hmacSha256(chainKey, MESSAGE_KEY_INPUT),
    nonce: backend.hmacSha256(chainKey, NONCE_INPUT).subarray(0, 12),
  };
}

export interface ChainWalk {
  /** Keys of iterations from..to-1, in order. */
  readonly skipped: MessageKeys[];
  /** Keys of iteration `to`. */
  readonly keys: MessageKeys;
  /** The chain key for iteration to+1. */
  readonly chainKey: Uint8Array;
}

/**
 * Steps a chain whose key for iteration `from` is `chainKey` up to iteration
 * `to` (>= from). Throws TOO_FAR_AHEAD past MAX_GROUP_FORWARD_JUMP, before
 * doing any work.
 */
export function walkGroupChain(backend: CryptoBackend, chainKey: Uint8Array, from: number, to: number): ChainWalk {
  if (to - from > MAX_GROUP_FORWARD_JUMP) {
    fail('TOO_FAR_AHEAD', `message is ${to - from} ahead in its sender chain (limit ${MAX_GROUP_FORWARD_JUMP})`, {
      jump: to - from,
      limit: MAX_GROUP_FORWARD_JUMP,
    });
  }
  const skipped: MessageKeys[] = [];
  let ck = chainKey;
  for (let i = from; i < to; i++) {
    skipped.push(groupMessageKeys(backend, ck));
    ck = nextGroupChainKey(backend, ck);
  }
  return { skipped, keys: groupMessageKeys(backend, ck), chainKey: nextGroupChainKey(backend, ck) };
}
