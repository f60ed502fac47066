/**
 * Rows as both SQL backends return them, and their mapping to the storage
 * interface's records: written once. Byte columns arrive as Buffers
 * (better-sqlite3 BLOB, node-postgres BYTEA); integers as numbers (the
 * PostgreSQL driver parses BIGINT as a safe integer, storage/postgres.ts).
 */
import { seal } from '@parley/core';
import type {
  AttachmentRecord,
  CommittedMessage,
  DeviceAddress,
  DeviceRecord,
  OutgoingEnvelope,
  StoredMessage,
  StoredReport,
} from './types.ts';

export interface DeviceRow {
  account: Buffer;
  device_id: number;
  certificate: Buffer;
  certificate_hash: Buffer;
  signing_key: Buffer;
  registered_at: number;
}

export const DEVICE_COLUMNS = 'account, device_id, certificate, certificate_hash, signing_key, registered_at';

export interface MessageRow {
  seq: number;
  sender_account: Buffer;
  sender_device: number;
  client_id: string;
  server_ts: number;
  expires_at: number;
  envelope: Buffer;
  delivery: Buffer | null;
  /** The stored-once payload the row refers to (a fan-out or a sealed group send), else null. */
  payload?: Buffer | null;
}

export interface ReportRow {
  id: number | string;
  reporter_account: Buffer;
  reporter_device: number;
  envelope_id: Buffer;
  received_at: number | string;
  report: Buffer;
}

export function toReport(r: ReportRow): StoredReport {
  return {
    id: Number(r.id),
    reporter: { accountKey: bytes(r.reporter_account), deviceId: r.reporter_device },
    envelopeId: bytes(r.envelope_id),
    receivedAt: Number(r.received_at),
    report: bytes(r.report),
  };
}

export interface AttachmentRow {
  id: string;
  owner_account: Buffer;
  owner_device: number;
  size: number;
  received: number;
  /** SQLite has no boolean: 0/1 there, a boolean in PostgreSQL. */
  complete: number | boolean;
  created_at: number;
  expires_at: number;
}

/** The prekey bookkeeping of one device row. */
export interface KeyStateRow {
  signed_prekey_id: number;
  last_resort_kem_id: number;
  /** Highest one-time id ever handed out: uploads at or below it are ignored. */
  one_time_handed_max: number;
  kem_handed_max: number;
}

/** The stored parts of one device's bundle. */
export interface BundleRow {
  device_id: number;
  certificate: Buffer;
  signed_prekey: Buffer;
  /** The signed prekey's v2 form (spec/09-relay.md §4.2.1), NULL for a v1-only device. */
  signed_prekey_v2: Buffer | null;
  last_resort_kem: Buffer;
}

export interface DeviceListRow {
  revision: number;
  list: Buffer;
  updated_at: number;
}

/** A view of a Buffer as a plain Uint8Array (no copy). */
export const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** A Uint8Array as a Buffer (no copy), the type both drivers bind. */
export function buf(a: Uint8Array): Buffer {
  return Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function toDevice(r: DeviceRow): DeviceRecord {
  return {
    accountKey: bytes(r.account),
    deviceId: r.device_id,
    certificate: bytes(r.certificate),
    certificateHash: bytes(r.certificate_hash),
    signingKey: bytes(r.signing_key),
    registeredAt: r.registered_at,
  };
}

export function toAttachment(r: AttachmentRow): AttachmentRecord {
  return {
    id: r.id,
    owner: { accountKey: bytes(r.owner_account), deviceId: r.owner_device },
    size: r.size,
    received: r.received,
    complete: r.complete === true || r.complete === 1,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

export function toMessage(r: MessageRow): StoredMessage {
  return {
    seq: r.seq,
    sender: { accountKey: bytes(r.sender_account), deviceId: r.sender_device },
    clientId: r.client_id,
    serverTimestamp: r.server_ts,
    expiresAt: r.expires_at,
    envelope: envelopeOf(r),
    ...(r.delivery === null || r.delivery === undefined ? {} : { delivery: bytes(r.delivery) }),
  };
}

/**
 * A plain row holds its envelope; a fan-out row only refers to the payload,
 * which is the envelope; a sealed group row holds its device's seal and
 * refers to the payload, and the device gets both in one
 * SealedGroupEnvelope (spec/12-sealed-sender.md §10).
 */
function envelopeOf(r: MessageRow): Uint8Array {
  if (r.payload === null || r.payload === undefined) return bytes(r.envelope);
  if (r.envelope.length === 0) return bytes(r.payload);
  return seal.encodeSealedGroupEnvelope({ seal: bytes(r.envelope), payload: bytes(r.payload) });
}

/** What a sealed group row's recipient gets (as `envelopeOf`), built only when read. */
export function sealedGroupEnvelope(deviceSeal: Uint8Array, payload: Uint8Array): () => Uint8Array {
  return () => seal.encodeSealedGroupEnvelope({ seal: deviceSeal, payload });
}

/**
 * A mailbox row as its insert wrote it, for live push (the same record `toMessage` reads back).
 * `envelope` as a function is built on first read: most recipients of a large group send are not
 * connected, and theirs is never built.
 */
export function committed(
  e: OutgoingEnvelope,
  previousSeq: number,
  seq: number,
  sender: DeviceAddress,
  now: number,
  expiresAt: number,
  envelope: Uint8Array | (() => Uint8Array),
): CommittedMessage {
  let built = typeof envelope === 'function' ? undefined : envelope;
  const message: StoredMessage = {
    seq,
    sender,
    clientId: e.clientId,
    serverTimestamp: now,
    expiresAt,
    get envelope(): Uint8Array {
      built ??= (envelope as () => Uint8Array)();
      return built;
    },
    ...(e.delivery === undefined ? {} : { delivery: e.delivery }),
  };
  return { recipient: e.recipient, previousSeq, message };
}
