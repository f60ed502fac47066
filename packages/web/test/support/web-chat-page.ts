/**
 * What the web chat's browser tests share: the Chromium they drive (and why a
 * run skips), a relay with the web app started by `startWeb` in a fresh data
 * folder, one browser context per person, and the page actions every story
 * repeats (create an account, add a contact, open a conversation, send, find
 * a message).
 *
 * Each package keeps its own browser helper (core and client have theirs):
 * test code does not reach into another package's tests.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, type Locator, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { type RunningWeb, startWeb } from '../../src/server/serve.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
];
/** Screenshots of the main screens (git-ignored). */
export const SHOTS = fileURLToPath(new URL('../screenshots/', import.meta.url));
/** Longest wait for one thing to appear on a page (a message crossing the relay, a download). */
export const WAIT_MS = 20_000;

/**
 * Why `file` cannot run here (no Chromium), or null. Under CI the browser is
 * installed by .ci/install-browser.sh, so its absence is a failure there,
 * never a skip.
 */
export function chromiumSkipReason(file: string): string | null {
  const reason = existsSync(CHROMIUM) || process.env.CI ? null : `no Chromium at ${CHROMIUM} (run .ci/install-browser.sh)`;
  if (reason) console.warn(`${file} skipped: ${reason}`);
  return reason;
}

export interface PersonOptions {
  /** The window's height in CSS pixels (the width is 1100). */
  readonly height: number;
  /** The page's Date and timers are Playwright's, installed before the app loads (so the SDK's clock is that one too). */
  readonly fakeClock?: boolean;
  /** Runs on the fresh context before its page opens (routes, for one). */
  readonly prepare?: (context: BrowserContext) => Promise<void>;
}

export interface Person {
  readonly page: Page;
  readonly context: BrowserContext;
}

export interface WebChatRun {
  /** The relay's data folder (its SQLite database is `relay.sqlite` there). */
  readonly dataDir: string;
  readonly url: string;
  /** Uncaught errors of every page, as `name: Error: message`; a story ends by expecting none. */
  readonly errors: readonly string[];
  /** A person of their own: a fresh browser context (own IndexedDB, own keys) on the web app. */
  person(name: string, options: PersonOptions): Promise<Person>;
}

/**
 * Starts the web app and Chromium before the enclosing describe's tests and
 * closes both (and every context opened) after them. Call it inside the describe.
 */
export function useWebChat(dataDirPrefix: string): WebChatRun {
  let web: RunningWeb | undefined;
  let dataDir: string | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), dataDirPrefix));
    mkdirSync(SHOTS, { recursive: true });
    web = await startWeb({ dataDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await web?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const started = () => {
    if (!web || !browser || !dataDir) throw new Error('the web chat is not started: call useWebChat inside a describe');
    return { web, browser, dataDir };
  };

  return {
    get dataDir() {
      return started().dataDir;
    },
    get url() {
      return started().web.url;
    },
    errors,
    async person(name, options) {
      const { web, browser } = started();
      const context = await browser.newContext({ viewport: { width: 1100, height: options.height } });
      contexts.push(context);
      if (options.fakeClock) await context.clock.install();
      await options.prepare?.(context);
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(`${name}: ${e.name}: ${e.message}`));
      page.setDefaultTimeout(WAIT_MS);
      await page.goto(web.url);
      return { page, context };
    },
  };
}

/** Creates an account on the welcome screen, waits until the relay's backlog is drained, and returns the account id. */
export async function register(page: Page): Promise<string> {
  await page.getByTestId('create-account').click();
  await page.locator('[data-testid=connection].drained').waitFor();
  return (await page.getByTestId('my-id').textContent()) ?? '';
}

export async function addContact(page: Page, id: string, name: string): Promise<void> {
  await page.getByTestId('add-contact').click();
  await page.getByTestId('contact-id').fill(id);
  await page.getByTestId('contact-name').fill(name);
  await page.getByTestId('contact-save').click();
  await page.getByTestId('add-contact-dialog').waitFor({ state: 'detached' });
}

export async function openConversation(page: Page, label: string | RegExp): Promise<void> {
  await page.getByTestId('conversation').filter({ hasText: label }).click();
}

/** Types `text` into the open conversation's composer and sends it. */
export async function send(page: Page, text: string): Promise<void> {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('send').click();
}

/** The messages on screen that contain `text`. */
export const message = (page: Page, text: string): Locator => page.getByTestId('message').filter({ hasText: text });
