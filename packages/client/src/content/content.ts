/**
 * The plaintext inside every one-to-one and group message: what the app
 * sent, with its id, time and timer. spec/10-client.md §3 gives it byte by
 * byte.
 *
 *   Content = [version: 1, type: uint, messageId: bstr .size 16,
 *              sentAt: bstr .size 8, expireTimer: uint, group: bstr .size 32 / null,
 *              body: [* any], deviceList: bstr / null]
 *
 * Core has no clock: `sentAt` is the sending app's clock and is only ever
 * shown, never trusted for ordering or expiry (expiry counts from when the
 * receiver stored the message). This module only encodes and decodes.
 */
import { ParleyError, decodeCbor, encodeCbor, groupLimits, type CborValue } from '@parley/core';
import { MAX_POINTER_BYTES, decodeAttachmentPointer } from '../attachments/index.ts';
import { malformed, readArray, readBool, readBytes, readOptional, readText, readTimestamp, readUint, timestampToBytes } from './fields.ts';
import { secretBytes } from '../attachments/secret-bytes.ts';

export const CONTENT_VERSION = 1;
export const MESSAGE_ID_BYTES = 16;
export const GROUP_ID_BYTES = 32;
export const ACCOUNT_KEY_BYTES = 32;

/** Largest text message, in UTF-8 bytes. Longer text goes as an attachment. */
export const MAX_TEXT_BYTES = 64 * 1024;
/** Message ids in one receipt: a batch of delivery receipts after a long offline stretch. */
export const MAX_RECEIPT_IDS = 512;
/** Longest disappearing-message timer: one year, in seconds. */
export const MAX_EXPIRE_TIMER = 365 * 24 * 3600;
/** Largest signed device list: 32 devices (the relay's per-account limit) at ~40 bytes, and the signature. */
export const MAX_DEVICE_LIST_BYTES = 4096;
/** Accounts in one group update. */
export const MAX_GROUP_MEMBERS = 1000;
/**
 * Highest group revision. Revisions move by exactly one per change, so a
 * group reaches this only after 2^32 - 2 changes; a state at the top cannot
 * be changed again (refused with GROUP_LIMIT, never an overflow).
 */
export const MAX_GROUP_REVISION = 0xfffffffe;
/** Longest group name, in UTF-8 bytes. */
export const MAX_GROUP_NAME_BYTES = 256;
/** A group state hash: SHA-256. */
export const GROUP_STATE_HASH_BYTES = 32;
/** Largest core distribution inside a distribution content (one chain: about 150 bytes). */
export const MAX_DISTRIBUTION_BYTES = 1024;
/** Largest envelope id named in a retry request (the relay's client ids are shorter). */
export const MAX_CLIENT_ID_CHARS = 128;
/** Largest encoded content: core's plaintext bound. */
export const MAX_CONTENT_BYTES = 1 << 20;
/**
 * Contacts in one contacts-sync content (spec/10-client.md §7.1): at most
 * 32 + 256 + a few bytes each, so a full content stays far below
 * MAX_CONTENT_BYTES; a longer list goes out as several contents.
 */
export const MAX_SYNCED_CONTACTS = 1000;
/** Longest contact name accepted from a sync (bytes; names are made at most 64 characters). */
export const MAX_CONTACT_NAME_BYTES = 256;

/** Type numbers on the wire. */
export const ContentType = {
  text: 1,
  attachment: 2,
  receipt: 3,
  typing: 4,
  retry: 5,
  sync: 6,
  distribution: 7,
  groupUpdate: 8,
  deviceList: 9,
  timer: 10,
  contacts: 11,
  tokenGrant: 12,
} as const;

/** Bytes of a delivery token (spec/12-sealed-sender.md §3). */
export const DELIVERY_TOKEN_BYTES = 32;

/** A contact as the account's devices share it: who, under which name, and whether the user verified the safety number. */
export interface SyncedContact {
  readonly accountKey: Uint8Array;
  readonly name: string;
  readonly verified: boolean;
}

/**
 * An attachment as a message carries it: the encoded AttachmentPointer
 * (spec/11-attachments.md §5: relay id, key, digest, sizes, chunk size, file
 * name, media type) and, decoded from it for display, the fields an app
 * shows before downloading. The pointer holds the key: it only ever travels
 * inside an encrypted message.
 */
export interface AttachmentInfo {
  readonly pointer: Uint8Array;
  /** The relay's id for the ciphertext. */
  readonly id: string;
  readonly size: number;
  readonly fileName: string | null;
  readonly contentType: string | null;
}

