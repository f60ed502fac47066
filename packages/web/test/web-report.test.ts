/**
 * The web chat's report screen in headless Chromium against a real relay
 * (issue 19): Bob reports a message from Alice with an earlier one as
 * context; the screen shows exactly what will be sent and updates as he
 * picks; the relay verifies and queues it; reporting it again is refused in
 * words; a message that disappeared says it can no longer be reported.
 *
 * Skips with a reason when /usr/bin/chromium is absent, except under CI.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OPTIONS } from '@parley/client';
import { decodeReport } from '@parley/core';
import { SqliteStorage } from '@parley/relay';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningWeb, startWeb } from '../src/server/serve.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
];
const SHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const WAIT_MS = 20_000;

// The web app's clients frank their messages only once they send version 2 by default (engineer v2wire's client v2 sends).
const skipReason = !DEFAULT_OPTIONS.sessionVersions.includes(2)
  ? 'clients do not send version 2 (franked) messages by default yet'
  : existsSync(CHROMIUM) || process.env.CI
    ? null
    : `no Chromium at ${CHROMIUM} (run .ci/install-browser.sh)`;
if (skipReason) console.warn(`web-report.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('reporting a message in the web chat', () => {
  let web: RunningWeb;
  let dataDir: string;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'parley-web-report-'));
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

  /** `fakeClock`: the page's Date and timers are Playwright's (installed before the app loads, so the SDK's clock is that one too). */
  async function person(name: string, fakeClock = false): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    contexts.push(context);
    if (fakeClock) await context.clock.install();
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`${name}: ${e.name}: ${e.message}`));
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(web.url);
    await page.getByTestId('create-account').click();
    await page.locator('[data-testid=connection].drained').waitFor();
    return page;
  }
  const idOf = async (page: Page) => (await page.getByTestId('my-id').textContent()) ?? '';
  async function addContact(page: Page, id: string, name: string): Promise<void> {
    await page.getByTestId('add-contact').click();
    await page.getByTestId('contact-id').fill(id);
    await page.getByTestId('contact-name').fill(name);
    await page.getByTestId('contact-save').click();
    await page.getByTestId('add-contact-dialog').waitFor({ state: 'detached' });
  }
  async function send(page: Page, text: string): Promise<void> {
    await page.getByTestId('composer').fill(text);
    await page.getByTestId('send').click();
  }
  const message = (page: Page, text: string) => page.getByTestId('message').filter({ hasText: text });
  async function queued() {
    const storage = new SqliteStorage({ path: join(dataDir, 'relay.sqlite') });
    try {
      return (await storage.listReports(0, 100)).map((r) => decodeReport(r.report));
    } finally {
      await storage.close();
    }
  }

  it('shows exactly what will be sent, lets the user pick context, sends, and shows the outcome', async () => {
    const alice = await person('alice');
    const bob = await person('bob', true);
    await addContact(alice, await idOf(bob), 'Bob');
    await addContact(bob, await idOf(alice), 'Alice');
    await send(alice, 'are you at school tomorrow');
    await send(alice, 'you will pay for this');
    await bob.getByTestId('conversation').filter({ hasText: 'Alice' }).click();
    await message(bob, 'you will pay for this').waitFor();
    // Our own messages have no report action.
    await send(bob, 'leave me alone');
    await message(bob, 'leave me alone').waitFor();
    expect(await message(bob, 'leave me alone').getByTestId('report').count()).toBe(0);

    await message(bob, 'you will pay for this').getByTestId('report').click();
    const dialog = bob.getByTestId('report-dialog');
    await dialog.waitFor();
    const items = dialog.getByTestId('report-item');
    await expect.poll(() => items.count()).toBe(1);
    expect(await items.first().textContent()).toMatch(/^Reported: .* Alice: you will pay for this$/);

    await dialog.getByTestId('report-reason').selectOption('threat');
    await dialog.getByTestId('report-comment').fill('she knows where I live');
    await dialog.getByTestId('report-context').first().check();
    await expect.poll(() => items.count()).toBe(2);
    expect(await items.nth(1).textContent()).toMatch(/^Context: .* Alice: are you at school tomorrow$/);
    expect(await dialog.getByTestId('report-preview').textContent()).toContain('Reason: Threats or violence');
    expect(await dialog.getByTestId('report-preview').textContent()).toContain('Comment: she knows where I live');
    expect(await dialog.getByTestId('report-preview').textContent()).toContain('Alice is not told that you reported.');
    await dialog.screenshot({ path: join(SHOTS, 'report.png') });
    expect(await queued()).toHaveLength(0);

    await dialog.getByTestId('report-send').click();
    await dialog.getByTestId('report-outcome').filter({ hasText: 'Report sent: 2 messages queued for the moderators.' }).waitFor();
    const [filed] = await queued();
    expect(filed?.reason).toBe(3);
    expect(filed?.comment).toBe('she knows where I live');
    expect(filed?.items).toHaveLength(2);
    await dialog.getByText('Close').click();

    // The same message again: the relay's REPORT_DUPLICATE, in words.
    await message(bob, 'you will pay for this').getByTestId('report').click();
    await bob.getByTestId('report-send').click();
    await bob
      .getByTestId('report-outcome')
      .filter({ hasText: 'Report refused: You already reported this message. (REPORT_DUPLICATE)' })
      .waitFor();
    await bob.getByTestId('report-dialog').getByText('Cancel').click();
    expect(await queued()).toHaveLength(1);

    // Disappearing messages: once one has disappeared it can no longer be reported, and the screen says so.
    await bob.getByTestId('timer').selectOption('30');
    await alice.getByTestId('timer').locator('option[value="30"]:checked').waitFor({ state: 'attached' });
    await send(alice, 'this will vanish');
    await message(bob, 'this will vanish').waitFor();
    // The report screen is open when the message disappears: sending then says it can no longer be reported.
    await message(bob, 'this will vanish').getByTestId('report').click();
    await bob.getByTestId('report-item').first().waitFor();
    await bob.clock.setFixedTime(Date.now() + 60_000);
    // Frozen time stops animation frames, so the click is dispatched rather than waited on for stability.
    await bob.getByTestId('report-send').dispatchEvent('click');
    await bob
      .getByTestId('report-outcome')
      .filter({ hasText: 'This message can no longer be reported: it disappeared or was deleted.' })
      .waitFor();
    expect(await queued()).toHaveLength(1);
    expect(errors).toEqual([]);
  }, 120_000);
});
