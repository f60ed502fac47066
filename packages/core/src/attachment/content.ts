/**
 * The attachment pointers a message's Content carries, read without the
 * client's Content codec (spec/10-client.md §3): a verifier of a franked
 * message (the relay's report route, the moderator tool) must find the file
 * the franked bytes commit to, and may not import the client.
 *
 *   Content = [version: 1 / 2, type, messageId, sentAt, expireTimer, group, body, deviceList, ...]
 *   type 2 (attachment): body = [pointer: bstr, caption: tstr]
 *
 * Versions 1 and 2 (formats-v2 §6.4) share these fields. Anything else
 * (another type, bytes that are no Content) carries no pointer.
 */
import { decodeCbor } from '../codec/cbor.ts';
import { MAX_PLAINTEXT_BYTES } from '../limits.ts';

/** Content type number of an attachment message (10 §3). */
export const CONTENT_TYPE_ATTACHMENT = 2;
const BODY_FIELD = 6;

/** The encoded pointers of `plaintext`, in body order (pointer index 0, 1, ...). */
export function contentAttachmentPointers(plaintext: Uint8Array): Uint8Array[] {
  let v: unknown;
  try {
    v = decodeCbor(plaintext, 'Content', MAX_PLAINTEXT_BYTES);
  } catch {
    return [];
  }
  if (!Array.isArray(v) || (v[0] !== 1 && v[0] !== 2) || v[1] !== CONTENT_TYPE_ATTACHMENT) return [];
  const body = v[BODY_FIELD];
  if (!Array.isArray(body) || !(body[0] instanceof Uint8Array)) return [];
  return [new Uint8Array(body[0])];
}
