/**
 * The Double Ratchet's key derivations as small functions over key bytes.
 * spec/04-double-ratchet.md §2.
 *
 *   KDF_RK(rk, dh)  = HKDF-SHA256(salt = rk, ikm = dh, info = "Parley v1 root chain", 64)
 *                     -> (next root key, chain key)
 *   KDF_CK(ck)      = next chain key  HMAC-SHA256(ck, 0x02)
 *                     message key     HMAC-SHA256(ck, 0x01)            (32-byte AEAD key)
 *                     message nonce   HMAC-SHA256(ck, 0x03)[0..12]     (12-byte AEAD nonce)
 *
 * This module has no knowledge of headers, sessions or state.
 */
import type { CryptoBackend } from '../crypto/backend.ts';
import { ChainConstant, Info } from '../labels.ts';

export interface MessageKeys {
  /** ChaCha20-Poly1305 key, used for exactly one message. */
  readonly key: Uint8Array;
  /** ChaCha20-Poly1305 nonce for that message. */
  readonly nonce: Uint8Array;
}

export function kdfRoot(backend: CryptoBackend, rootKey: Uint8Array, dhOutput: Uint8Array): { rootKey: Uint8Array; chainKey: Uint8Array } {
  const out = backend.hkdfSha256(dhOutput, rootKey, Info.rootChain, 64);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32, 64) };
}

export function nextChainKey(backend: CryptoBackend, chainKey: Uint8Array): Uint8Array {
  return backend.hmacSha256(chainKey, ChainConstant.nextChainKey);
}

export function messageKeys(backend: CryptoBackend, chainKey: Uint8Array): MessageKeys {
  return {
    key: backend.hmacSha256(chainKey, ChainConstant.messageKey),
    nonce: backend.hmacSha256(chainKey, ChainConstant.messageNonce).subarray(0, 12),
  };
}