/** Reads the display fields of an encoded pointer (throws AttachmentError bad-pointer). */
export function attachmentInfo(pointer: Uint8Array): AttachmentInfo {
  const p = decodeAttachmentPointer(pointer);
  return {
    // Redacted when printed or serialized to JSON: the pointer holds the attachment key (spec/10 §8).
    pointer: secretBytes(pointer),
    id: p.id,
    size: p.plaintextSize,
    fileName: p.fileName ?? null,
    contentType: p.contentType ?? null,
  };
}

/**
 * A group state as it travels (spec/08-groups.md §13): the hashed state
 * (revision, name, members, admins, parent, author) plus the sender's core epoch.
 * A change names the state it changes by `parent`, the hash of that state
 * (engine/groups.ts and state/group-state.ts apply the rules).
 */
export interface GroupState {
  /** Exactly one more than the parent state's; 1 for a new group. */
  readonly revision: number;
  readonly name: string;
  /** Member accounts, the sender's included; no repeats. */
  readonly members: readonly Uint8Array[];
  /** Accounts that may change the group: a non-empty subset of `members`. */
  readonly admins: readonly Uint8Array[];
  /** State hash of the state this one changes (32 zero bytes for a new group). */
  readonly parent: Uint8Array;
  /** The account that made this change (it must be the account that sends it). */
  readonly author: Uint8Array;
  /** The sender's core group epoch (a joining device starts there); not part of the hashed state. */
  readonly epoch: number;
}

export type ContentBody =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'attachment'; readonly attachment: AttachmentInfo; readonly caption: string }
  | { readonly type: 'receipt'; readonly kind: 'delivered' | 'read'; readonly messageIds: readonly Uint8Array[] }
  | { readonly type: 'typing'; readonly typing: boolean }
  /** Asks the sender to re-send the envelope it sent with this client id (spec §6). */
  | { readonly type: 'retry'; readonly clientId: string }
  /** A copy for the sender's own devices: `content` was sent to `destination` (an account; null for a group content). */
  | { readonly type: 'sync'; readonly destination: Uint8Array | null; readonly content: Content }
  /** A core sender-key distribution for the group in `group`, with the group's state (so a new device learns the group). */
  | { readonly type: 'distribution'; readonly distribution: Uint8Array; readonly state: GroupState }
  /** The group's state after a change (sent to old and new members). */
  | { readonly type: 'group-update'; readonly state: GroupState }
  /** Carries the sender account's signed device list (in the `deviceList` field). */
  | { readonly type: 'device-list' }
  /** Sets the conversation's disappearing-message timer to `expireTimer`. */
  | { readonly type: 'timer' }
  /** Contacts (names, verification marks) for the sender's own other devices only (spec §7.1). */
  | { readonly type: 'contacts'; readonly contacts: readonly SyncedContact[] }
  /** A delivery token the sender grants the recipient account for sealed sends to it, until `expiresAt` (spec/12 §3). */
  | { readonly type: 'token-grant'; readonly token: Uint8Array; readonly expiresAt: number };

export interface Content {
  readonly messageId: Uint8Array;
  /** Sender's clock, ms since the epoch. */
  readonly sentAt: number;
  /** Seconds until the message disappears after it is stored; 0 for never. */
  readonly expireTimer: number;
  /** The group this content belongs to, or null for a one-to-one conversation. */
  readonly group: Uint8Array | null;
  readonly body: ContentBody;
  /** The sender account's signed device list (spec §5), when the sender attaches it. */
  readonly deviceList: Uint8Array | null;
}

function bodyToCbor(body: ContentBody): CborValue[] {
  switch (body.type) {
    case 'text':
      return [body.text];
    case 'attachment':
      return [body.attachment.pointer, body.caption];
    case 'receipt':
      return [body.kind === 'delivered' ? 1 : 2, [...body.messageIds]];
    case 'typing':
      return [body.typing];
    case 'retry':
      return [body.clientId];
    case 'sync':
      return [body.destination, encodeContent(body.content)];
    case 'distribution':
      return [body.distribution, ...groupStateToCbor(body.state)];
    case 'group-update':
      return groupStateToCbor(body.state);
    case 'device-list':
    case 'timer':
      return [];
    case 'contacts':
      return [body.contacts.map((c) => [c.accountKey, c.name, c.verified])];
    case 'token-grant':
      return [body.token, timestampToBytes(body.expiresAt)];
  }
}

