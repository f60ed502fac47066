/**
 * Ed25519 public keys of small order. spec/01-conventions.md §3.2 (D4).
 *
 * OpenSSL (the node backend) verifies signatures under such keys, for
 * which anyone can produce a valid signature (e.g. A = R = identity,
 * S = 0), and under non-canonical encodings; noble in strict mode refuses
 * both. Both backends refuse them here, before verification, so no key
 * exists that anyone can sign for and both agree on every key. The list
 * is the usual one (as in libsodium): the 7 encodings of small-order points
 * compared with the sign bit ignored, which also covers the non-canonical
 * encodings y = p and y = p + 1.
 */
import { fromHex } from '../bytes.ts';

const SMALL_ORDER: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map(fromHex);

/** True when the encoded y-coordinate (sign bit masked) is below p = 2^255 - 19. */
export function isCanonicalEd25519(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  if (((publicKey[31] as number) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (publicKey[i] !== 0xff) return true;
  return (publicKey[0] as number) < 0xed;
}

/** Public keys both backends refuse before verifying: non-canonical or of small order. */
export function isRefusedEd25519Key(publicKey: Uint8Array): boolean {
  return !isCanonicalEd25519(publicKey) || isSmallOrderEd25519(publicKey);
}

export function isSmallOrderEd25519(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  return SMALL_ORDER.some((p) => {
    let d = 0;
    for (let i = 0; i < 31; i++) d |= (p[i] as number) ^ (publicKey[i] as number);
    d |= (p[31] as number) ^ ((publicKey[31] as number) & 0x7f);
    return d === 0;
  });
}
