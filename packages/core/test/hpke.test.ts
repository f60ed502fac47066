// HPKE (RFC 9180) for the suite of spec/design/formats-v2.md §7.1: the RFC's
// A.2 vectors (test-vectors/hpke.json) on both backends, refusals with typed
// codes, and round-trip properties.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import type { CryptoBackend } from '../src/crypto/backend.ts';
import {
  HPKE_MAX_EXPORT_BYTES,
  HPKE_MAX_INFO_BYTES,
  hkdfExpand,
  hkdfExtract,
  hpkeDeriveKeyPair,
  hpkeOpen,
  hpkeSeal,
  hpkeAuthReceiverForCandidates,
  hpkeSetupReceiver,
  hpkeSetupSender,
} from '../src/crypto/hpke.ts';
import { nobleBackend } from '../src/crypto/noble.ts';
import { nodeBackend } from '../src/crypto/node.ts';
import { cryptoProvider } from '../src/crypto/provider.ts';
import { ParleyError } from '../src/errors.ts';

// biome-ignore lint/suspicious/noExplicitAny: vector JSON is read field by field.
const VECTORS: any = JSON.parse(readFileSync(new URL('../../../test-vectors/hpke.json', import.meta.url), 'utf8'));
// biome-ignore lint/suspicious/noExplicitAny: as above.
const group = (type: string): any[] => VECTORS.testGroups.find((g: { type: string }) => g.type === type).tests;
const h = fromHex;

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ParleyError) return e.code;
    throw e;
  }
  return 'no error';
}

/** A provider whose random source hands out exactly `ikmE` (then fails). */
function fixedEphemeral(backend: CryptoBackend, ikmE: Uint8Array) {
  let given = false;
  return cryptoProvider(backend, (n) => {
    if (given || n !== ikmE.length) throw new Error(`unexpected random draw of ${n}`);
    given = true;
    return ikmE.slice();
  });
}

