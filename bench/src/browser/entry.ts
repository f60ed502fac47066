/** In Chromium (bundled by ../browser.ts): the portable timings on noble, and WebCrypto's curves. */
import { cryptoProvider, nobleBackend, webCryptoCurves } from '@parley/core';
import { curveTimings, sessionTimings, storedSessionTimings } from './measure.ts';

async function main() {
  const web = await webCryptoCurves();
  const noble = cryptoProvider(nobleBackend);
  return {
    userAgent: navigator.userAgent,
    timings: [
      ...(await sessionTimings(nobleBackend)),
      ...(await storedSessionTimings(noble, null, 'noble')),
      ...(web ? await storedSessionTimings(noble, web, 'webcrypto') : []),
      ...(await curveTimings(nobleBackend, web)),
    ],
  };
}

main().then(
  (r) => {
    (window as { __result?: unknown }).__result = r;
  },
  (e) => {
    (window as { __result?: unknown }).__result = { error: String(e?.stack ?? e) };
  },
);
