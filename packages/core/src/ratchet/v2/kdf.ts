/**
 * Ratchet v2 key derivations. spec/13-ratchet-v2.md §2
 * (spec/design/formats-v2.md §4.1).
 *
 *   KDF_RK2(RK, dh, pq) = HKDF(salt = RK, ikm = dh || pq, info = "Parley v2 root chain", 96)
 *                         -> next root key, chain key, next header key
 *   (HKa, NHKb)         = HKDF(salt = 0^32, ikm = SK, info = "Parley v2 header keys", 64)
 *
 * `dh` is always 32 bytes, so `dh || pq` has one parse; `pq` is the 32-byte
 * secret of a PQ exchange mixed at this step, or empty. The symmetric chain
 * step KDF_CK is v1's (../kdf.ts). This module knows nothing of headers or state.
 */
import { abytes, concatBytes, wipe } from '../../bytes.ts';
import type { CryptoBackend } from '../../crypto/backend.ts';
import { Info } from '../../labels.ts';

export interface RootStep {
  readonly rootKey: Uint8Array;
  readonly chainKey: Uint8Array;
  readonly nextHeaderKey: Uint8Array;
}

const ZERO_SALT = new Uint8Array(32);

export function kdfRoot2(b: CryptoBackend, rootKey: Uint8Array, dhOutput: Uint8Array, pq: Uint8Array): RootStep {
  abytes(dhOutput, 'dhOutput', 32);
  if (pq.length !== 0 && pq.length !== 32) throw new RangeError('"pq" expected 0 or 32 bytes');
  const ikm = concatBytes(dhOutput, pq);
  const out = b.hkdfSha256(ikm, rootKey, Info.rootChain2, 96);
  wipe(ikm);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32, 64), nextHeaderKey: out.slice(64, 96) };
}

/** The initiator's first sending header key HKa and the responder's first sending header key NHKb. */
export function initialHeaderKeys(b: CryptoBackend, sharedSecret: Uint8Array): { hka: Uint8Array; nhkb: Uint8Array } {
  const out = b.hkdfSha256(sharedSecret, ZERO_SALT, Info.headerKeys, 64);
  return { hka: out.slice(0, 32), nhkb: out.slice(32, 64) };
}
