// Abuse reports (spec/design/formats-v2.md §9): the format and the checks
// of §9.2 steps 1-4, 6, 7 as the moderation service runs them, and
// test-vectors/reports.json. A report of
// an identified and of a sealed message verifies; altered content, another
// recipient, a changed or replayed envelope id, a destroyed key, a bad or
// expired token, an attestation over another tag, a token naming someone
// else and a context message from another sender are refused with their code.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, u32be, utf8 } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { encodeCbor } from '../src/codec/cbor.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { type RelayFrankInput, frankKeyId, relayFrank } from '../src/franking/frank.ts';
import {
  type AbuseReport,
  MAX_REPORT_ITEMS,
  type ReportContext,
  type ReportItem,
  decodeReport,
  encodeReport,
  verifyReport,
} from '../src/franking/report.ts';
import type { ModeratorToken } from '../src/franking/token.ts';
import { frankingTag } from '../src/franking/tag.ts';
import { verifyReportAttachments } from '../src/franking/report-attachments.ts';
import { Label } from '../src/labels.ts';
import { deterministicRandom } from '../src/testing.ts';
import { codeOf } from './support/errors.ts';
import { REPORTS_FILE, buildReports } from './support/reports-vectors.ts';

const b = nodeBackend;
const r = deterministicRandom('parley reports');
const edKey = () => {
  const seed = r(32);
  return { seed, publicKey: b.ed25519PublicKey(seed) };
};

const reporter = { accountKey: r(32), deviceId: 2 };
const sender = { accountKey: r(32), deviceId: 1 };
const acceptedAt = Date.UTC(2026, 11, 6, 5, 0, 0);
const keyId = frankKeyId(acceptedAt);
const FK = r(32);
const MTK = r(32);
const moderator = edKey();
const be8 = (n: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};

/** A moderator token naming `who`, valid for a week, and its ephemeral key pair. */
function token(who = sender, expiresAt = acceptedAt + 7 * 86_400_000): { token: ModeratorToken; ephemeral: { seed: Uint8Array } } {
  const ephemeral = edKey();
  const exp = be8(expiresAt);
  const aad = concatBytes(u32be(keyId), exp, ephemeral.publicKey);
  const sealedSender = b.aeadSeal(
    MTK,
    b.sha256(ephemeral.publicKey).subarray(0, 12),
    concatBytes(who.accountKey, u32be(who.deviceId)),
    aad,
  );
  const signature = b.ed25519Sign(moderator.seed, encodeCbor([Label.moderatorToken, keyId, exp, ephemeral.publicKey, sealedSender]));
  return { token: { keyId, expiresAt: exp, ephemeralKey: ephemeral.publicKey, sealedSender, signature }, ephemeral };
}

/** One delivered message as the reporter's client stores it (§6.5), franked by the relay. */
function item(text: string, options: { role?: 1 | 2; sealed?: boolean; at?: number; from?: typeof sender } = {}): ReportItem {
  const at = options.at ?? acceptedAt;
  const from = options.from ?? sender;
  const plaintext = utf8(text);
  const frankingKey = r(32);
  const tag = frankingTag(b, frankingKey, from, plaintext);
  const envelopeId = r(16);
  const sealed = options.sealed ? token(from) : null;
  const f: RelayFrankInput = {
    keyId: frankKeyId(at),
    frankingTag: tag,
    recipient: reporter,
    acceptedAt: at,
    envelopeId,
    sender: sealed ? null : from,
  };
  return {
    role: options.role ?? 1,
    envelopeId,
    acceptedAt: be8(at),
    frankKeyId: f.keyId,
    frank: relayFrank(b, FK, f),
    recipientDevice: reporter.deviceId,
    frankingTag: tag,
    frankingKey,
    sender: from,
    plaintext,
    token: sealed?.token ?? null,
    attestation: sealed ? b.ed25519Sign(sealed.ephemeral.seed, encodeCbor([Label.frankingSignature, tag])) : null,
    attachments: [],
  };
}

