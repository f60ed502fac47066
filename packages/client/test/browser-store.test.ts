/**
 * IndexedDbStore against Chromium's real IndexedDB (headless Debian
 * Chromium, playwright-core): the same ClientStore contract as the memory,
 * SQLite and fake-indexeddb runs, bundled with esbuild for the browser (with
 * `vitest` aliased to a small shim, browser/vitest-shim.ts); then state
 * across a real page reload, and a rolled-back transaction leaving nothing.
 *
 * Skips with a reason when /usr/bin/chromium is absent, except under CI.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreBrowserResult } from './browser/store-entry.ts';
import { CHROMIUM, type StaticServer, chromiumSkipReason, modulePage, pageResult, serveStatic } from './support/browser-page.ts';

const ENTRY = fileURLToPath(new URL('./browser/store-entry.ts', import.meta.url));
const SHIM = fileURLToPath(new URL('./browser/vitest-shim.ts', import.meta.url));
const skipReason = chromiumSkipReason('browser-store.test.ts');

describe.skipIf(skipReason !== null)('IndexedDbStore in headless Chromium', () => {
  let server: StaticServer | undefined;
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
    // The page reads its phase from the query string: `/` answers with one too.
    server = await serveStatic({
      '/': { type: 'text/html', body: modulePage('store.js') },
      '/store.js': { type: 'text/javascript', body: code },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
      timeout: 60_000,
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function run(page: import('playwright-core').Page, query: string): Promise<StoreBrowserResult> {
    await page.goto(`${server?.url}${query}`);
    return pageResult<StoreBrowserResult>(page, 60_000);
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
