/**
 * Safety numbers: what two people compare to know that no one sits between
 * them. Computed from the two ACCOUNT keys only, so adding or replacing a
 * device does not change them. spec/02-keys.md §7.
 *
 *   h_0     = UTF8(Label.safetyNumber) || accountKey
 *   h_{i+1} = SHA-512(h_i || accountKey)        (SAFETY_NUMBER_ITERATIONS times)
 *   digits  = for each of the first six 5-byte groups of h: uint40be mod 100000, as 5 digits
 *
 * The displayed number is both parties' 30 digits, the smaller string first,
 * so both people see the same 60 digits. The scannable payload carries both
 * 32-byte fingerprints in the scanner's order, so a scan proves both sides.
 */
import { bytesEqual, concatBytes, constantTimeEqual, utf8 } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readVersion } from '../codec/fields.ts';
import { type CryptoProvider, resolveProvider } from '../crypto/provider.ts';
import { Label, PROTOCOL_VERSION } from '../labels.ts';
import { SAFETY_NUMBER_ITERATIONS } from '../limits.ts';

export interface SafetyNumber {
  /** 60 decimal digits, identical on both sides; show in 12 groups of 5. */
  readonly digits: string;
  /** Bytes to render as a QR code; the other side scans and calls `verifyScannedSafetyNumber`. */
  readonly scannable: Uint8Array;
}

function fingerprint(p: CryptoProvider, accountKey: Uint8Array): Uint8Array {
  let h = concatBytes(utf8(Label.safetyNumber), accountKey);
  for (let i = 0; i < SAFETY_NUMBER_ITERATIONS; i++) h = p.backend.sha512(concatBytes(h, accountKey));
  return h;
}

function digitsOf(h: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 6; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + (h[i * 5 + j] as number);
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

export function safetyNumber(localAccountKey: Uint8Array, remoteAccountKey: Uint8Array, provider?: CryptoProvider): SafetyNumber {
  const p = resolveProvider(provider);
  const local = fingerprint(p, localAccountKey);
  const remote = fingerprint(p, remoteAccountKey);
  const [a, b] = [digitsOf(local), digitsOf(remote)].sort();
  return {
    digits: `${a}${b}`,
    scannable: encodeCbor([PROTOCOL_VERSION, local.subarray(0, 32), remote.subarray(0, 32)]),
  };
}

/** True when `scanned` (the other side's payload) matches ours with the roles swapped. */
export function verifyScannedSafetyNumber(ours: SafetyNumber, scanned: Uint8Array): boolean {
  try {
    const [, ourLocal, ourRemote] = readArray(decodeCbor(ours.scannable, 'SafetyNumber', 256), 'SafetyNumber', 3) as [
      number,
      Uint8Array,
      Uint8Array,
    ];
    const f = readArray(decodeCbor(scanned, 'SafetyNumber', 256), 'SafetyNumber', 3);
    readVersion(f[0], 'SafetyNumber', [PROTOCOL_VERSION]);
    const theirLocal = readBytes(f[1], 'local', 32);
    const theirRemote = readBytes(f[2], 'remote', 32);
    return constantTimeEqual(theirLocal, ourRemote) && constantTimeEqual(theirRemote, ourLocal) && !bytesEqual(theirLocal, theirRemote);
  } catch {
    return false;
  }
}
