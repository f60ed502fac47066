/**
 * Builds test-vectors/reports.json (formats-v2 §9, §14): abuse reports and
 * the verdict of §9.2 steps 1-4, 6, 7 for a given verifier context (keys by
 * period, the authenticated reporter, the moderator key, the envelopes
 * already reported); and reports of file messages with the verdict of step 5
 * (spec/14-franking.md §6.1) for the blobs the relay stores. The report test
 * checks the checked-in file equals this output; rewrite it on purpose with
 * `node --conditions=parley:source --import tsx packages/core/test/support/reports-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import {
  HEADER_OFFSETS,
  HEADER_PREFIX_BYTES,
  MAGIC,
  chunkCountOf,
  chunkNonce,
  ciphertextSizeOf,
  deriveAttachmentKeys,
} from '../../src/attachment/format.ts';
import { encodePointerFields } from '../../src/attachment/pointer.ts';
import { verifyReportAttachments } from '../../src/franking/report-attachments.ts';
import { concatBytes, toHex, u32be, utf8 } from '../../src/bytes.ts';
import { encodeCbor } from '../../src/codec/cbor.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { frankKeyId, relayFrank } from '../../src/franking/frank.ts';
import { type ReportItem, type ReportVerdict, decodeReport, encodeReport, verifyReport } from '../../src/franking/report.ts';
import type { ModeratorToken } from '../../src/franking/token.ts';
import { frankingTag } from '../../src/franking/tag.ts';
import { Label } from '../../src/labels.ts';
import { deterministicRandom } from '../../src/testing.ts';

export const REPORTS_FILE = new URL('../../../../test-vectors/reports.json', import.meta.url);

const b = nobleBackend;
// biome-ignore lint/suspicious/noExplicitAny: JSON test objects.
type Json = any;
type Device = { accountKey: Uint8Array; deviceId: number };

const be8 = (n: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};

export async function buildReports(): Promise<string> {
  const r = deterministicRandom('parley reports vectors');
  const edKey = () => {
    const seed = r(32);
    return { seed, publicKey: b.ed25519PublicKey(seed) };
  };
  const reporter: Device = { accountKey: r(32), deviceId: 2 };
  const sender: Device = { accountKey: r(32), deviceId: 1 };
  const acceptedAt = Date.UTC(2026, 11, 6, 5, 0, 0);
  const keyId = frankKeyId(acceptedAt);
  const FK = r(32);
  const MTK = r(32);
  const moderator = edKey();

  const token = (who: Device, expiresAt: number) => {
    const eph = edKey();
    const exp = be8(expiresAt);
    const sealedSender = b.aeadSeal(
      MTK,
      b.sha256(eph.publicKey).subarray(0, 12),
      concatBytes(who.accountKey, u32be(who.deviceId)),
      concatBytes(u32be(keyId), exp, eph.publicKey),
    );
    const signature = b.ed25519Sign(moderator.seed, encodeCbor([Label.moderatorToken, keyId, exp, eph.publicKey, sealedSender]));
    const t: ModeratorToken = { keyId, expiresAt: exp, ephemeralKey: eph.publicKey, sealedSender, signature };
    return { t, eph };
  };

  const item = (text: string, o: { role?: 1 | 2; sealedBy?: Device; from?: Device; tokenExpires?: number } = {}): ReportItem => {
    const from = o.from ?? sender;
    const plaintext = utf8(text);
    const frankingKey = r(32);
    const tag = frankingTag(b, frankingKey, from, plaintext);
    const envelopeId = r(16);
    const sealed = o.sealedBy ? token(o.sealedBy, o.tokenExpires ?? acceptedAt + 7 * 86_400_000) : null;
    const frank = relayFrank(b, FK, {
      keyId,
      frankingTag: tag,
      recipient: reporter,
      acceptedAt,
      envelopeId,
      sender: sealed ? null : from,
    });
    return {
      role: o.role ?? 1,
      envelopeId,
      acceptedAt: be8(acceptedAt),
      frankKeyId: keyId,
      frank,
      recipientDevice: reporter.deviceId,
      frankingTag: tag,
      frankingKey,
      sender: from,
      plaintext,
      token: sealed?.t ?? null,
      attestation: sealed ? b.ed25519Sign(sealed.eph.seed, encodeCbor([Label.frankingSignature, tag])) : null,
      attachments: [],
    };
  };

  const replayed = item('reported before');
  const baseContext = {
    reporterAccount: toHex(reporter.accountKey),
    reporterDevices: [1, 2],
    frankKeys: { [keyId]: toHex(FK) } as Record<number, string>,
    tokenKeys: { [keyId]: toHex(MTK) } as Record<number, string>,
    moderatorKey: toHex(moderator.publicKey),
    reportedBefore: [toHex(replayed.envelopeId)],
  };
  const cases: [string, ReportItem[], Partial<typeof baseContext>?][] = [
    [
      'identified text with two context messages',
      [item('you will regret this'), item('context 1', { role: 2 }), item('context 2', { role: 2 })],
    ],
    ['sealed message: moderator token and attestation', [item('sealed threat', { sealedBy: sender })]],
    ['altered content', [{ ...item('original'), plaintext: utf8('altered') }]],
    ['filed by another account than the recipient', [item('x')], { reporterAccount: toHex(r(32)) }],
    ['another envelope id', [{ ...item('x'), envelopeId: r(16) }]],
    ['another acceptance time', [{ ...item('x'), acceptedAt: be8(acceptedAt + 1) }]],
    ['a recipient device not of the reporter', [{ ...item('x'), recipientDevice: 9 }]],
    ['the frank key is destroyed', [item('x')], { frankKeys: {} }],
    ['a token not signed by the moderator', [item('x', { sealedBy: sender })], { moderatorKey: toHex(edKey().publicKey) }],
    ['an expired token', [item('x', { sealedBy: sender, tokenExpires: acceptedAt - 1 })]],
    ['an attestation over another tag', [{ ...item('x', { sealedBy: sender }), attestation: item('y', { sealedBy: sender }).attestation }]],
    ['a token naming the reporter (framing)', [item('x', { sealedBy: reporter })]],
    ['the token key is destroyed', [item('x', { sealedBy: sender })], { tokenKeys: {} }],
    ['a context message from another sender', [item('x'), item('y', { role: 2, from: { accountKey: r(32), deviceId: 1 } })]],
    ['an envelope reported before', [replayed]],
  ];
  let tcId = 1;
  const tests = cases.map(([comment, items, over]) => {
    const context = { ...baseContext, ...over };
    const reportBytes = encodeReport({ reason: 3, comment: 'threats', items });
    const verdict: ReportVerdict = verifyReport(b, decodeReport(reportBytes), {
      reporterAccount: Buffer.from(context.reporterAccount, 'hex'),
      reporterDevices: context.reporterDevices,
      frankKey: (id) => (context.frankKeys[id] === undefined ? null : Buffer.from(context.frankKeys[id] as string, 'hex')),
      tokenKey: (id) => (context.tokenKeys[id] === undefined ? null : Buffer.from(context.tokenKeys[id] as string, 'hex')),
      moderatorKey: Buffer.from(context.moderatorKey, 'hex'),
      reportedBefore: (id) => context.reportedBefore.includes(toHex(id)),
    });
    return {
      tcId: tcId++,
      comment,
      report: toHex(reportBytes),
      context,
      ...(verdict.ok ? { result: 'valid' } : { result: 'invalid', error: verdict.code, item: verdict.item }),
    };
  });
  // ---- files (step 5) -------------------------------------------------------
  const CHUNK = 16;
  /** An encrypted attachment (11 §4) of `size` bytes with 16-byte chunks; `flip` alters one byte after sealing. */
  const blob = (size: number, key = r(32)) => {
    const prefix = new Uint8Array(HEADER_PREFIX_BYTES);
    prefix.set(MAGIC, 0);
    prefix[HEADER_OFFSETS.version] = 1;
    prefix[HEADER_OFFSETS.exponent] = 4;
    prefix.set(r(16), HEADER_OFFSETS.salt);
    const keys = deriveAttachmentKeys(b, key, prefix);
    const plain = r(size);
    const count = chunkCountOf(size, CHUNK);
    const parts = [prefix, keys.commitment];
    for (let i = 0; i < count; i++)
      parts.push(
        b.aeadSeal(keys.payloadKey, chunkNonce(i, i === count - 1), plain.subarray(i * CHUNK, (i + 1) * CHUNK), new Uint8Array(0)),
      );
    return { bytes: concatBytes(...parts), key, size };
  };
  type Blob = ReturnType<typeof blob>;
  const pointer = (id: string, x: Blob, o: { key?: Uint8Array; digest?: Uint8Array; size?: number } = {}) =>
    encodePointerFields({
      id,
      key: o.key ?? x.key,
      digest: o.digest ?? b.sha256(x.bytes),
      plaintextSize: o.size ?? x.size,
      ciphertextSize: ciphertextSizeOf(o.size ?? x.size, CHUNK),
      chunkSize: CHUNK,
      fileName: 'photo.jpg',
    });
  /** A Content v1 (10 §3) of type 2 with this pointer, franked as a report item. */
  const fileItem = (encodedPointer: Uint8Array | null, attachments: ReportItem['attachments']): ReportItem => {
    const content =
      encodedPointer === null
        ? encodeCbor([1, 1, r(16), be8(acceptedAt), 0, null, ['a text'], null])
        : encodeCbor([1, 2, r(16), be8(acceptedAt), 0, null, [encodedPointer, 'look'], null]);
    const base = item('');
    const tag = frankingTag(b, base.frankingKey, sender, content);
    const frank = relayFrank(b, FK, { keyId, frankingTag: tag, recipient: reporter, acceptedAt, envelopeId: base.envelopeId, sender });
    return { ...base, plaintext: content, frankingTag: tag, frank, attachments };
  };
  const photo = blob(40);
  const other = blob(40);
  const altered = photo.bytes.slice();
  altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1;
  const STORED = 'AAAAAAAAAAAAAAAAAAAAAA';
  const stored = (x: Uint8Array) => ({ [STORED]: toHex(x) });
  const byId = [{ pointerIndex: 0, blob: null }];
  const fileCases: [string, ReportItem, Record<string, string>][] = [
    ['a file checked against the blob the relay stores', fileItem(pointer(STORED, photo), byId), stored(photo.bytes)],
    [
      'a file checked against the blob sent with the report',
      fileItem(pointer(STORED, photo), [{ pointerIndex: 0, blob: photo.bytes }]),
      {},
    ],
    ['another file sent with the report (swapped blob)', fileItem(pointer(STORED, photo), [{ pointerIndex: 0, blob: other.bytes }]), {}],
    ["the relay stores another blob under the pointer's id", fileItem(pointer(STORED, photo), byId), stored(other.bytes)],
    [
      "a blob sealed under another key than the pointer's, with its digest",
      fileItem(pointer(STORED, photo, { key: r(32) }), byId),
      stored(photo.bytes),
    ],
    ['a chunk altered before the digest was taken', fileItem(pointer(STORED, photo, { digest: b.sha256(altered) }), byId), stored(altered)],
    ['a blob one chunk short', fileItem(pointer(STORED, photo), byId), stored(photo.bytes.subarray(0, photo.bytes.length - 16))],
    ["a digest that is not the blob's", fileItem(pointer(STORED, photo, { digest: r(32) }), byId), stored(photo.bytes)],
    ['the file left out of the report', fileItem(pointer(STORED, photo), []), stored(photo.bytes)],
    [
      'a pointer the message does not carry',
      fileItem(pointer(STORED, photo), [...byId, { pointerIndex: 1, blob: null }]),
      stored(photo.bytes),
    ],
    ['a text message listing a file', fileItem(null, byId), stored(photo.bytes)],
    ['a blob neither sent nor stored any more', fileItem(pointer(STORED, photo), byId), {}],
  ];
  const fileTests = [];
  for (const [comment, it, storedBlobs] of fileCases) {
    const reportBytes = encodeReport({ reason: 4, comment: 'explicit image', items: [it] });
    const v = await verifyReportAttachments(b, decodeReport(reportBytes), async (id) => {
      const hex = storedBlobs[id];
      return hex === undefined ? null : [Buffer.from(hex, 'hex')];
    });
    fileTests.push({
      tcId: tcId++,
      comment,
      report: toHex(reportBytes),
      context: baseContext,
      storedBlobs,
      ...(v.ok ? { result: 'valid' } : { result: 'invalid', error: v.code, item: v.item, reason: v.reason }),
    });
  }

  const file = {
    description: 'Abuse reports (v2): the report bytes, what the verifier holds, and its verdict.',
    spec: 'spec/design/formats-v2.md §9.1-§9.2, §6.2-§6.3',
    version: 1,
    numberOfTests: tcId - 1,
    notes: {
      context:
        'reporterAccount is the authenticated reporter (never read from the report); frankKeys and tokenKeys map key periods to FK and MTK (absent: destroyed); reportedBefore lists envelope ids already reported by this reporter.',
      verdict:
        'valid: the report is accepted. invalid: the first failing check, in the order of §9.2, gives error (the relay code) and item (the index of the item it failed on).',
      files:
        'ReportAttachments: every item passes steps 1-4, 6, 7; the verdict is step 5 (spec/14-franking.md §6.1) with storedBlobs the blobs the relay holds by attachment id (a blob null in the report is read from there). reason names the failing check: unlisted, pointer, length, header, wrong-key, chunk-auth, digest, unavailable.',
    },
    testGroups: [
      { type: 'ReportVerification', description: 'report + context -> verdict', tests },
      { type: 'ReportAttachments', description: 'report of file messages + stored blobs -> verdict of the file check', tests: fileTests },
    ],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(REPORTS_FILE, await buildReports());
