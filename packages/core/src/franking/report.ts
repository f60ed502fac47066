/**
 * Abuse reports (spec/design/formats-v2.md §9): the report format and the
 * checks a moderation service runs on it, as pure functions over the keys it
 * holds. The relay route (authentication, rate limits, the queue, the
 * duplicate store) and the client screen are not here; what is here is every
 * cryptographic check of §9.2 steps 1-4, 6 and 7, so relay and moderator
 * tool run the same code.
 *
 *   AbuseReport = [2, reason: uint (1..32), comment: tstr (<= 1024 bytes), items: [+ ReportItem]]
 *   ReportItem  = [role: 1 (reported) / 2 (context), envelopeId: bstr .size 16,
 *                  acceptedAt: bstr .size 8, frankKeyId: uint, frank: bstr .size 32,
 *                  recipientDevice: uint, frankingTag: bstr .size 32, frankingKey: bstr .size 32,
 *                  sender: Member, plaintext: bstr, token: ModeratorToken / null,
 *                  attestation: bstr .size 64 / null,
 *                  attachments: [* [pointerIndex: uint, blob: bstr / null]]]
 *
 * Attachment checks (§9.2 step 5) need the client's pointer format and the
 * blob store: the caller runs them on `items[i].attachments`.
 */
import { abytes, bytesEqual, toHex, utf8 } from '../bytes.ts';
import { type CborValue, decodeCbor, encodeCbor } from '../codec/cbor.ts';
import { readArray, readBytes, readText, readUint, readVersionedArray } from '../codec/fields.ts';
import type { CryptoBackend } from '../crypto/backend.ts';
import { fail } from '../errors.ts';
import { MAX_DEVICE_ID, MAX_PLAINTEXT_BYTES } from '../limits.ts';
import { ENVELOPE_ID_BYTES, FRANK_BYTES, type FrankDevice, checkRelayFrank } from './frank.ts';
import { FRANKING_KEY_BYTES, FRANKING_TAG_BYTES, checkFrankingTag } from './tag.ts';
import {
  type ModeratorToken,
  checkModeratorToken,
  moderatorTokenToCbor,
  openTokenHolder,
  readModeratorToken,
  timeFromBytes,
} from './token.ts';

/** The reported message plus up to 10 context messages the user picked (§13.2): enough context, bounded work. */
export const MAX_REPORT_ITEMS = 11;
/** Reasons are a small enumeration the app shows; 32 leaves room. */
export const MAX_REPORT_REASON = 32;
/** A free-text comment, bounded so a report's size is dominated by its items. */
export const MAX_REPORT_COMMENT_BYTES = 1024;
/** Attachments per reported message: the content format's own bound on pointers per message. */
export const MAX_REPORT_ATTACHMENTS = 32;
/**
 * Largest encoded report `decodeReport` reads, inline blobs included (so one
 * blob is bounded by it too): the relay's route takes far less
 * (MAX_REPORT_WIRE_BYTES, 2 MiB); a moderation service that takes reports
 * directly may accept files inline up to this, and decoding stays bounded.
 */
export const MAX_REPORT_BYTES = 16 * 1024 * 1024;

export const ReportRole = { reported: 1, context: 2 } as const;

export interface ReportItem {
  readonly role: 1 | 2;
  readonly envelopeId: Uint8Array;
  /** 8 bytes, milliseconds big-endian, as the relay delivered it. */
  readonly acceptedAt: Uint8Array;
  readonly frankKeyId: number;
  readonly frank: Uint8Array;
  readonly recipientDevice: number;
  readonly frankingTag: Uint8Array;
  readonly frankingKey: Uint8Array;
  readonly sender: FrankDevice;
  readonly plaintext: Uint8Array;
  readonly token: ModeratorToken | null;
  readonly attestation: Uint8Array | null;
  readonly attachments: readonly { readonly pointerIndex: number; readonly blob: Uint8Array | null }[];
}

export interface AbuseReport {
  readonly reason: number;
  readonly comment: string;
  readonly items: readonly ReportItem[];
}

const REPORT_VERSION = 2;

function itemToCbor(i: ReportItem): CborValue {
  return [
    i.role,
    i.envelopeId,
    i.acceptedAt,
    i.frankKeyId,
    i.frank,
    i.recipientDevice,
    i.frankingTag,
    i.frankingKey,
    [i.sender.accountKey, i.sender.deviceId],
    i.plaintext,
    i.token === null ? null : moderatorTokenToCbor(i.token),
    i.attestation,
    i.attachments.map((a) => [a.pointerIndex, a.blob]),
  ];
}