export function encodeContent(c: Content): Uint8Array {
  if (c.messageId.length !== MESSAGE_ID_BYTES) throw new RangeError(`"messageId" expected ${MESSAGE_ID_BYTES} bytes`);
  if (!Number.isInteger(c.expireTimer) || c.expireTimer < 0 || c.expireTimer > MAX_EXPIRE_TIMER) {
    throw new RangeError(`"expireTimer" expected 0..${MAX_EXPIRE_TIMER} seconds`);
  }
  const out = encodeCbor([
    CONTENT_VERSION,
    ContentType[typeKey(c.body.type)],
    c.messageId,
    timestampToBytes(c.sentAt),
    c.expireTimer,
    c.group,
    bodyToCbor(c.body),
    c.deviceList,
  ]);
  // Encoding what we would refuse to decode is a bug in the caller: fail here, not at every receiver.
  decodeContent(out);
  return out;
}

/** The group-state fields of a group-update or distribution body, in wire order. */
const GROUP_STATE_FIELDS = 7;

function groupStateToCbor(g: GroupState): CborValue[] {
  return [g.revision, g.name, [...g.members], g.epoch, [...g.admins], g.parent, g.author];
}

/** Reads an account list: 32-byte keys, no repeats. */
function readAccounts(v: unknown, field: string): Uint8Array[] {
  const out = readArray(v, field, { min: 1, max: MAX_GROUP_MEMBERS }).map((m) => readBytes(m, field, ACCOUNT_KEY_BYTES));
  const seen = new Set<string>();
  for (const a of out) {
    const key = a.join(',');
    if (seen.has(key)) malformed(`${field}: an account is listed twice`, field);
    seen.add(key);
  }
  return out;
}

/**
 * Every peer-controlled number is bounded here: a revision past
 * MAX_GROUP_REVISION and a joining epoch past core's MAX_GROUP_JOIN_EPOCH
 * are OVERSIZED, so no later step can overflow.
 */
function readGroupState(f: unknown[]): GroupState {
  const revision = readUint(f[0], 'group.revision', MAX_GROUP_REVISION);
  if (revision === 0) malformed('group.revision: must be at least 1', 'group.revision');
  const members = readAccounts(f[2], 'group.members');
  const admins = readAccounts(f[4], 'group.admins');
  const memberKeys = new Set(members.map((m) => m.join(',')));
  if (!admins.every((a) => memberKeys.has(a.join(',')))) malformed('group.admins: every admin must be a member', 'group.admins');
  return {
    revision,
    name: readText(f[1], 'group.name', MAX_GROUP_NAME_BYTES),
    members,
    admins,
    parent: readBytes(f[5], 'group.parent', GROUP_STATE_HASH_BYTES),
    author: readBytes(f[6], 'group.author', ACCOUNT_KEY_BYTES),
    epoch: readUint(f[3], 'group.epoch', groupLimits.MAX_GROUP_JOIN_EPOCH),
  };
}

function typeKey(type: ContentBody['type']): keyof typeof ContentType {
  return type === 'group-update' ? 'groupUpdate' : type === 'device-list' ? 'deviceList' : type === 'token-grant' ? 'tokenGrant' : type;
}

/**
 * Decodes and checks every field. Throws MALFORMED / OVERSIZED, or
 * UNSUPPORTED_VERSION for an unknown version or type (a newer sender).
 */
export function decodeContent(bytes: Uint8Array, nested = false): Content {
  const v = decodeCbor(bytes, 'Content', MAX_CONTENT_BYTES);
  if (!Array.isArray(v) || v.length < 2) malformed('Content: expected an array with version and type');
  if (v[0] !== CONTENT_VERSION) {
    if (typeof v[0] !== 'number') malformed('Content: version must be an integer');
    throw new ParleyError('UNSUPPORTED_VERSION', `Content: unsupported version ${v[0]}`, { version: v[0] });
  }
  const f = readArray(v, 'Content', 8);
  const type = readUint(f[1], 'type');
  const messageId = readBytes(f[2], 'messageId', MESSAGE_ID_BYTES);
  const sentAt = readTimestamp(f[3], 'sentAt');
  const expireTimer = readUint(f[4], 'expireTimer', MAX_EXPIRE_TIMER);
  const group = readOptional(f[5], (g) => readBytes(g, 'group', GROUP_ID_BYTES));
  const deviceList = readOptional(f[7], (d) => readBytes(d, 'deviceList', { min: 1, max: MAX_DEVICE_LIST_BYTES }));
  const body = readBody(type, f[6], nested);
  if (body.type === 'device-list' && deviceList === null) malformed('Content: a device-list content must carry the list', 'deviceList');
  if ((body.type === 'distribution' || body.type === 'group-update') && group === null) {
    malformed(`Content: a ${body.type} content must name its group`, 'group');
  }
  if (body.type === 'contacts' && group !== null) malformed('Content: a contacts content names no group', 'group');
  if (body.type === 'token-grant' && group !== null) malformed('Content: a token grant names no group', 'group');
  if (nested && deviceList !== null) malformed('Content: a synced content carries no device list', 'deviceList');
  return { messageId, sentAt, expireTimer, group, body, deviceList };
}

