/**
 * The ML-KEM-768 steps of a PQ exchange, through core's backend only, and the
 * exchange secret of formats-v2 §5.5:
 *
 *   pqSecret_x = HKDF(salt = 0^32, ikm = ss_x,
 *                     info = "Parley v2 pq exchange" || uint32be(x) || SHA-256(ek_x) || SHA-256(ct_x),
 *                     L = 32)
 *
 * Binding the exchange number and both transcripts makes a secret usable
 * only at its own place.
 */
import { concatBytes, u32be, wipe } from '../bytes.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { MLKEM768_PUBLIC_KEY_BYTES } from '../crypto/backend.ts';
import { Info } from '../labels.ts';

/** Bytes of an exchange secret (pqSecret_x). */
export const PQ_SECRET_BYTES = 32;

/** ML-KEM's modulus q (FIPS 203 §2.4). */
const Q = 3329;
/** The 12-bit-packed vector t̂ of an ML-KEM-768 encapsulation key: 3 x 256 coefficients in 1152 bytes; rho follows. */
const T_BYTES = 1152;

/**
 * FIPS 203 §7.2 "modulus check" on an encapsulation key: every 12-bit
 * coefficient of t̂ is below q, i.e. ByteEncode12(ByteDecode12(t̂)) = t̂. A
 * receiver runs it on a decoded key before accepting it, so a key noble
 * would refuse at encapsulation is refused at once, in decrypt, with a typed
 * error and no randomness drawn. Public data: no constant-time need.
 */
export function mlkemEncapsulationKeyValid(ek: Uint8Array): boolean {
  if (ek.length !== MLKEM768_PUBLIC_KEY_BYTES) return false;
  for (let i = 0; i < T_BYTES; i += 3) {
    const b0 = ek[i] as number;
    const b1 = ek[i + 1] as number;
    const b2 = ek[i + 2] as number;
    if ((b0 | ((b1 & 0x0f) << 8)) >= Q || ((b1 >> 4) | (b2 << 4)) >= Q) return false;
  }
  return true;
}

/**
 * pqSecret_x from the KEM's shared secret and the exchange's transcript. X
 * passes SHA-256(ek) (it keeps only the hash once it stops sending the key);
 * `ss` is wiped here, as nothing else may read it.
 */
export function pqExchangeSecret(b: CryptoBackend, exchange: number, ekHash: Uint8Array, ct: Uint8Array, ss: Uint8Array): Uint8Array {
  const info = concatBytes(Info.pqExchange, u32be(exchange), ekHash, b.sha256(ct));
  const out = b.hkdfSha256(ss, new Uint8Array(32), info, PQ_SECRET_BYTES);
  wipe(ss);
  return out;
}
