/**
 * BodyV2: what a v2 message's AEAD protects. spec/13-ratchet-v2.md §4
 * (spec/design/formats-v2.md §4.4).
 *
 *   BodyV2 = [ frankingKey: bstr .size 32,
 *              pq:          PqChunks / null,      ; parsed by the PQ ratchet
 *              plaintext:   bstr,                 ; at most MAX_PLAINTEXT_BYTES
 *              attestation: bstr .size 64 / null ]
 *
 * The body is padded (04 §5) before sealing. It is authenticated before it is
 * parsed, so a body that does not decode can only come from the peer itself:
 * MALFORMED. This module does not interpret the PQ field.
 */
import { type CborValue, decodeCbor, encodeCbor } from '../../codec/cbor.ts';
import { readArray, readBytes, readOptional } from '../../codec/fields.ts';
import { MAX_MESSAGE_BYTES, MAX_PLAINTEXT_BYTES } from '../../limits.ts';
import { FRANKING_KEY_BYTES } from '../../franking/tag.ts';

export const ATTESTATION_BYTES = 64;

export interface BodyV2 {
  readonly frankingKey: Uint8Array;
  /** The PqChunks structure as a CBOR value, or null; validated by the PQ ratchet. */
  readonly pq: CborValue | null;
  readonly plaintext: Uint8Array;
  readonly attestation: Uint8Array | null;
}

export function encodeBodyV2(body: BodyV2): Uint8Array {
  return encodeCbor([body.frankingKey, body.pq, body.plaintext, body.attestation]);
}

export function decodeBodyV2(bytes: Uint8Array): BodyV2 {
  const f = readArray(decodeCbor(bytes, 'BodyV2', MAX_MESSAGE_BYTES), 'BodyV2', 4);
  return {
    frankingKey: readBytes(f[0], 'body.frankingKey', FRANKING_KEY_BYTES),
    // Copied: the decoder's byte strings may view the padded plaintext, which decryption wipes.
    pq: copyCbor(f[1] as CborValue | null),
    plaintext: readBytes(f[2], 'body.plaintext', { max: MAX_PLAINTEXT_BYTES }),
    attestation: readOptional(f[3], (v) => readBytes(v, 'body.attestation', ATTESTATION_BYTES)),
  };
}

function copyCbor(v: CborValue | null): CborValue | null {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(copyCbor) as CborValue[];
  return v;
}
