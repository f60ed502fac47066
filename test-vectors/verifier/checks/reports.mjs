/**
 * reports.json against spec/design/formats-v2.md §9.1-§9.2 (with §6.1-§6.3):
 * the verifier decodes each report and runs the checks of §9.2 steps 1-4, 6
 * and 7 itself, in order, and must reach the vector's verdict. For the
 * ReportAttachments group it then runs step 5 (spec/14-franking.md §6.1):
 * it reads the pointer out of the Content (10 §3), decodes it (11 §5) and
 * checks the blob itself (11 §3-§4: length, header, key commitment by HKDF,
 * every chunk's ChaCha20-Poly1305 tag at its STREAM nonce, SHA-256).
 */
import { same } from '../lib/check.mjs';
import { decode, encode, readArray, readBytes, readUint } from '../lib/cbor.mjs';
import { concat, equal, fromHex as h, toHex } from '../lib/hex.mjs';
import { ed25519Verify, hkdf, hmac, open, sha256 } from '../lib/primitives.mjs';

const PERIOD = 86_400_000;
const be32 = (n) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const ms = (b8) => Number(new DataView(b8.buffer, b8.byteOffset, 8).getBigUint64(0));

function readReport(bytes) {
  const r = readArray(decode(bytes, 'AbuseReport', 16 << 20), 'AbuseReport', 4);
  same('version', r[0], 2);
  return readArray(r[3], 'items', { min: 1, max: 11 }).map((v) => {
    const f = readArray(v, 'item', 13);
    const sender = readArray(f[8], 'sender', 2);
    const tok = f[10] === null ? null : readArray(f[10], 'token', 5);
    return {
      envelopeId: readBytes(f[1], 'envelopeId', 16),
      acceptedAt: readBytes(f[2], 'acceptedAt', 8),
      keyId: readUint(f[3], 'frankKeyId'),
      frank: readBytes(f[4], 'frank', 32),
      recipientDevice: readUint(f[5], 'recipientDevice'),
      tag: readBytes(f[6], 'frankingTag', 32),
      fk: readBytes(f[7], 'frankingKey', 32),
      sender: [readBytes(sender[0], 'sender', 32), readUint(sender[1], 'deviceId')],
      plaintext: f[9],
      token: tok && { keyId: tok[0], expiresAt: tok[1], eph: tok[2], sealed: tok[3], sig: tok[4] },
      attestation: f[11],
      attachments: readArray(f[12], 'attachments', { min: 0, max: 32 }).map((a) => readArray(a, 'attachment', 2)),
    };
  });
}

/** The verdict: null (accepted) or [code, item index]. */
function verdict(items, c) {
  const reporter = h(c.reporterAccount);
  for (const [n, it] of items.entries()) {
    const fk = c.frankKeys[it.keyId];
    if (fk === undefined) return ['FRANK_KEY_EXPIRED', n];
    const at = ms(it.acceptedAt);
    if (!c.reporterDevices.includes(it.recipientDevice) || Math.floor(at / PERIOD) !== it.keyId) return ['FRANK_INVALID', n];
    const input = encode([
      'Parley v2 relay frank',
      it.keyId,
      it.tag,
      reporter,
      it.recipientDevice,
      it.acceptedAt,
      it.envelopeId,
      it.token === null ? it.sender : null,
    ]);
    if (!equal(hmac(h(fk), input), it.frank)) return ['FRANK_INVALID', n];
    if (!equal(hmac(it.fk, encode(['Parley v2 franking tag', it.sender[0], it.sender[1], it.plaintext])), it.tag))
      return ['TAG_MISMATCH', n];
    if (it.token !== null) {
      const t = it.token;
      if (!ed25519Verify(h(c.moderatorKey), encode(['Parley v2 moderator token', t.keyId, t.expiresAt, t.eph, t.sealed]), t.sig)) {
        return ['TOKEN_INVALID_IN_REPORT', n];
      }
      if (ms(t.expiresAt) < at) return ['TOKEN_INVALID_IN_REPORT', n];
      if (it.attestation === null || !ed25519Verify(t.eph, encode(['Parley v2 franking signature', it.tag]), it.attestation)) {
        return ['ATTESTATION_INVALID', n];
      }
      const mtk = c.tokenKeys[t.keyId];
      if (mtk === undefined) return ['FRANK_KEY_EXPIRED', n];
      const who = open(h(mtk), sha256(t.eph).slice(0, 12), t.sealed, concat(be32(t.keyId), t.expiresAt, t.eph));
      if (who === null || who.length !== 36) return ['TOKEN_INVALID_IN_REPORT', n];
      const device = new DataView(who.buffer, who.byteOffset + 32, 4).getUint32(0);
      if (!equal(who.slice(0, 32), it.sender[0]) || device !== it.sender[1]) return ['SENDER_MISMATCH', n];
    }
    if (n > 0 && (!equal(it.sender[0], items[0].sender[0]) || it.sender[1] !== items[0].sender[1])) return ['CONTEXT_MISMATCH', n];
  }
  const ids = items.map((i) => toHex(i.envelopeId));
  const dup = ids.findIndex((id, n) => ids.indexOf(id) !== n);
  if (dup >= 0) return ['CONTEXT_MISMATCH', dup];
  if (c.reportedBefore.includes(ids[0])) return ['REPORT_DUPLICATE', 0];
  return null;
}

