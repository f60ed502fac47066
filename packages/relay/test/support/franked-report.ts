// What the report tests need to file a report the relay accepts: a franked
// send (spec/14-franking.md §3), the report item its recipient builds from
// the delivered franking record (§6), and an encrypted attachment with its
// pointer (spec 11 §4). Built from core's pieces, never the client's, so
// that a mistake shared by the client and the relay cannot hide.
import { type ReportItem, attachment, defaultProvider, frankingTag } from '@parley/core';
import type { FastifyInstance } from 'fastify';
import type { DeliveredMessage } from '../../src/schemas.ts';
import { type TestDevice, inject, json } from '../support.ts';
import { toBase64Url } from './signing.ts';

const b = defaultProvider().backend;

/** A delivered envelope's franking record, as the relay's schema defines it. */
export type Delivery = NonNullable<DeliveredMessage['delivery']>;

export const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

/** A millisecond time as the 8-byte big-endian field of a report item. */
export const be8 = (ms: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(ms));
  return out;
};

/** A message as its sender franks it: fresh franking key, tag over sender and plaintext. */
export function franked(from: TestDevice, plaintext: Uint8Array) {
  const fk = b.randomBytes(32);
  const sender = { accountKey: from.account.publicKey, deviceId: from.device.deviceId };
  return { fk, sender, plaintext, tag: frankingTag(b, fk, sender, plaintext) };
}
export type Franked = ReturnType<typeof franked>;

/** The report item the recipient's client builds from a delivered message and what it decrypted. */
export function reportItemOf(
  d: Delivery,
  m: Franked,
  recipientDevice: number,
  role: 1 | 2 = 1,
  attachments: ReportItem['attachments'] = [],
): ReportItem {
  return {
    role,
    envelopeId: fromB64(d.envelopeId),
    acceptedAt: be8(d.acceptedAt),
    frankKeyId: d.frankKeyId,
    frank: fromB64(d.frank),
    recipientDevice,
    frankingTag: m.tag,
    frankingKey: m.fk,
    sender: m.sender,
    plaintext: m.plaintext,
    token: null,
    attestation: null,
    attachments,
  };
}

export interface FrankedSend {
  /** The message's client id. */
  id: string;
  /** The envelope bytes (the relay never reads them); 40 random bytes unless given. */
  envelope?: Uint8Array;
  /** Ack the fetched message, as a client that has read it does (default true). */
  ack?: boolean;
  /** The attachments the report item lists. */
  attachments?: ReportItem['attachments'];
}

/**
 * `from` franks and sends `plaintext` to `to`'s device; `to` fetches it and
 * builds the report item for the newest message in its mailbox.
 */
export async function sendFranked(
  app: FastifyInstance,
  from: TestDevice,
  to: TestDevice,
  plaintext: Uint8Array,
  opts: FrankedSend,
): Promise<ReportItem> {
  const m = franked(from, plaintext);
  const envelope = toBase64Url(opts.envelope ?? b.randomBytes(40));
  const deviceId = to.device.deviceId;
  const sent = await inject(app, from.signer, {
    method: 'POST',
    url: '/v1/messages',
    json: { messages: [{ account: to.id, deviceId, id: opts.id, envelope, frankingTag: toBase64Url(m.tag) }] },
  });
  if (sent.statusCode !== 200) throw new Error(`franked send: ${sent.statusCode} ${sent.body}`);
  const fetched = await inject(app, to.signer, { method: 'GET', url: '/v1/messages' });
  const last = json<{ messages: { seq: number; delivery: Delivery }[] }>(fetched).messages.at(-1);
  if (last === undefined) throw new Error('franked send: nothing delivered');
  if (opts.ack ?? true) await inject(app, to.signer, { method: 'POST', url: '/v1/messages/ack', json: { seqs: [last.seq] } });
  return reportItemOf(last.delivery, m, deviceId, 1, opts.attachments ?? []);
}

/** An encrypted attachment in the format of spec 11 §4, in `chunkSize` chunks, under `key` (fresh unless given). */
export function sealBlob(plaintext: Uint8Array, chunkSize: number, key = b.randomBytes(32)) {
  const f = attachment;
  const prefix = new Uint8Array(f.HEADER_PREFIX_BYTES);
  prefix.set(f.MAGIC, 0);
  prefix[f.HEADER_OFFSETS.version] = f.FORMAT_VERSION;
  prefix[f.HEADER_OFFSETS.exponent] = Math.log2(chunkSize);
  prefix.set(b.randomBytes(f.SALT_BYTES), f.HEADER_OFFSETS.salt);
  const keys = f.deriveAttachmentKeys(b, key, prefix);
  const count = f.chunkCountOf(plaintext.length, chunkSize);
  const parts: Uint8Array[] = [prefix, keys.commitment];
  for (let i = 0; i < count; i++) {
    const chunk = plaintext.subarray(i * chunkSize, (i + 1) * chunkSize);
    parts.push(b.aeadSeal(keys.payloadKey, f.chunkNonce(i, i === count - 1), chunk, new Uint8Array(0)));
  }
  const blob = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    blob.set(p, at);
    at += p.length;
  }
  return { blob, key, chunkSize, plaintextSize: plaintext.length, digest: b.sha256(blob) };
}
export type Sealed = ReturnType<typeof sealBlob>;

/** The pointer fields of a sealed blob stored as `id`; `digest` may be replaced to name a blob that is not its own. */
export const pointerOf = (id: string, s: Sealed, digest = s.digest, fileName?: string) =>
  attachment.encodePointerFields({
    id,
    key: s.key,
    digest,
    plaintextSize: s.plaintextSize,
    ciphertextSize: attachment.ciphertextSizeOf(s.plaintextSize, s.chunkSize),
    chunkSize: s.chunkSize,
    ...(fileName === undefined ? {} : { fileName }),
  });