function readBody(type: number, v: unknown, nested: boolean): ContentBody {
  switch (type) {
    case ContentType.text: {
      const b = readArray(v, 'text body', 1);
      return { type: 'text', text: readText(b[0], 'text', MAX_TEXT_BYTES) };
    }
    case ContentType.attachment: {
      const b = readArray(v, 'attachment body', 2);
      const pointer = readBytes(b[0], 'attachment.pointer', { min: 1, max: MAX_POINTER_BYTES });
      return { type: 'attachment', attachment: attachmentInfo(pointer), caption: readText(b[1], 'caption', MAX_TEXT_BYTES) };
    }
    case ContentType.receipt: {
      const b = readArray(v, 'receipt body', 2);
      const kind = readUint(b[0], 'receipt.kind', 2);
      if (kind === 0) malformed('receipt.kind: must be 1 or 2', 'receipt.kind');
      const ids = readArray(b[1], 'receipt.messageIds', { min: 1, max: MAX_RECEIPT_IDS });
      return {
        type: 'receipt',
        kind: kind === 1 ? 'delivered' : 'read',
        messageIds: ids.map((id) => readBytes(id, 'receipt.messageId', MESSAGE_ID_BYTES)),
      };
    }
    case ContentType.tokenGrant: {
      const b = readArray(v, 'token-grant body', 2);
      return {
        type: 'token-grant',
        token: readBytes(b[0], 'token-grant.token', DELIVERY_TOKEN_BYTES),
        expiresAt: readTimestamp(b[1], 'token-grant.expiresAt'),
      };
    }
    case ContentType.typing: {
      const b = readArray(v, 'typing body', 1);
      return { type: 'typing', typing: readBool(b[0], 'typing') };
    }
    case ContentType.retry: {
      const b = readArray(v, 'retry body', 1);
      const clientId = readText(b[0], 'retry.clientId', MAX_CLIENT_ID_CHARS);
      if (clientId.length === 0) malformed('retry.clientId: empty', 'retry.clientId');
      return { type: 'retry', clientId };
    }
    case ContentType.sync: {
      if (nested) malformed('Content: a sync content cannot hold another', 'sync');
      const b = readArray(v, 'sync body', 2);
      const destination = readOptional(b[0], (d) => readBytes(d, 'sync.destination', ACCOUNT_KEY_BYTES));
      const inner = decodeContent(readBytes(b[1], 'sync.content', { max: MAX_CONTENT_BYTES }), true);
      if ((destination === null) === (inner.group === null)) {
        malformed('sync: exactly one of destination and the inner group must be set', 'sync.destination');
      }
      return { type: 'sync', destination, content: inner };
    }
    case ContentType.distribution: {
      const b = readArray(v, 'distribution body', 1 + GROUP_STATE_FIELDS);
      return {
        type: 'distribution',
        distribution: readBytes(b[0], 'distribution', { min: 1, max: MAX_DISTRIBUTION_BYTES }),
        state: readGroupState(b.slice(1)),
      };
    }
    case ContentType.groupUpdate:
      return { type: 'group-update', state: readGroupState(readArray(v, 'group-update body', GROUP_STATE_FIELDS)) };
    case ContentType.deviceList:
      readArray(v, 'device-list body', 0);
      return { type: 'device-list' };
    case ContentType.timer:
      readArray(v, 'timer body', 0);
      return { type: 'timer' };
    case ContentType.contacts: {
      if (nested) malformed('Content: a contacts content is not synced inside another', 'contacts');
      const b = readArray(v, 'contacts body', 1);
      const list = readArray(b[0], 'contacts', { min: 0, max: MAX_SYNCED_CONTACTS });
      return {
        type: 'contacts',
        contacts: list.map((entry) => {
          const f = readArray(entry, 'contact', 3);
          const name = readText(f[1], 'contact.name', MAX_CONTACT_NAME_BYTES);
          if (name.length === 0) malformed('contact.name: empty', 'contact.name');
          return { accountKey: readBytes(f[0], 'contact.account', ACCOUNT_KEY_BYTES), name, verified: readBool(f[2], 'contact.verified') };
        }),
      };
    }
    default:
      throw new ParleyError('UNSUPPORTED_VERSION', `Content: unknown type ${type}`, { type });
  }
}
