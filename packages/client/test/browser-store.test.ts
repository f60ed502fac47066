/**
 * IndexedDbStore against Chromium's real IndexedDB (headless Debian
 * Chromium, playwright-core): the same ClientStore contract as the memory,
 * SQLite and fake-indexeddb runs, bundled with esbuild for the browser (with
 * `vitest` aliased to a small shim, browser/vitest-shim.ts); then state
 * across a real page reload, and a rolled-back transaction leaving nothing.
 *
 * Skips with a reason when /usr/bin/chromium is absent, except under CI.
 */
import { existsSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreBrowserResult } from './browser/store-entry.ts';

const CHROMIUM = '/usr/bin/chromium';
const ENTRY = fileURLToPath(new URL('./browser/store-entry.ts', import.meta.url));
const SHIM = fileURLToPath(new URL('./browser/vitest-shim.ts', import.meta.url));
const skipReason = existsSync(CHROMIUM) || process.env.CI ? null : `no Chromium at ${CHROMIUM} (run .ci/install-browser.sh)`;
if (skipReason) console.warn(`browser-store.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('IndexedDbStore in headless Chromium', () => {
  let server: Server;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    const result = await build({
      entryPoints: [ENTRY],
      bundle: true,
      platform: 'browser',
      // The repository's TypeScript sources (package.json exports); without it, the built dist/.
      conditions: ['parley:source'],
      format: 'esm',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
      alias: { vitest: SHIM },
    });
    const code = result.outputFiles[0]?.text ?? '';
    const html = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/store.js"></script>';
    server = createServer((req, res) => {
      if (req.url?.startsWith('/?') || req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      else if (req.url === '/store.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(code);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  async function run(page: import('playwright-core').Page, query: string): Promise<StoreBrowserResult> {
    await page.goto(`${url}${query}`);
    await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout: 60_000 });
    return (await page.evaluate(() => (window as { __result?: unknown }).__result)) as StoreBrowserResult;
  }

  it('passes the ClientStore contract on real IndexedDB', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const result = await run(page, '');
    await context.close();
    expect(result.failed).toEqual([]);
    // Every case of storeContract and durabilityContract ran (a shim that dropped cases would show here).
    expect(result.passed.length).toBe(11);
  });

  it('keeps committed state across a page reload, and nothing of a rolled-back transaction', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const written = await run(page, '?phase=write');
    expect(written.reload?.locked).toBe('STORE_IN_USE');
    const read = await run(page, '?phase=read');
    await context.close();
    expect(read.failed).toEqual([]);
    expect(read.reload?.device).toEqual([7, 7]);
    expect(read.reload?.lost).toBe(false);
    expect(read.reload?.messages).toHaveLength(50);
  });
});
