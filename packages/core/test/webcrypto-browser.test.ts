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
import { existsSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { WebCryptoPageResult } from './browser/webcrypto-entry.ts';
import { crossVectors } from './support/webcrypto-cross.ts';
import { loadWycheproof } from './support/wycheproof.ts';

const CHROMIUM = '/usr/bin/chromium';
const ENTRY = fileURLToPath(new URL('./browser/webcrypto-entry.ts', import.meta.url));
const skipReason = existsSync(CHROMIUM) || process.env.CI ? null : `no Chromium at ${CHROMIUM}`;
if (skipReason) console.warn(`webcrypto-browser.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('WebCrypto curves in headless Chromium', () => {
  let server: Server | undefined;
  afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it('agree with noble and with Wycheproof on every X25519 and Ed25519 case and on random keys, and carry a conversation byte-identical to noble', async () => {
    const vectors = crossVectors(
      loadWycheproof('x25519_test.json', { algorithm: 'XDH', groupType: 'XdhComp' }),
      loadWycheproof('ed25519_test.json', { algorithm: 'EDDSA', groupType: 'EddsaVerify' }),
    );
    const bundle = await build({
      entryPoints: [ENTRY],
      bundle: true,
      platform: 'browser',
      // The repository's TypeScript sources (package.json exports); without it, the built dist/.
      conditions: ['parley:source'],
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const code = bundle.outputFiles[0]?.text ?? '';
    const html = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/check.js"></script>';
    const vectorsJson = JSON.stringify(vectors);
    server = createServer((req, res) => {
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      else if (req.url === '/check.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(code);
      else if (req.url === '/vectors.json') res.writeHead(200, { 'content-type': 'application/json' }).end(vectorsJson);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
      timeout: 60_000,
    });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: 60_000 });
      const result = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as WebCryptoPageResult;
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
