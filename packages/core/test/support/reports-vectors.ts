/**
 * Builds test-vectors/reports.json (formats-v2 §9, §14): abuse reports and
 * the verdict of §9.2 steps 1-4, 6, 7 for a given verifier context (keys by
 * period, the authenticated reporter, the moderator key, the envelopes
 * already reported). The report test checks the checked-in file equals this
 * output; rewrite it on purpose with
 * `node --conditions=parley:source --import tsx packages/core/test/support/reports-vectors.ts --write`.
 */
import { writeFileSync } from 'node:fs';
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

export function buildReports(): string {
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
    },
    testGroups: [{ type: 'ReportVerification', description: 'report + context -> verdict', tests }],
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

if (process.argv.includes('--write')) writeFileSync(REPORTS_FILE, buildReports());
