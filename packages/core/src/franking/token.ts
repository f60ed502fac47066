/**
 * Moderator tokens and sender attestations (spec/design/formats-v2.md §6.3,
 * spec 14 §5): how a sealed message names its sender to the moderator only.
 *
 *   ModeratorToken = [keyId: uint, expiresAt: bstr .size 8, ephemeralKey: bstr .size 32,
 *                     sealedSender: bstr .size 52, signature: bstr .size 64]
 *   sealedSender = ChaCha20-Poly1305(MTK[keyId], nonce = SHA-256(ephemeralKey)[0..12],
 *                                    accountKey || uint32be(deviceId),
 *                                    aad = uint32be(keyId) || expiresAt || ephemeralKey)
 *   signature    = Ed25519(moderator key, CBOR(["Parley v2 moderator token", keyId, expiresAt,
 *                                               ephemeralKey, sealedSender]))
 *   attestation  = Ed25519(ephemeral secret, CBOR(["Parley v2 franking signature", frankingTag]))
 *   tokenRef     = SHA-256(CBOR(token))[0..8]
 *
 * The moderator issues (relay side), the sender attests each message, the
 * receiver checks signature, expiry and attestation before showing, the
 * moderator opens the sealed sender from a report.
 */
import { abytes, bytesEqual, concatBytes, u32be } from '../bytes.ts';
import { decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readUint } from '../codec/fields.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { Label } from '../labels.ts';
import type { FrankDevice } from './frank.ts';

/** A token names its holder for a week: bounds how long one ephemeral key links a sender's messages to one recipient. */
export const MODERATOR_TOKEN_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
export const TOKEN_REF_BYTES = 8;
const SEALED_SENDER_BYTES = 32 + 4 + 16;
/** Largest encoded ModeratorToken decoded: its fields take 169 bytes at most; bounds the parse before any check. */
const MAX_TOKEN_BYTES = 200;

export interface ModeratorToken {
  readonly keyId: number;
  /** 8 bytes, milliseconds big-endian. */
  readonly expiresAt: Uint8Array;
  readonly ephemeralKey: Uint8Array;
  readonly sealedSender: Uint8Array;
  readonly signature: Uint8Array;
}

function be8(ms: number): Uint8Array {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError('expected milliseconds since the epoch');
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms));
  return out;
}

/** Milliseconds from an 8-byte big-endian time; -1 when it does not fit a safe integer. */
export function timeFromBytes(b8: Uint8Array): number {
  const n = new DataView(b8.buffer, b8.byteOffset, 8).getBigUint64(0);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n);
}

export const moderatorTokenToCbor = (t: ModeratorToken) => [t.keyId, t.expiresAt, t.ephemeralKey, t.sealedSender, t.signature];

export function readModeratorToken(v: unknown): ModeratorToken {
  const f = readArray(v, 'token', 5);
  return {
    keyId: readUint(f[0], 'token.keyId'),
    expiresAt: readBytes(f[1], 'token.expiresAt', 8),
    ephemeralKey: readBytes(f[2], 'token.ephemeralKey', 32),
    sealedSender: readBytes(f[3], 'token.sealedSender', SEALED_SENDER_BYTES),
    signature: readBytes(f[4], 'token.signature', 64),
  };
}

export const encodeModeratorToken = (t: ModeratorToken): Uint8Array => encodeCbor(moderatorTokenToCbor(t));
export const decodeModeratorToken = (bytes: Uint8Array): ModeratorToken =>
  readModeratorToken(decodeCbor(bytes, 'ModeratorToken', MAX_TOKEN_BYTES));

/** The 8-byte reference later messages of a session carry instead of the whole token. */
export function tokenRef(b: CryptoBackend, t: ModeratorToken): Uint8Array {
  return b.sha256(encodeModeratorToken(t)).slice(0, TOKEN_REF_BYTES);
}

const signedBytes = (t: Omit<ModeratorToken, 'signature'>) =>
  encodeCbor([Label.moderatorToken, t.keyId, t.expiresAt, t.ephemeralKey, t.sealedSender]);
const sealNonce = (b: CryptoBackend, ephemeralKey: Uint8Array) => b.sha256(ephemeralKey).subarray(0, 12);
const sealAad = (keyId: number, expiresAt: Uint8Array, ephemeralKey: Uint8Array) => concatBytes(u32be(keyId), expiresAt, ephemeralKey);

