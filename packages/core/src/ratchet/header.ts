/**
 * The ratchet message header: the sender's current ratchet public key, the
 * length of its previous sending chain, and the message's counter in the
 * current chain. spec/05-wire-format.md §3. The header is not encrypted; it
 * is authenticated as part of the AEAD associated data.
 */
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import { checkX25519PublicKey } from '../crypto/x25519.ts';

/**
 * Highest message counter (and previous-chain length) a header may carry:
 * one below 2^32-1, so `counter + 1` is still a uint32 in stored state.
 */
export const MAX_MESSAGE_COUNTER = 0xfffffffe;

export interface Header {
  readonly ratchetKey: Uint8Array;
  readonly previousCounter: number;
  readonly counter: number;
}

export function encodeHeader(h: Header): Uint8Array {
  return encodeCbor([h.ratchetKey, h.previousCounter, h.counter]);
}

export function decodeHeader(bytes: Uint8Array): Header {
  const f = readArray(decodeCbor(bytes, 'Header', 64), 'Header', 3);
  return {
    ratchetKey: checkX25519PublicKey(readBytes(f[0], 'header.ratchetKey', 32), 'header.ratchetKey'),
    previousCounter: readUint(f[1], 'header.previousCounter', MAX_MESSAGE_COUNTER),
    counter: readUint(f[2], 'header.counter', MAX_MESSAGE_COUNTER),
  };
}
