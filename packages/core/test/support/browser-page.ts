/**
 * What core's browser tests share: the Chromium they drive (and why a run
 * skips), a page that loads one bundled module, a static server for it on
 * 127.0.0.1, and reading the result the page leaves in `window.__result`.
 * Each package keeps its own copy of this helper (the client has one too):
 * test code does not reach into another package's tests. The repository's
 * packaging test (test/packaging.test.ts) belongs to no package and uses
 * this one.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/**
 * A headless Chromium that reaches nothing but the test's own servers: no
 * sandbox (containers have no user namespaces), no GPU, no QUIC, and no
 * background fetches, component updates or sync.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium with no profile kept (each context starts empty). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

export interface ChromiumProfile {
  readonly context: BrowserContext;
  /** The window the browser opened with. */
  readonly page: Page;
  /** Closes the browser and deletes the profile. */
  close(): Promise<void>;
}

/**
 * Chromium on a fresh, empty profile of its own (a temporary folder): a
 * first visit, with no cache, storage or service worker left by another run.
 */
export async function launchFreshProfile(): Promise<ChromiumProfile> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'parley-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      context,
      page,
      close: async () => {
        await context.close();
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Why the browser part of `file` cannot run here (no Chromium), or null.
 * Under CI the browser is installed by .ci/install-browser.sh, so its absence
 * is a failure there, never a skip.
 */
export function chromiumSkipReason(file: string): string | null {
  const reason = existsSync(CHROMIUM) || process.env.CI ? null : `no Chromium at ${CHROMIUM} (run .ci/install-browser.sh)`;
  if (reason) console.warn(`${file} skipped: ${reason}`);
  return reason;
}

/**
 * The page that runs `/script` as a module. The empty data: icon keeps
 * Chromium from asking for /favicon.ico (a 404 in the console).
 */
export function modulePage(script: string, title?: string): string {
  return (
    '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
    (title ? `<title>${title}</title>` : '') +
    `<script type="module" src="/${script}"></script>`
  );
}

export interface StaticFile {
  readonly type: string;
  readonly body: string;
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT/` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves exactly `files` (by path; `/` also answers with a query string, for
 * pages that read one) on 127.0.0.1 at an ephemeral port; anything else is a 404.
 */
export async function serveStatic(files: Readonly<Record<string, StaticFile>>): Promise<StaticServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const file = Object.hasOwn(files, path) ? files[path] : undefined;
    if (file) res.writeHead(200, { 'content-type': file.type }).end(file.body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Waits until the page has set `window.__result` and returns it. */
export async function pageResult<T>(page: Page, timeout: number): Promise<T> {
  await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, { timeout });
  return (await page.evaluate(() => (window as { __result?: unknown }).__result)) as T;
}