describe.each([nobleBackend, nodeBackend].map((b) => [b.name, b] as const))('HPKE on the %s backend', (_n, backend) => {
  it('HKDF halves agree with the backend HKDF', () => {
    const prk = hkdfExtract(backend, h('0001'), h('0b0b0b'));
    expect(toHex(hkdfExpand(backend, prk, h('f0f1'), 100))).toBe(toHex(backend.hkdfSha256(h('0b0b0b'), h('0001'), h('f0f1'), 100)));
    const prk0 = hkdfExtract(backend, new Uint8Array(0), h('0b'));
    expect(toHex(hkdfExpand(backend, prk0, new Uint8Array(0), 33))).toBe(
      toHex(backend.hkdfSha256(h('0b'), new Uint8Array(0), new Uint8Array(0), 33)),
    );
  });

  for (const t of group('HpkeValid')) {
    it(`vector ${t.tcId}: ${t.comment}`, () => {
      const eph = hpkeDeriveKeyPair(backend, h(t.ikmE));
      expect(toHex(eph.privateKey)).toBe(t.skEm);
      expect(toHex(eph.publicKey)).toBe(t.pkEm);
      expect(toHex(hpkeDeriveKeyPair(backend, h(t.ikmR)).privateKey)).toBe(t.skRm);
      if (t.mode === 2) expect(toHex(hpkeDeriveKeyPair(backend, h(t.ikmS)).privateKey)).toBe(t.skSm);

      const sender = hpkeSetupSender(
        { recipientPublicKey: h(t.pkRm), info: h(t.info), senderPrivateKey: t.mode === 2 ? h(t.skSm) : undefined },
        fixedEphemeral(backend, h(t.ikmE)),
      );
      expect(toHex(sender.enc)).toBe(t.enc);
      expect(toHex(sender.context.seal(h(t.aad), h(t.plaintext)))).toBe(t.ciphertext);
      const receiver = hpkeSetupReceiver(
        { enc: h(t.enc), recipientPrivateKey: h(t.skRm), info: h(t.info), senderPublicKey: t.mode === 2 ? h(t.pkSm) : undefined },
        cryptoProvider(backend),
      );
      expect(toHex(receiver.open(h(t.aad), h(t.ciphertext)))).toBe(t.plaintext);
      for (const x of t.exports) {
        expect(toHex(sender.context.export(h(x.exporterContext), x.length))).toBe(x.exportedValue);
        expect(toHex(receiver.export(h(x.exporterContext), x.length))).toBe(x.exportedValue);
      }
      // No secret is reachable through JSON.
      expect(JSON.stringify(sender)).not.toContain(t.key);
      expect(JSON.stringify(receiver)).toBe('{}');
      if (t.mode === 2) {
        // The candidate form (DH(skR, enc) once, spec/12 §4.3) gives the same context for the right sender only.
        const forCandidate = hpkeAuthReceiverForCandidates(
          { enc: h(t.enc), recipientPrivateKey: h(t.skRm), info: h(t.info) },
          cryptoProvider(backend),
        );
        const right = forCandidate(h(t.pkSm));
        expect(toHex(right.open(h(t.aad), h(t.ciphertext)))).toBe(t.plaintext);
        for (const x of t.exports) expect(toHex(right.export(h(x.exporterContext), x.length))).toBe(x.exportedValue);
        const wrong = forCandidate(h(t.pkEm));
        expect(() => wrong.open(h(t.aad), h(t.ciphertext))).toThrow(/DECRYPT_FAILED/);
      }
    });
  }

  for (const t of group('HpkeOpenInvalid')) {
    it(`vector ${t.tcId}: ${t.comment} -> ${t.error}`, () => {
      const open = () =>
        hpkeOpen(
          {
            enc: h(t.enc),
            recipientPrivateKey: h(t.skRm),
            info: h(t.info),
            aad: h(t.aad),
            ciphertext: h(t.ciphertext),
            senderPublicKey: t.mode === 2 ? h(t.pkSm) : undefined,
          },
          cryptoProvider(backend),
        );
      expect(codeOf(open)).toBe(t.error);
    });
  }

  it('refuses an all-zero DH output with WEAK_KEY (a backend that returns zeros)', () => {
    // Parley's key checks make this unreachable with a real backend; the check
    // must still hold if a key ever slips through, as RFC 9180 §7.1.4 requires.
    const zero: CryptoBackend = { ...backend, x25519: () => new Uint8Array(32) };
    const [valid] = group('HpkeValid');
    expect(
      codeOf(() => hpkeSeal({ recipientPublicKey: h(valid.pkRm), info: h(''), aad: h(''), plaintext: h('') }, cryptoProvider(zero))),
    ).toBe('WEAK_KEY');
    expect(
      codeOf(() =>
        hpkeOpen(
          { enc: h(valid.enc), recipientPrivateKey: h(valid.skRm), info: h(''), aad: h(''), ciphertext: h(valid.ciphertext) },
          cryptoProvider(zero),
        ),
      ),
    ).toBe('WEAK_KEY');
  });

  it('is single-shot: a second seal or a second successful open is INVALID_STATE; a failed open changes nothing', () => {
    const provider = cryptoProvider(backend);
    const r = hpkeDeriveKeyPair(backend, backend.randomBytes(32));
    const s = hpkeDeriveKeyPair(backend, backend.randomBytes(32));
    const { enc, context } = hpkeSetupSender({ recipientPublicKey: r.publicKey, info: h('01'), senderPrivateKey: s.privateKey }, provider);
    const ct = context.seal(h('aa'), h('68656c6c6f'));
    expect(codeOf(() => context.seal(h('aa'), h('68656c6c6f')))).toBe('INVALID_STATE');
    const receiver = hpkeSetupReceiver(
      { enc, recipientPrivateKey: r.privateKey, info: h('01'), senderPublicKey: s.publicKey },
      cryptoProvider(backend),
    );
    const bad = ct.slice();
    bad[0] = (bad[0] as number) ^ 1;
    expect(codeOf(() => receiver.open(h('aa'), bad))).toBe('DECRYPT_FAILED');
    expect(toHex(receiver.open(h('aa'), ct))).toBe('68656c6c6f');
    expect(codeOf(() => receiver.open(h('aa'), ct))).toBe('INVALID_STATE');
  });

  it('refuses a bad recipient key on the sender side before drawing randomness', () => {
    const refuse = cryptoProvider(backend, () => {
      throw new Error('no randomness may be drawn for a refused key');
    });
    for (const [pk, code] of [
      ['01'.padEnd(64, '0'), 'BAD_PUBLIC_KEY'],
      ['ec'.padEnd(62, 'f') + '7f', 'BAD_PUBLIC_KEY'],
      ['aa'.repeat(33), 'MALFORMED'],
    ] as const) {
      expect(codeOf(() => hpkeSeal({ recipientPublicKey: h(pk), info: h(''), aad: h(''), plaintext: h('') }, refuse))).toBe(code);
    }
    expect(() => hpkeDeriveKeyPair(backend, new Uint8Array(31))).toThrow(RangeError);
  });

  it('bounds info, exporter context and export length', () => {
    const r = hpkeDeriveKeyPair(backend, new Uint8Array(32).fill(7));
    const big = new Uint8Array(HPKE_MAX_INFO_BYTES + 1);
    expect(codeOf(() => hpkeSetupSender({ recipientPublicKey: r.publicKey, info: big }, cryptoProvider(backend)))).toBe('OVERSIZED');
    const { context } = hpkeSetupSender({ recipientPublicKey: r.publicKey, info: big.subarray(1) }, cryptoProvider(backend));
    expect(codeOf(() => context.export(big, 32))).toBe('OVERSIZED');
    expect(context.export(h(''), HPKE_MAX_EXPORT_BYTES).length).toBe(HPKE_MAX_EXPORT_BYTES);
    expect(() => context.export(h(''), HPKE_MAX_EXPORT_BYTES + 1)).toThrow(RangeError);
    expect(() => context.export(h(''), 0)).toThrow(RangeError);
    expect(() => hpkeSetupSender({ recipientPublicKey: r.publicKey, info: h(''), senderPrivateKey: new Uint8Array(31) })).toThrow(
      RangeError,
    );
  });
});

