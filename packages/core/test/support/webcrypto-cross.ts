/**
 * The cross-backend check for the WebCrypto curves (src/crypto/webcrypto.ts):
 * every Wycheproof X25519 and Ed25519 case, and random keys, through
 * WebCrypto and a synchronous backend (noble), with the answers compared
 * with each other and with Wycheproof's verdict. Runs in Node
 * (webcrypto.test.ts) and in Chromium (webcrypto-browser.test.ts), so it
 * imports nothing Node-only.
 */
import type { CryptoBackend } from '../../src/crypto/backend.ts';
import type { WebCryptoCurves } from '../../src/crypto/webcrypto.ts';

export interface X25519Case {
  readonly tcId: number;
  readonly priv: string;
  readonly pub: string;
  readonly shared: string;
  readonly result: string;
}
export interface Ed25519Case {
  readonly tcId: number;
  readonly pk: string;
  readonly msg: string;
  readonly sig: string;
  readonly result: string;
}
export interface CrossVectors {
  readonly x25519: readonly X25519Case[];
  readonly ed25519: readonly Ed25519Case[];
}

export interface CrossReport {
  readonly x25519: { cases: number; disagree: number[]; wrong: number[] };
  readonly ed25519: { cases: number; disagree: number[]; wrong: number[] };
  readonly random: { cases: number; disagree: string[] };
}

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const isZero = (a: Uint8Array) => a.every((x) => x === 0);

export async function crossCheck(
  curves: WebCryptoCurves,
  backend: CryptoBackend,
  vectors: CrossVectors,
  randomCases = 32,
): Promise<CrossReport> {
  const report: CrossReport = {
    x25519: { cases: 0, disagree: [], wrong: [] },
    ed25519: { cases: 0, disagree: [], wrong: [] },
    random: { cases: 0, disagree: [] },
  };
  for (const c of vectors.x25519) {
    report.x25519.cases++;
    const priv = hex(c.priv);
    const pub = hex(c.pub);
    const ours = await curves.x25519(priv, pub);
    if (!same(ours, backend.x25519(priv, pub))) report.x25519.disagree.push(c.tcId);
    // Valid and acceptable cases name the shared secret; an all-zero one is the low-order case dh() refuses.
    if (c.result !== 'invalid' && !isZero(hex(c.shared)) && !same(ours, hex(c.shared))) report.x25519.wrong.push(c.tcId);
  }
  for (const c of vectors.ed25519) {
    report.ed25519.cases++;
    const ok = await curves.ed25519Verify(hex(c.pk), hex(c.msg), hex(c.sig));
    if (ok !== backend.ed25519Verify(hex(c.pk), hex(c.msg), hex(c.sig))) report.ed25519.disagree.push(c.tcId);
    if (ok !== (c.result === 'valid')) report.ed25519.wrong.push(c.tcId);
  }
  for (let i = 0; i < randomCases; i++) {
    report.random.cases++;
    const a = backend.randomBytes(32);
    const b = backend.randomBytes(32);
    const message = backend.randomBytes(i * 7);
    const aPub = await curves.x25519PublicKey(a);
    if (!same(aPub, backend.x25519PublicKey(a))) report.random.disagree.push(`x25519PublicKey #${i}`);
    const bPub = backend.x25519PublicKey(b);
    if (!same(await curves.x25519(a, bPub), backend.x25519(b, aPub))) report.random.disagree.push(`x25519 #${i}`);
    const edPub = await curves.ed25519PublicKey(a);
    if (!same(edPub, backend.ed25519PublicKey(a))) report.random.disagree.push(`ed25519PublicKey #${i}`);
    const sig = await curves.ed25519Sign(a, message);
    if (!same(sig, backend.ed25519Sign(a, message))) report.random.disagree.push(`ed25519Sign #${i}`);
    if (!backend.ed25519Verify(edPub, message, sig)) report.random.disagree.push(`verify own #${i}`);
    const forged = sig.slice();
    forged[i % 64] = (forged[i % 64] as number) ^ 1;
    if ((await curves.ed25519Verify(edPub, message, forged)) || backend.ed25519Verify(edPub, message, forged))
      report.random.disagree.push(`forged accepted #${i}`);
  }
  return report;
}

/** The two Wycheproof files, reduced to what crossCheck reads. */
export function crossVectors(
  x25519: { entries: readonly { test: Record<string, unknown> }[] },
  ed25519: { entries: readonly { group: Record<string, unknown>; test: Record<string, unknown> }[] },
): CrossVectors {
  return {
    x25519: x25519.entries.map(({ test }) => ({
      tcId: test.tcId as number,
      priv: test.private as string,
      pub: test.public as string,
      shared: test.shared as string,
      result: test.result as string,
    })),
    ed25519: ed25519.entries.map(({ group, test }) => ({
      tcId: test.tcId as number,
      pk: (group.publicKey as Record<string, string>).pk as string,
      msg: test.msg as string,
      sig: test.sig as string,
      result: test.result as string,
    })),
  };
}