// ---- step 5: files ----------------------------------------------------------

const HEADER = 56;
const MAGIC = Uint8Array.of(0x50, 0x52, 0x4c, 0x59, 0x41, 0x54);
const KEY_INFO = new TextEncoder().encode('Parley v1 attachment');

/** The pointers a Content carries: type 2 (attachment), body [pointer, caption]; nothing for anything else. */
function contentPointers(plaintext) {
  let v;
  try {
    v = decode(plaintext, 'Content', 1 << 20);
  } catch {
    return [];
  }
  if (!Array.isArray(v) || (v[0] !== 1 && v[0] !== 2) || v[1] !== 2 || !Array.isArray(v[6]) || !(v[6][0] instanceof Uint8Array)) return [];
  return [v[6][0]];
}

function readPointer(bytes) {
  const p = readArray(decode(bytes, 'pointer', 1024), 'pointer', 9);
  same('pointer version', p[0], 1);
  const size = readUint(p[4], 'plaintextSize');
  const chunk = readUint(p[6], 'chunkSize');
  const ct = readUint(p[5], 'ciphertextSize');
  if (Math.log2(chunk) % 1 !== 0 || chunk < 16 || chunk > 1 << 22) throw new Error('chunk size');
  if (ct !== HEADER + size + 16 * Math.max(1, Math.ceil(size / chunk))) throw new Error('sizes');
  return { id: p[1], key: readBytes(p[2], 'key', 32), digest: readBytes(p[3], 'digest', 32), size, chunk, ct };
}

/** null when `blob` is exactly the pointer's file, else the first failing check. */
function blobFailure(p, blob) {
  if (blob.length > p.ct || blob.length < HEADER) return 'length';
  const header = blob.subarray(0, HEADER);
  if (!equal(header.subarray(0, 6), MAGIC) || header[6] !== 1 || 2 ** header[7] !== p.chunk) return 'header';
  const okm = hkdf(header.subarray(8, 24), p.key, concat(KEY_INFO, header.subarray(0, 8)), 64);
  if (!equal(okm.subarray(0, 32), header.subarray(24, 56))) return 'wrong-key';
  const count = Math.max(1, Math.ceil(p.size / p.chunk));
  let at = HEADER;
  for (let i = 0; i < count; i++) {
    const len = (i < count - 1 ? p.chunk : p.size - i * p.chunk) + 16;
    if (at + len > blob.length) return 'length';
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setUint32(7, i);
    nonce[11] = i === count - 1 ? 1 : 0;
    if (open(okm.subarray(32), nonce, blob.subarray(at, at + len), new Uint8Array(0)) === null) return 'chunk-auth';
    at += len;
  }
  if (blob.length !== p.ct) return 'length';
  return equal(sha256(blob), p.digest) ? null : 'digest';
}

/** Step 5's verdict: null, or [code, item, reason]. */
function fileVerdict(items, stored) {
  for (const [n, it] of items.entries()) {
    const pointers = contentPointers(it.plaintext);
    const listed = it.attachments;
    if (
      listed.length !== pointers.length ||
      new Set(listed.map((a) => a[0])).size !== listed.length ||
      listed.some((a) => a[0] >= pointers.length)
    ) {
      return ['ATTACHMENT_MISMATCH', n, 'unlisted'];
    }
    for (const [index, inline] of listed) {
      let p;
      try {
        p = readPointer(pointers[index]);
      } catch {
        return ['ATTACHMENT_MISMATCH', n, 'pointer'];
      }
      const blob = inline ?? (stored[p.id] === undefined ? null : h(stored[p.id]));
      if (blob === null) return ['ATTACHMENT_UNAVAILABLE', n, 'unavailable'];
      const failure = blobFailure(p, blob);
      if (failure) return ['ATTACHMENT_MISMATCH', n, failure];
    }
  }
  return null;
}

export function checkReports(f) {
  for (const g of f.groups('ReportAttachments')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const items = readReport(h(t.report));
        same('steps 1-4, 6, 7', verdict(items, t.context), null);
        same('step 5', fileVerdict(items, t.storedBlobs), t.result === 'valid' ? null : [t.error, t.item, t.reason]);
      });
    }
  }
  for (const g of f.groups('ReportVerification')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const v = verdict(readReport(h(t.report)), t.context);
        same('verdict', v, t.result === 'valid' ? null : [t.error, t.item]);
      });
    }
  }
}
