/**
 * In Chromium (bundled by webcrypto-browser.test.ts): the WebCrypto curves
 * against noble on the Wycheproof cases the test serves at /vectors.json,
 * and one conversation run twice, on noble and on WebCrypto's curves through
 * runWithAsyncCurves, with the same randomness (the logs must be identical).
 */
import { type AsyncCurveStats, runWithAsyncCurves } from '../../src/crypto/async-curves.ts';
import { nobleBackend } from '../../src/crypto/noble.ts';
import { webCryptoCurves } from '../../src/crypto/webcrypto.ts';
import { deterministicProvider } from '../../src/testing.ts';
import { conversation } from '../support/async-conversation.ts';
import { type CrossReport, type CrossVectors, crossCheck } from '../support/webcrypto-cross.ts';

export interface ConversationReport {
  readonly syncLog: string[];
  readonly asyncLog: string[];
  readonly asyncOps: number;
}

export type WebCryptoPageResult =
  | { available: false }
  | { available: true; report: CrossReport; conversation: ConversationReport }
  | { error: string };

async function compareConversation(curves: NonNullable<Awaited<ReturnType<typeof webCryptoCurves>>>): Promise<ConversationReport> {
  const reference = deterministicProvider(nobleBackend, 'browser/run');
  const sync = await conversation(async (step) => step(reference), 'browser');
  const base = deterministicProvider(nobleBackend, 'browser/run');
  let asyncOps = 0;
  const viaAsync = await conversation(
    (step) => runWithAsyncCurves(curves, step, { base, onStats: (s: AsyncCurveStats) => (asyncOps += s.asyncOps) }),
    'browser',
  );
  return { syncLog: sync.log, asyncLog: viaAsync.log, asyncOps };
}

async function main(): Promise<WebCryptoPageResult> {
  const curves = await webCryptoCurves();
  if (!curves) return { available: false };
  const vectors = (await (await fetch('/vectors.json')).json()) as CrossVectors;
  return { available: true, report: await crossCheck(curves, nobleBackend, vectors), conversation: await compareConversation(curves) };
}

main().then(
  (r) => {
    (window as { __result?: unknown }).__result = r;
  },
  (e) => {
    (window as { __result?: unknown }).__result = { error: String(e?.stack ?? e) };
  },
);