export interface TokenIssue {
  /** The moderator's Ed25519 seed (long-lived, published public key). */
  readonly moderatorSeed: Uint8Array;
  /** MTK[keyId]: the token sealing key of the period. */
  readonly tokenKey: Uint8Array;
  readonly keyId: number;
  /** Milliseconds; usually issue time + MODERATOR_TOKEN_LIFETIME_MS. */
  readonly expiresAt: number;
  /** The Ed25519 public key the sender chose (one per recipient and period). */
  readonly ephemeralKey: Uint8Array;
  /** The identified device asking for the token. */
  readonly holder: FrankDevice;
}

/** The moderator's side of issuance. Each ephemeral key must be issued once (it fixes the nonce). */
export function issueModeratorToken(b: CryptoBackend, i: TokenIssue): ModeratorToken {
  abytes(i.tokenKey, 'tokenKey', 32);
  abytes(i.ephemeralKey, 'ephemeralKey', 32);
  abytes(i.holder.accountKey, 'holder.accountKey', 32);
  if (!Number.isInteger(i.keyId) || i.keyId < 0 || i.keyId > 0xffffffff) throw new RangeError('"keyId" expected a uint32');
  const expiresAt = be8(i.expiresAt);
  const sealedSender = b.aeadSeal(
    i.tokenKey,
    sealNonce(b, i.ephemeralKey),
    concatBytes(i.holder.accountKey, u32be(i.holder.deviceId)),
    sealAad(i.keyId, expiresAt, i.ephemeralKey),
  );
  const unsigned = { keyId: i.keyId, expiresAt, ephemeralKey: new Uint8Array(i.ephemeralKey), sealedSender };
  return { ...unsigned, signature: b.ed25519Sign(i.moderatorSeed, signedBytes(unsigned)) };
}

/** The sender's attestation of one message's franking tag, under the token's ephemeral key. */
export function attestFrankingTag(b: CryptoBackend, ephemeralSeed: Uint8Array, frankingTag: Uint8Array): Uint8Array {
  abytes(frankingTag, 'frankingTag', 32);
  return b.ed25519Sign(ephemeralSeed, encodeCbor([Label.frankingSignature, frankingTag]));
}

export type TokenCheck = 'ok' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED' | 'ATTESTATION_INVALID';

/**
 * What a receiver checks before showing a sealed message (and the
 * moderator again on a report): the moderator's signature, that the token
 * had not expired when the relay accepted the envelope, and the
 * attestation over this message's tag. Public keys and signatures only.
 */
export function checkModeratorToken(
  b: CryptoBackend,
  moderatorKey: Uint8Array,
  t: ModeratorToken,
  acceptedAt: number,
  frankingTag: Uint8Array,
  attestation: Uint8Array | null,
): TokenCheck {
  if (!b.ed25519Verify(moderatorKey, signedBytes(t), t.signature)) return 'TOKEN_INVALID';
  const expires = timeFromBytes(t.expiresAt);
  if (expires < 0 || expires < acceptedAt) return 'TOKEN_EXPIRED';
  if (attestation === null || !b.ed25519Verify(t.ephemeralKey, encodeCbor([Label.frankingSignature, frankingTag]), attestation)) {
    return 'ATTESTATION_INVALID';
  }
  return 'ok';
}

/** The moderator's side: the device a token names, or null when it does not open under MTK[keyId]. */
export function openTokenHolder(b: CryptoBackend, tokenKey: Uint8Array, t: ModeratorToken): FrankDevice | null {
  const opened = b.aeadOpen(tokenKey, sealNonce(b, t.ephemeralKey), t.sealedSender, sealAad(t.keyId, t.expiresAt, t.ephemeralKey));
  if (opened === null || opened.length !== 36) return null;
  return { accountKey: opened.slice(0, 32), deviceId: new DataView(opened.buffer, opened.byteOffset + 32, 4).getUint32(0) };
}

/** True when the token names `who`. */
export function tokenNames(b: CryptoBackend, tokenKey: Uint8Array, t: ModeratorToken, who: FrankDevice): boolean {
  const holder = openTokenHolder(b, tokenKey, t);
  return holder !== null && holder.deviceId === who.deviceId && bytesEqual(holder.accountKey, who.accountKey);
}
