/**
 * reports.json against spec/design/formats-v2.md §9.1-§9.2 (with §6.1-§6.3):
 * the verifier decodes each report and runs the checks of §9.2 steps 1-4, 6
 * and 7 itself, in order, and must reach the vector's verdict.
 */
import { same } from '../lib/check.mjs';
import { decode, encode, readArray, readBytes, readUint } from '../lib/cbor.mjs';
import { concat, equal, fromHex as h, toHex } from '../lib/hex.mjs';
import { ed25519Verify, hmac, open, sha256 } from '../lib/primitives.mjs';

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

export function checkReports(f) {
  for (const g of f.groups('ReportVerification')) {
    for (const t of g.tests) {
      f.run(t, () => {
        const v = verdict(readReport(h(t.report)), t.context);
        same('verdict', v, t.result === 'valid' ? null : [t.error, t.item]);
      });
    }
  }
}
