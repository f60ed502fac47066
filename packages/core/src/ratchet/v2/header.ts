/**
 * HeaderV2 and its encryption. spec/13-ratchet-v2.md §3
 * (spec/design/formats-v2.md §4.2).
 *
 *   HeaderV2 (44 bytes)        = ratchetKey (32) || PN (u32 BE) || N (u32 BE) || pqEpoch (u32 BE)
 *   EncryptedHeader (60 bytes) = ChaCha20-Poly1305(HK, nonce = bodyTag[0..12], HeaderV2, aad = AD2)
 *
 * Fixed length, so the ciphertext length says nothing about counters. The
 * nonce is the first 12 bytes of the body's Poly1305 tag: a pseudorandom
 * function of a fresh message key, so headers under one header key get
 * distinct nonces without extra bytes (the body is sealed first and never
 * depends on the encrypted header). This module knows nothing of chains.
 */
import { u32be } from '../../bytes.ts';
import { AEAD_TAG_BYTES, type CryptoBackend } from '../../crypto/backend.ts';
import { checkX25519PublicKey } from '../../crypto/x25519.ts';
import { fail } from '../../errors.ts';
import { MAX_MESSAGE_COUNTER } from '../header.ts';

export const HEADER_V2_BYTES = 44;
export const ENCRYPTED_HEADER_BYTES = HEADER_V2_BYTES + AEAD_TAG_BYTES;
/** Highest PQ epoch a header may carry (as counters: `epoch + 1` stays a uint32). */
export const MAX_PQ_EPOCH = 0xfffffffe;

export interface HeaderV2 {
  readonly ratchetKey: Uint8Array;
  readonly previousCounter: number;
  readonly counter: number;
  readonly pqEpoch: number;
}

export function encodeHeaderV2(h: HeaderV2): Uint8Array {
  const out = new Uint8Array(HEADER_V2_BYTES);
  out.set(h.ratchetKey, 0);
  out.set(u32be(h.previousCounter), 32);
  out.set(u32be(h.counter), 36);
  out.set(u32be(h.pqEpoch), 40);
  return out;
}

/** Parses an opened header: ratchet key per 02 §2.3 (BAD_PUBLIC_KEY), counters and epoch bounded (OVERSIZED). */
export function decodeHeaderV2(bytes: Uint8Array): HeaderV2 {
  if (bytes.length !== HEADER_V2_BYTES) fail('MALFORMED', `HeaderV2: expected ${HEADER_V2_BYTES} bytes`, { length: bytes.length });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const previousCounter = view.getUint32(32, false);
  const counter = view.getUint32(36, false);
  const pqEpoch = view.getUint32(40, false);
  if (previousCounter > MAX_MESSAGE_COUNTER) fail('OVERSIZED', 'header.previousCounter exceeds the limit', { field: 'previousCounter' });
  if (counter > MAX_MESSAGE_COUNTER) fail('OVERSIZED', 'header.counter exceeds the limit', { field: 'counter' });
  if (pqEpoch > MAX_PQ_EPOCH) fail('OVERSIZED', 'header.pqEpoch exceeds the limit', { field: 'pqEpoch' });
  return {
    ratchetKey: checkX25519PublicKey(bytes.slice(0, 32), 'header.ratchetKey'),
    previousCounter,
    counter,
    pqEpoch,
  };
}

/** The header nonce: the first 12 bytes of the body's tag (the last 16 bytes of the body ciphertext). */
export function headerNonce(bodyCiphertext: Uint8Array): Uint8Array {
  if (bodyCiphertext.length < AEAD_TAG_BYTES) fail('MALFORMED', 'ciphertext shorter than an AEAD tag', { length: bodyCiphertext.length });
  const start = bodyCiphertext.length - AEAD_TAG_BYTES;
  return bodyCiphertext.slice(start, start + 12);
}

export function sealHeader(
  b: CryptoBackend,
  headerKey: Uint8Array,
  header: Uint8Array,
  bodyCiphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  return b.aeadSeal(headerKey, headerNonce(bodyCiphertext), header, ad);
}

/** One header trial: the opened 44 bytes, or null. */
export function openHeader(
  b: CryptoBackend,
  headerKey: Uint8Array,
  encrypted: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
): Uint8Array | null {
  return b.aeadOpen(headerKey, nonce, encrypted, ad);
}