const reported = new Set<string>();
const ctx = (over: Partial<ReportContext> = {}): ReportContext => ({
  reporterAccount: reporter.accountKey,
  reporterDevices: [1, 2],
  frankKey: (id) => (id === keyId ? FK : null),
  tokenKey: (id) => (id === keyId ? MTK : null),
  moderatorKey: moderator.publicKey,
  reportedBefore: (id) => reported.has(Buffer.from(id).toString('hex')),
  ...over,
});

const report = (items: ReportItem[]): AbuseReport => ({ reason: 3, comment: 'threats', items });
/** Encoded and decoded, as the route receives it. */
const verify = (items: ReportItem[], c = ctx()) => verifyReport(b, decodeReport(encodeReport(report(items))), c);

describe('abuse reports', () => {
  it('a report of an identified text with two context messages verifies', () => {
    expect(verify([item('you will regret this'), item('context 1', { role: 2 }), item('context 2', { role: 2 })])).toEqual({ ok: true });
  });

  it('a report of a sealed message verifies through the moderator token and the attestation', () => {
    expect(verify([item('sealed threat', { sealed: true })])).toEqual({ ok: true });
  });

  const refusals: [string, () => ReportItem[], string, Partial<ReportContext>?][] = [
    ['altered content', () => [{ ...item('original'), plaintext: utf8('altered') }], 'TAG_MISMATCH'],
    ['another franking key', () => [{ ...item('x'), frankingKey: r(32) }], 'TAG_MISMATCH'],
    ['filed by another recipient', () => [item('x')], 'FRANK_INVALID', { reporterAccount: r(32) }],
    ['a recipient device not of the reporter', () => [{ ...item('x'), recipientDevice: 9 }], 'FRANK_INVALID'],
    ['another envelope id', () => [{ ...item('x'), envelopeId: r(16) }], 'FRANK_INVALID'],
    ['another acceptance time', () => [{ ...item('x'), acceptedAt: be8(acceptedAt + 1) }], 'FRANK_INVALID'],
    ['the sender replaced (identified)', () => [{ ...item('x'), sender: reporter }], 'FRANK_INVALID'],
    ['a destroyed frank key', () => [item('x')], 'FRANK_KEY_EXPIRED', { frankKey: () => null }],
    [
      'a token not signed by the moderator',
      () => [item('x', { sealed: true })],
      'TOKEN_INVALID_IN_REPORT',
      { moderatorKey: edKey().publicKey },
    ],
    [
      'an expired token',
      () => {
        const i = item('x', { sealed: true });
        const t = token(sender, acceptedAt - 1);
        return [
          { ...i, token: t.token, attestation: b.ed25519Sign(t.ephemeral.seed, encodeCbor([Label.frankingSignature, i.frankingTag])) },
        ];
      },
      'TOKEN_INVALID_IN_REPORT',
    ],
    [
      'an attestation over another tag',
      () => [{ ...item('x', { sealed: true }), attestation: item('y', { sealed: true }).attestation }],
      'ATTESTATION_INVALID',
    ],
    [
      'a token naming someone else than the claimed sender (framing)',
      () => {
        const i = item('x', { sealed: true });
        const t = token(reporter);
        return [
          { ...i, token: t.token, attestation: b.ed25519Sign(t.ephemeral.seed, encodeCbor([Label.frankingSignature, i.frankingTag])) },
        ];
      },
      'SENDER_MISMATCH',
    ],
    ['a destroyed token key', () => [item('x', { sealed: true })], 'FRANK_KEY_EXPIRED', { tokenKey: () => null }],
    [
      'a context message from another sender',
      () => [item('x'), item('y', { role: 2, from: { accountKey: r(32), deviceId: 1 } })],
      'CONTEXT_MISMATCH',
    ],
  ];
  for (const [name, items, code, over] of refusals) {
    it(`refuses ${name}: ${code}`, () => {
      const v = verify(items(), ctx(over));
      expect(v.ok ? 'accepted' : v.code).toBe(code);
    });
  }

  it('refuses a replayed report (REPORT_DUPLICATE) and a context message repeating an envelope', () => {
    const i = item('once');
    expect(verify([i])).toEqual({ ok: true });
    reported.add(Buffer.from(i.envelopeId).toString('hex'));
    expect(verify([i])).toEqual({ ok: false, code: 'REPORT_DUPLICATE', item: 0 });
    const j = item('twice');
    expect(verify([j, { ...j, role: 2 }])).toEqual({ ok: false, code: 'CONTEXT_MISMATCH', item: 1 });
  });

  it('refuses malformed reports at decoding: too many items, the reported item not first, a long comment, reason 0', () => {
    const one = item('x');
    const enc = (v: unknown) => encodeCbor(v as never);
    const raw = decodeReport(encodeReport(report([one])));
    expect(raw.items).toHaveLength(1);
    expect(() =>
      encodeReport(report(Array.from({ length: MAX_REPORT_ITEMS + 1 }, (_, n) => item(`${n}`, { role: n === 0 ? 1 : 2 })))),
    ).toThrow(RangeError);
    expect(() => encodeReport(report([{ ...one, role: 2 }]))).toThrow(RangeError);
    expect(codeOf(() => decodeReport(enc([2, 1, 'x'.repeat(1025), []])))).toBe('OVERSIZED');
    expect(codeOf(() => decodeReport(enc([2, 0, '', []])))).toBe('MALFORMED');
    expect(codeOf(() => decodeReport(enc([1, 1, '', []])))).toBe('UNSUPPORTED_VERSION');
  });
});