export function encodeReport(r: AbuseReport): Uint8Array {
  const bytes = encodeCbor([REPORT_VERSION, r.reason, r.comment, r.items.map(itemToCbor)]);
  // Our own output meets the receiver's rules (misuse otherwise).
  try {
    decodeReport(bytes);
  } catch (e) {
    throw new RangeError(`report not encodable: ${(e as Error).message}`);
  }
  return bytes;
}

function readItem(v: unknown, n: number): ReportItem {
  const f = readArray(v, `items[${n}]`, 13);
  const role = readUint(f[0], 'role', 2);
  if (role !== 1 && role !== 2) fail('MALFORMED', 'role: 1 (reported) or 2 (context)', { field: 'role' });
  if ((role === 1) !== (n === 0)) fail('MALFORMED', 'the first item, and only it, is the reported message', { field: 'role' });
  const sender = readArray(f[8], 'sender', 2);
  const attachments = readArray(f[12], 'attachments', { min: 0, max: MAX_REPORT_ATTACHMENTS }).map((a) => {
    const x = readArray(a, 'attachment', 2);
    return {
      pointerIndex: readUint(x[0], 'pointerIndex', MAX_REPORT_ATTACHMENTS - 1),
      blob: x[1] === null ? null : readBytes(x[1], 'blob', { max: MAX_REPORT_BYTES }),
    };
  });
  return {
    role,
    envelopeId: readBytes(f[1], 'envelopeId', ENVELOPE_ID_BYTES),
    acceptedAt: readBytes(f[2], 'acceptedAt', 8),
    frankKeyId: readUint(f[3], 'frankKeyId'),
    frank: readBytes(f[4], 'frank', FRANK_BYTES),
    recipientDevice: readUint(f[5], 'recipientDevice', MAX_DEVICE_ID),
    frankingTag: readBytes(f[6], 'frankingTag', FRANKING_TAG_BYTES),
    frankingKey: readBytes(f[7], 'frankingKey', FRANKING_KEY_BYTES),
    sender: { accountKey: readBytes(sender[0], 'sender.accountKey', 32), deviceId: readUint(sender[1], 'sender.deviceId', MAX_DEVICE_ID) },
    plaintext: readBytes(f[9], 'plaintext', { max: MAX_PLAINTEXT_BYTES }),
    token: f[10] === null ? null : readModeratorToken(f[10]),
    attestation: f[11] === null ? null : readBytes(f[11], 'attestation', 64),
    attachments,
  };
}

/** Strict decoding: MALFORMED / OVERSIZED / UNSUPPORTED_VERSION (the route answers 422 VALIDATION_FAILED). */
export function decodeReport(bytes: Uint8Array): AbuseReport {
  const v = decodeCbor(bytes, 'AbuseReport', MAX_REPORT_BYTES);
  // The version before the field count (a later report may have other fields), and only of a versioned array:
  // garbage is MALFORMED, a later version UNSUPPORTED_VERSION, as for every other structure.
  const f = readVersionedArray(v, 'AbuseReport', [REPORT_VERSION], 4);
  const reason = readUint(f[1], 'reason', MAX_REPORT_REASON);
  if (reason === 0) fail('MALFORMED', 'reason starts at 1', { field: 'reason' });
  const comment = readText(f[2], 'comment', MAX_REPORT_COMMENT_BYTES);
  if (utf8(comment).length > MAX_REPORT_COMMENT_BYTES) fail('OVERSIZED', 'comment too long', { field: 'comment' });
  const items = readArray(f[3], 'items', { min: 1, max: MAX_REPORT_ITEMS }).map(readItem);
  return { reason, comment, items };
}

/** The relay's report codes of §13.1 that these checks produce. */
export type ReportRefusalCode =
  | 'FRANK_KEY_EXPIRED'
  | 'FRANK_INVALID'
  | 'TAG_MISMATCH'
  | 'TOKEN_INVALID_IN_REPORT'
  | 'ATTESTATION_INVALID'
  | 'SENDER_MISMATCH'
  | 'CONTEXT_MISMATCH'
  | 'REPORT_DUPLICATE';

export type ReportVerdict = { readonly ok: true } | { readonly ok: false; readonly code: ReportRefusalCode; readonly item: number };

