/**
 * The portable build of @parley/core in a real browser.
 * spec/01-conventions.md §4: outside Node the package resolves
 * `#default-backend` to the noble backend, and nothing it imports may be a
 * Node built-in.
 *
 * 1. esbuild bundles test/browser/entry.ts for `platform: 'browser'`, with
 *    every Node built-in marked external so that one slipping in shows up as
 *    an import in the output (and in this test's message) rather than as a
 *    resolver error. The bundle must import nothing at all.
 * 2. A local HTTP server on 127.0.0.1 serves it; headless Chromium (Debian's
 *    package, driven by playwright-core, fresh empty profile) runs it and the
 *    test reads `window.__result`: the README flow's output, and the name of
 *    the backend the page used, which must be noble.
 *
 * Step 2 skips with a reason when /usr/bin/chromium is absent, except under
 * CI, where the browser is installed by .ci/install-browser.sh and its
 * absence is a failure.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserResult } from './browser/entry.ts';
import { type Bundle, NODE_BUILTINS, bundleForBrowser } from './support/browser-bundle.ts';
import {
  type ChromiumProfile,
  type StaticServer,
  chromiumSkipReason,
  launchFreshProfile,
  modulePage,
  pageResult,
  serveStatic,
} from './support/browser-page.ts';

const ENTRY = fileURLToPath(new URL('./browser/entry.ts', import.meta.url));
const NODE_BACKEND = fileURLToPath(new URL('../src/crypto/node.ts', import.meta.url));
/** What the README's example prints; the page must produce the same. */
const EXPECTED_LINES = ['hello Bob', 'hi Alice', 'safety numbers match: true'];

const skipReason = chromiumSkipReason('browser.test.ts: the browser run');

const NODE_BUILTIN_SET: ReadonlySet<string> = new Set(NODE_BUILTINS);

/** Node built-ins a bundle refers to, found both in esbuild's import list and in the code text. */
function nodeImportsOf(b: Bundle): string[] {
  const fromMeta = b.imports.filter((p) => NODE_BUILTIN_SET.has(p));
  const fromText = [...b.code.matchAll(/\b(?:from|import|require)\s*\(?\s*["'](node:[^"']+)["']/g)].map((m) => m[1] as string);
  return [...new Set([...fromMeta, ...fromText])];
}

describe('portable build (browser)', () => {
  let bundle: Bundle;

  beforeAll(async () => {
    bundle = await bundleForBrowser(ENTRY);
  });

  it('bundles with esbuild for the browser importing no Node built-in, and picks the noble default backend', () => {
    expect(nodeImportsOf(bundle)).toEqual([]);
    // A self-contained bundle: nothing left to fetch at run time.
    expect(bundle.imports).toEqual([]);
    const inputs = bundle.inputs.map((p) => p.replaceAll('\\', '/'));
    expect(inputs.some((p) => p.endsWith('packages/core/src/crypto/default-portable.ts'))).toBe(true);
    expect(inputs.some((p) => p.endsWith('packages/core/src/crypto/noble.ts'))).toBe(true);
    expect(inputs.filter((p) => /packages\/core\/src\/crypto\/(default-node|node)\.ts$/.test(p))).toEqual([]);
  });

  it('the Node built-in check finds node:crypto in the node backend (so it can fail)', async () => {
    expect(nodeImportsOf(await bundleForBrowser(NODE_BACKEND))).toContain('node:crypto');
  });

  describe.skipIf(skipReason !== null)(skipReason ? `in headless Chromium (skipped: ${skipReason})` : 'in headless Chromium', () => {
    let server: StaticServer | undefined;
    let chromium: ChromiumProfile | undefined;

    afterAll(async () => {
      await chromium?.close();
      await server?.close();
    });

    it('runs the README flow (accounts, bundle, session both ways, safety number) on the noble backend', async () => {
      // The page and the bundle on 127.0.0.1; nothing else.
      server = await serveStatic({
        '/': { type: 'text/html; charset=utf-8', body: modulePage('parley.js', 'parley core') },
        '/parley.js': { type: 'text/javascript; charset=utf-8', body: bundle.code },
      });
      chromium = await launchFreshProfile();
      const { page } = chromium;
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(`${e.name}: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(m.text());
      });

      await page.goto(server.url);
      const result = await pageResult<BrowserResult | undefined>(page, 30_000);

      expect(pageErrors).toEqual([]);
      expect(result?.error).toBeUndefined();
      expect(result?.lines).toEqual(EXPECTED_LINES);
      expect(result?.backend).toBe('noble');
      // The page really was a browser without Node: no `process` global.
      expect(await page.evaluate(() => typeof (globalThis as { process?: unknown }).process)).toBe('undefined');
    });
  });
});