it('property: damaged report bytes are refused typed (MALFORMED, OVERSIZED, UNSUPPORTED_VERSION) or decode', () => {
  const bytes = encodeReport(report([item('a'), item('b', { role: 2 })]));
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, bits) => {
      const bad = bytes.slice();
      bad[at] = (bad[at] as number) ^ bits;
      const code = codeOf(() => decodeReport(bad));
      return ['NO_ERROR', 'MALFORMED', 'OVERSIZED', 'UNSUPPORTED_VERSION'].includes(code);
    }),
    { numRuns: 300, seed: 13 },
  );
});

describe('test-vectors/reports.json', () => {
  const TEXT = readFileSync(REPORTS_FILE, 'utf8');
  // biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
  const tests: any[] = JSON.parse(TEXT).testGroups[0].tests;

  it('equals the generator output byte for byte', async () => {
    expect(TEXT === (await buildReports())).toBe(true);
  });

  for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
    it(`every verdict, with the ${backend.name} backend`, () => {
      for (const t of tests) {
        const c = t.context;
        const verdict = verifyReport(backend, decodeReport(fromHex(t.report)), {
          reporterAccount: fromHex(c.reporterAccount),
          reporterDevices: c.reporterDevices,
          frankKey: (id) => (c.frankKeys[id] === undefined ? null : fromHex(c.frankKeys[id])),
          tokenKey: (id) => (c.tokenKeys[id] === undefined ? null : fromHex(c.tokenKeys[id])),
          moderatorKey: fromHex(c.moderatorKey),
          reportedBefore: (id) => c.reportedBefore.includes(toHex(id)),
        });
        expect(verdict, t.comment).toEqual(t.result === 'valid' ? { ok: true } : { ok: false, code: t.error, item: t.item });
      }
    });
  }

  // biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
  const fileTests: any[] = JSON.parse(TEXT).testGroups[1].tests;
  for (const backend of [nobleBackend, nodeBackend] as CryptoBackend[]) {
    it(`every file verdict (step 5), with the ${backend.name} backend`, async () => {
      expect(fileTests.length).toBeGreaterThan(10);
      for (const t of fileTests) {
        const v = await verifyReportAttachments(backend, decodeReport(fromHex(t.report)), async (id) =>
          t.storedBlobs[id] === undefined ? null : [fromHex(t.storedBlobs[id])],
        );
        expect(v, t.comment).toEqual(
          t.result === 'valid' ? { ok: true, checked: 1 } : { ok: false, code: t.error, item: t.item, reason: t.reason },
        );
      }
    });
  }
});