/** What the verifier holds: keys by period, the reporter's identity, and the duplicate store. */
export interface ReportContext {
  /** The authenticated reporter's account key (never a value taken from the report). */
  readonly reporterAccount: Uint8Array;
  /** The reporter account's device ids (the item's recipient device must be one of them). */
  readonly reporterDevices: readonly number[];
  /** FK[keyId], or null once destroyed. */
  readonly frankKey: (keyId: number) => Uint8Array | null;
  /** MTK[keyId] (the token sealing key), or null once destroyed. */
  readonly tokenKey: (keyId: number) => Uint8Array | null;
  /** The moderator's Ed25519 public key tokens are signed with. */
  readonly moderatorKey: Uint8Array;
  /** True when (reporter, envelopeId) was reported before. */
  readonly reportedBefore: (envelopeId: Uint8Array) => boolean;
}

/** §6.3 for a report: signature, expiry, attestation (as a receiver checks them), then the sealed sender. */
function checkToken(b: CryptoBackend, ctx: ReportContext, item: ReportItem, acceptedAt: number): ReportRefusalCode | null {
  const t = item.token as ModeratorToken;
  const check = checkModeratorToken(b, ctx.moderatorKey, t, acceptedAt, item.frankingTag, item.attestation);
  if (check === 'TOKEN_INVALID' || check === 'TOKEN_EXPIRED') return 'TOKEN_INVALID_IN_REPORT';
  if (check === 'ATTESTATION_INVALID') return 'ATTESTATION_INVALID';
  const mtk = ctx.tokenKey(t.keyId);
  if (mtk === null) return 'FRANK_KEY_EXPIRED';
  const holder = openTokenHolder(b, mtk, t);
  if (holder === null) return 'TOKEN_INVALID_IN_REPORT';
  if (!bytesEqual(holder.accountKey, item.sender.accountKey) || holder.deviceId !== item.sender.deviceId) return 'SENDER_MISMATCH';
  return null;
}

/**
 * §9.2 steps 1-4, 6 and 7, in order, item by item; the first failure
 * refuses the whole report. Context items must have the reported item's
 * sender (the group-id rule for group context needs the Content layer and
 * is the caller's).
 */
export function verifyReport(b: CryptoBackend, report: AbuseReport, ctx: ReportContext): ReportVerdict {
  abytes(ctx.reporterAccount, 'reporterAccount', 32);
  const first = report.items[0] as ReportItem;
  for (const [n, item] of report.items.entries()) {
    const refuse = (code: ReportRefusalCode): ReportVerdict => ({ ok: false, code, item: n });
    const key = ctx.frankKey(item.frankKeyId);
    if (key === null) return refuse('FRANK_KEY_EXPIRED');
    const acceptedAt = timeFromBytes(item.acceptedAt);
    if (acceptedAt < 0 || !ctx.reporterDevices.includes(item.recipientDevice)) return refuse('FRANK_INVALID');
    const identified = item.token === null;
    const franked = checkRelayFrank(
      b,
      key,
      {
        keyId: item.frankKeyId,
        frankingTag: item.frankingTag,
        recipient: { accountKey: ctx.reporterAccount, deviceId: item.recipientDevice },
        acceptedAt,
        envelopeId: item.envelopeId,
        sender: identified ? item.sender : null,
      },
      item.frank,
    );
    if (!franked) return refuse('FRANK_INVALID');
    if (!checkFrankingTag(b, item.frankingKey, item.sender, item.plaintext, item.frankingTag)) return refuse('TAG_MISMATCH');
    if (!identified) {
      const code = checkToken(b, ctx, item, acceptedAt);
      if (code !== null) return refuse(code);
    }
    if (n > 0 && (!bytesEqual(item.sender.accountKey, first.sender.accountKey) || item.sender.deviceId !== first.sender.deviceId)) {
      return refuse('CONTEXT_MISMATCH');
    }
  }
  const seen = new Set<string>();
  for (const [n, item] of report.items.entries()) {
    const id = toHex(item.envelopeId);
    if (seen.has(id)) return { ok: false, code: 'CONTEXT_MISMATCH', item: n };
    seen.add(id);
  }
  if (ctx.reportedBefore(first.envelopeId)) return { ok: false, code: 'REPORT_DUPLICATE', item: 0 };
  return { ok: true };
}
