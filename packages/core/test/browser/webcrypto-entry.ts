/**
 * In Chromium (bundled by webcrypto-browser.test.ts): the WebCrypto curves
 * against noble on the Wycheproof cases the test serves at /vectors.json.
 */
import { nobleBackend } from '../../src/crypto/noble.ts';
import { webCryptoCurves } from '../../src/crypto/webcrypto.ts';
import { type CrossReport, type CrossVectors, crossCheck } from '../support/webcrypto-cross.ts';

export type WebCryptoPageResult = { available: false } | { available: true; report: CrossReport } | { error: string };

async function main(): Promise<WebCryptoPageResult> {
  const curves = await webCryptoCurves();
  if (!curves) return { available: false };
  const vectors = (await (await fetch('/vectors.json')).json()) as CrossVectors;
  return { available: true, report: await crossCheck(curves, nobleBackend, vectors) };
}

main().then(
  (r) => {
    (window as { __result?: unknown }).__result = r;
  },
  (e) => {
    (window as { __result?: unknown }).__result = { error: String(e?.stack ?? e) };
  },
);
