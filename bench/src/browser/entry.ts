/** In Chromium (bundled by ../browser.ts): the portable timings on noble, and WebCrypto's curves. */
import { nobleBackend, webCryptoCurves } from '@parley/core';
import { curveTimings, sessionTimings } from './measure.ts';

async function main() {
  const web = await webCryptoCurves();
  return { userAgent: navigator.userAgent, timings: [...(await sessionTimings(nobleBackend)), ...(await curveTimings(nobleBackend, web))] };
}

main().then(
  (r) => {
    (window as { __result?: unknown }).__result = r;
  },
  (e) => {
    (window as { __result?: unknown }).__result = { error: String(e?.stack ?? e) };
  },
);
