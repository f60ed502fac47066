/**
 * The relay frank (spec/design/formats-v2.md §6.2): a MAC, under a rotating
 * relay key, binding a message's franking tag to its delivery (recipient
 * device, acceptance time, relay-assigned envelope id, and the sender when
 * the relay knows it). The relay computes it for every envelope it accepts
 * and stores nothing; the moderation service recomputes it from a report.
 *
 *   frank = HMAC-SHA256(FK[keyId], CBOR(["Parley v2 relay frank", keyId,
 *                       frankingTag: bstr .size 32, recipientAccount: bstr .size 32,
 *                       recipientDevice: uint, acceptedAt: bstr .size 8 (ms, big-endian),
 *                       envelopeId: bstr .size 16, sender: Member / null]))
 *   keyId = floor(acceptedAt / FRANK_KEY_PERIOD_MS)
 *
 * Here because the relay may not reach a primitive except through core
 * (crypto/ is the only doorway), and the moderator's verifier needs the same
 * bytes. Key storage, rotation and destruction are the relay's.
 */
import { abytes, constantTimeEqual } from '../bytes.ts';
import { type CborValue, encodeCbor } from '../codec/cbor.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { Label } from '../labels.ts';
import { FRANKING_TAG_BYTES } from './tag.ts';

/** One frank key per day: destroying a key ends that day's proofs at once (§13.2). */
export const FRANK_KEY_PERIOD_MS = 24 * 60 * 60 * 1000;

/**
 * A frank key lives this long after its period ends (the example
 * period): long enough to report, short enough for deniability to return.
 */
export const FRANK_KEY_RETENTION_MS = 90 * FRANK_KEY_PERIOD_MS;

export const FRANK_KEY_BYTES = 32;
export const FRANK_BYTES = 32;
/** Relay-assigned, random: the client id is unique per sender only, which a sealed relay does not know. */
export const ENVELOPE_ID_BYTES = 16;

/** A device, as the frank names recipient and sender. */
export interface FrankDevice {
  readonly accountKey: Uint8Array;
  readonly deviceId: number;
}

export interface RelayFrankInput {
  readonly keyId: number;
  readonly frankingTag: Uint8Array;
  readonly recipient: FrankDevice;
  /** Milliseconds since the epoch, when the relay accepted the envelope. */
  readonly acceptedAt: number;
  readonly envelopeId: Uint8Array;
  /** The sender device on identified sends; null when sealed (§6.3 names it then). */
  readonly sender: FrankDevice | null;
}

/** The frank key period an acceptance time falls in. */
export function frankKeyId(acceptedAt: number): number {
  if (!Number.isSafeInteger(acceptedAt) || acceptedAt < 0) throw new RangeError('"acceptedAt" expected milliseconds since the epoch');
  return Math.floor(acceptedAt / FRANK_KEY_PERIOD_MS);
}

/** True once the key of period `keyId` must have been destroyed (proofs of that period are gone). */
export function frankKeyExpired(keyId: number, now: number): boolean {
  return now >= (keyId + 1) * FRANK_KEY_PERIOD_MS + FRANK_KEY_RETENTION_MS;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function device(d: FrankDevice, name: string): CborValue {
  abytes(d.accountKey, `${name}.accountKey`, 32);
  if (!Number.isInteger(d.deviceId) || d.deviceId < 0 || d.deviceId > 0xffffffff)
    throw new RangeError(`"${name}.deviceId" expected a uint32`);
  return [d.accountKey, d.deviceId];
}

/** The bytes the frank MACs. */
export function relayFrankInput(f: RelayFrankInput): Uint8Array {
  abytes(f.frankingTag, 'frankingTag', FRANKING_TAG_BYTES);
  abytes(f.envelopeId, 'envelopeId', ENVELOPE_ID_BYTES);
  if (!Number.isInteger(f.keyId) || f.keyId < 0 || f.keyId > 0xffffffff) throw new RangeError('"keyId" expected a uint32');
  const recipient = device(f.recipient, 'recipient') as CborValue[];
  return encodeCbor([
    Label.relayFrank,
    f.keyId,
    f.frankingTag,
    recipient[0] as Uint8Array,
    recipient[1] as number,
    u64be(f.acceptedAt),
    f.envelopeId,
    f.sender === null ? null : device(f.sender, 'sender'),
  ]);
}

/** Computes the frank under the key of period `f.keyId`, which must be the period of `f.acceptedAt`. */
export function relayFrank(b: CryptoBackend, frankKey: Uint8Array, f: RelayFrankInput): Uint8Array {
  abytes(frankKey, 'frankKey', FRANK_KEY_BYTES);
  if (f.keyId !== frankKeyId(f.acceptedAt)) throw new RangeError('"keyId" is not the period of "acceptedAt"');
  return b.hmacSha256(frankKey, relayFrankInput(f));
}

/**
 * Checks a frank from a report: the key period must be the one of the
 * acceptance time and the MAC must match (constant time). The caller
 * refuses with FRANK_KEY_EXPIRED first when it no longer holds the key.
 */
export function checkRelayFrank(b: CryptoBackend, frankKey: Uint8Array, f: RelayFrankInput, frank: Uint8Array): boolean {
  if (!(frank instanceof Uint8Array) || frank.length !== FRANK_BYTES) return false;
  if (!Number.isSafeInteger(f.acceptedAt) || f.acceptedAt < 0 || f.keyId !== frankKeyId(f.acceptedAt)) return false;
  return constantTimeEqual(relayFrank(b, frankKey, f), frank);
}
