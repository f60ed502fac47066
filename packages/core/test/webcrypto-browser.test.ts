/**
 * The WebCrypto curves (src/crypto/webcrypto.ts) in headless Chromium,
 * whose SubtleCrypto has X25519 and Ed25519 (BoringSSL): every Wycheproof
 * X25519 and Ed25519 case and random keys agree with noble and with
 * Wycheproof's verdicts (test/support/webcrypto-cross.ts), and a
 * conversation on those curves through runWithAsyncCurves is byte-identical
 * to the same conversation on noble.
 *
 * Skips with a reason when Chromium is absent, except under CI.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { WebCryptoPageResult } from './browser/webcrypto-entry.ts';
import { bundleForBrowser } from './support/browser-bundle.ts';
import { type StaticServer, chromiumSkipReason, launchChromium, modulePage, pageResult, serveStatic } from './support/browser-page.ts';
import { crossVectors } from './support/webcrypto-cross.ts';
import { loadWycheproof } from './support/wycheproof.ts';

const ENTRY = fileURLToPath(new URL('./browser/webcrypto-entry.ts', import.meta.url));
const skipReason = chromiumSkipReason('webcrypto-browser.test.ts');

describe.skipIf(skipReason !== null)('WebCrypto curves in headless Chromium', () => {
  let server: StaticServer | undefined;
  afterAll(() => server?.close());

  it('agree with noble and with Wycheproof on every X25519 and Ed25519 case and on random keys, and carry a conversation byte-identical to noble', async () => {
    const vectors = crossVectors(
      loadWycheproof('x25519_test.json', { algorithm: 'XDH', groupType: 'XdhComp' }),
      loadWycheproof('ed25519_test.json', { algorithm: 'EDDSA', groupType: 'EddsaVerify' }),
    );
    const { code } = await bundleForBrowser(ENTRY);
    server = await serveStatic({
      '/': { type: 'text/html', body: modulePage('check.js') },
      '/check.js': { type: 'text/javascript', body: code },
      '/vectors.json': { type: 'application/json', body: JSON.stringify(vectors) },
    });
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(server.url);
      const result = await pageResult<WebCryptoPageResult>(page, 60_000);
      expect(result).toMatchObject({ available: true });
      if (!('report' in result)) throw new Error('no report');
      expect(result.report.x25519.cases).toBe(vectors.x25519.length);
      expect(result.report.ed25519.cases).toBe(vectors.ed25519.length);
      expect(result.report).toMatchObject({
        x25519: { disagree: [], wrong: [] },
        ed25519: { disagree: [], wrong: [] },
        random: { disagree: [] },
      });
      // The unchanged session layer on Chromium's WebCrypto curves (runWithAsyncCurves): byte-identical to noble.
      expect(result.conversation.asyncOps).toBeGreaterThan(20);
      expect(result.conversation.asyncLog).toEqual(result.conversation.syncLog);
      expect(result.conversation.syncLog.length).toBe(36);
    } finally {
      await browser.close();
    }
  });
});
