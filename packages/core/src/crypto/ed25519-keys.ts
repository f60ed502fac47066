/**
 * Which Ed25519 public keys both backends refuse before verifying.
 * spec/01-conventions.md §3.2 (rules 2-3; D4).
 *
 * A key is refused unless it is the canonical encoding of a point on the
 * curve that is torsion-free ([L]A = identity) and not the identity. Why:
 * OpenSSL (the node backend) checks the cofactorless equation and noble the
 * cofactored one. Under a key of small order anyone can sign (A = R =
 * identity, S = 0 verifies any message on OpenSSL); under a key with a small
 * torsion component (A = [a]B + T, T of order 2, 4 or 8) the holder's honest
 * signatures verify on noble always and on OpenSSL only when [k]T = 0, so the
 * two backends disagreed on most of them. With A torsion-free the equations
 * differ only when R itself has a small-order component (the open part of D4).
 *
 * The cheap checks (canonical encoding, the list of small-order encodings)
 * run first; the torsion check is one scalar multiplication with noble's
 * point API (about 1 ms), so its answer is remembered per key in a bounded
 * cache. Public keys are not secret, so the cache holds nothing sensitive.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromHex, toHex } from '../bytes.ts';

/**
 * How many keys the torsion check remembers (least recently used first out).
 * Why 16384: a client verifies under a working set of account keys, device
 * keys and group chain signing keys that it reuses for every message, and a
 * relay process verifies every request under its active devices' signing
 * keys; 16384 covers a device in many large groups and a relay process with
 * that many active devices. Entries are made only as keys are seen (about
 * 115 bytes each, 1.9 MB when full). A key beyond it is checked again (about
 * 1 ms), never accepted unchecked.
 */
export const ED25519_KEY_CHECK_CACHE_ENTRIES = 16384;

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

/**
 * Public keys both backends refuse before verifying: not 32 bytes,
 * non-canonical, of small order, off the curve, or not torsion-free.
 */
export function isRefusedEd25519Key(publicKey: Uint8Array): boolean {
  // Not a Uint8Array: refused, and never cached (a plain array with an honest
  // key's bytes must not leave a "refused" answer under that key's hex).
  if (!(publicKey instanceof Uint8Array)) return true;
  if (!isCanonicalEd25519(publicKey) || isSmallOrderEd25519(publicKey)) return true;
  return !torsionFreeCached(publicKey);
}

/**
 * True when `publicKey` decodes (strictly, RFC 8032 §5.1.3) to a point with
 * [L]A = identity. Uncached; callers go through `isRefusedEd25519Key`.
 */
export function isTorsionFreeEd25519(publicKey: Uint8Array): boolean {
  try {
    return ed25519.Point.fromBytes(publicKey, false).isTorsionFree();
  } catch {
    return false; // not a point on the curve (or not canonical)
  }
}

/**
 * A bounded memo of key checks, least recently used evicted first (a Map's
 * insertion order is its eviction order). Keys are public; nothing secret.
 */
export class KeyCheckCache {
  readonly #entries = new Map<string, boolean>();
  constructor(readonly limit: number) {}

  get size(): number {
    return this.#entries.size;
  }

  /** The remembered answer for `publicKey`, or `check(publicKey)` (then remembered). */
  get(publicKey: Uint8Array, check: (publicKey: Uint8Array) => boolean): boolean {
    const id = toHex(publicKey);
    const hit = this.#entries.get(id);
    if (hit !== undefined) {
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit;
    }
    const ok = check(publicKey);
    if (this.#entries.size >= this.limit) this.#entries.delete(this.#entries.keys().next().value as string);
    this.#entries.set(id, ok);
    return ok;
  }
}

const checked = new KeyCheckCache(ED25519_KEY_CHECK_CACHE_ENTRIES);

function torsionFreeCached(publicKey: Uint8Array): boolean {
  return checked.get(publicKey, isTorsionFreeEd25519);
}

/** True when the key is one of the small-order encodings (sign bit ignored). */
export function isSmallOrderEd25519(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  return SMALL_ORDER.some((p) => {
    let d = 0;
    for (let i = 0; i < 31; i++) d |= (p[i] as number) ^ (publicKey[i] as number);
    d |= (p[31] as number) ^ ((publicKey[31] as number) & 0x7f);
    return d === 0;
  });
}