describe('HPKE properties (noble seals, node opens)', () => {
  const keyPair = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((ikm) => hpkeDeriveKeyPair(nobleBackend, ikm));
  const small = fc.uint8Array({ maxLength: 64 });

  it('round-trips in both modes, exports agree, and any change to enc, ciphertext, aad, info or sender key is refused', () => {
    fc.assert(
      fc.property(
        keyPair,
        keyPair,
        keyPair,
        fc.boolean(),
        small,
        small,
        fc.uint8Array({ maxLength: 300 }),
        fc.nat(),
        (r, s, other, auth, info, aad, pt, pick) => {
          // "other" must be another party for its key to be a wrong one.
          fc.pre(toHex(other.publicKey) !== toHex(r.publicKey) && toHex(other.publicKey) !== toHex(s.publicKey));
          const sealer = hpkeSetupSender(
            { recipientPublicKey: r.publicKey, info, senderPrivateKey: auth ? s.privateKey : undefined },
            cryptoProvider(nobleBackend),
          );
          const ct = sealer.context.seal(aad, pt);
          const base = {
            enc: sealer.enc,
            recipientPrivateKey: r.privateKey,
            info,
            aad,
            ciphertext: ct,
            senderPublicKey: auth ? s.publicKey : undefined,
          };
          const receiver = hpkeSetupReceiver(base, cryptoProvider(nodeBackend));
          expect(toHex(receiver.open(aad, ct))).toBe(toHex(pt));
          expect(toHex(receiver.export(info, 8))).toBe(toHex(sealer.context.export(info, 8)));

          const flip = (b: Uint8Array) => {
            const c = b.slice();
            if (c.length === 0) return Uint8Array.of(1);
            c[pick % c.length] = (c[pick % c.length] as number) ^ (1 << (pick % 8));
            return c;
          };
          const tampered = [
            { ...base, ciphertext: flip(ct) },
            { ...base, aad: flip(aad) },
            { ...base, info: flip(info) },
            { ...base, senderPublicKey: auth ? other.publicKey : s.publicKey },
            { ...base, recipientPrivateKey: other.privateKey },
          ];
          for (const t of tampered) expect(codeOf(() => hpkeOpen(t, cryptoProvider(nodeBackend)))).toBe('DECRYPT_FAILED');
          // A flipped enc may also land on a refused key encoding.
          expect(['DECRYPT_FAILED', 'BAD_PUBLIC_KEY']).toContain(
            codeOf(() => hpkeOpen({ ...base, enc: flip(sealer.enc) }, cryptoProvider(nodeBackend))),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
