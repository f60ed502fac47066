/**
 * The web chat in headless Chromium (Debian's package, driven by
 * playwright-core), against a real relay served on the same origin by
 * `startWeb` (what `npm run web` runs). Each person is a browser context of
 * their own: their own IndexedDB, their own keys.
 *
 * One story, in order: Alice and Bob register and add each other, chat both
 * ways (Alice sees "read"), compare safety numbers; Carol joins a group
 * with them; Alice sends a picture and Carol a video that the others see
 * inline; Bob reloads and still sees everything; Alice goes offline,
 * writes, comes back, and the queued message reaches Bob; Bob sets a
 * disappearing timer; Alice links a second browser. Screenshots of
 * the main screens go to packages/web/test/screenshots/ (git-ignored).
 *
 * Skips with a reason when /usr/bin/chromium is absent, except under CI.
 */
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import type { Page, WebSocketRoute } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import {
  SHOTS,
  WAIT_MS,
  addContact,
  chromiumSkipReason,
  message,
  openConversation,
  register as createAccount,
  send,
  useWebChat,
} from './support/web-chat-page.ts';

/** A real PNG of `width` x `height` pixels (a colour gradient) that the browser must decode to show. */
function png(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3); // filter byte 0, then RGB
    for (let x = 0; x < width; x++) row.set([(x * 255) / width, (y * 255) / height, 160], 1 + x * 3);
    rows.push(row);
  }
  const pixels = deflateSync(Buffer.concat(rows));
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
const PNG_WIDTH = 240;
const PNG = png(PNG_WIDTH, 135);

const skipReason = chromiumSkipReason('web-chat.test.ts');

describe.skipIf(skipReason !== null)('web chat in headless Chromium', () => {
  const run = useWebChat('parley-web-');

  async function person(name: string) {
    // Playwright's offline emulation leaves open websockets up (microsoft/playwright#4910), and the
    // client sends over its websocket while connected: this person's websockets pass through a
    // route that an offline spell closes and refuses, as a real loss of network would.
    const net = { offline: false, sockets: new Set<WebSocketRoute>() };
    const { page, context } = await run.person(name, {
      height: 700,
      prepare: (context) =>
        context.routeWebSocket(/\/v1\/websocket/, (ws) => {
          if (net.offline) return void ws.close();
          ws.connectToServer();
          net.sockets.add(ws);
          ws.onClose(() => net.sockets.delete(ws));
        }),
    });
    const setOffline = async (offline: boolean) => {
      net.offline = offline;
      await context.setOffline(offline);
      if (offline) for (const ws of [...net.sockets]) await ws.close();
    };
    return { page, context, setOffline };
  }

  async function register(page: Page): Promise<string> {
    const id = await createAccount(page);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    return id;
  }

  it('registers, adds contacts, chats both ways, groups, pictures inline, reload, offline queue, linking', async () => {
    const alice = await person('alice');
    const bob = await person('bob');
    await alice.page.getByTestId('welcome').screenshot({ path: join(SHOTS, 'welcome.png') });
    const aliceId = await register(alice.page);
    const bobId = await register(bob.page);

    // The account id as a QR code (43 characters at error correction M: a version-4 code, 33 modules a side).
    await alice.page.getByTestId('show-qr').click();
    expect(await alice.page.getByTestId('my-qr').getAttribute('data-modules')).toBe('33');
    await alice.page.getByTestId('qr-dialog').getByText('Close').click();

    // Add each other by account id, and chat both ways.
    await addContact(alice.page, bobId, 'Bob');
    await addContact(bob.page, aliceId, 'Alice');
    await send(alice.page, 'hello Bob');
    await openConversation(bob.page, 'Alice');
    await message(bob.page, 'hello Bob').waitFor();
    await send(bob.page, 'hi Alice');
    await message(alice.page, 'hi Alice').waitFor();
    // Text from a peer is text: markup shows as typed and never runs.
    const markup = '<img src=x onerror="window.__pwned=1"><b>bold</b>';
    await send(bob.page, markup);
    await message(alice.page, markup).waitFor();
    expect(await alice.page.locator('[data-testid=messages] b, [data-testid=messages] img').count()).toBe(0);
    expect(await alice.page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    // Bob had the conversation open: Alice's message turns "read" on her screen.
    await alice.page.locator('[data-testid=message][data-status=read]').filter({ hasText: 'hello Bob' }).waitFor();

    // Safety numbers: the same 60 digits on both screens.
    const digits = async (page: Page) => {
      await page.getByTestId('safety-number').click();
      const text = (await page.getByTestId('safety-digits').textContent()) ?? '';
      return text;
    };
    const aliceDigits = await digits(alice.page);
    expect(aliceDigits).toMatch(/^\d{60}$/);
    expect(await digits(bob.page)).toBe(aliceDigits);
    await alice.page.getByTestId('safety-dialog').screenshot({ path: join(SHOTS, 'safety-number.png') });
    await alice.page.getByTestId('mark-verified').click();
    await bob.page.getByTestId('safety-dialog').getByText('Close').click();
    await alice.page.getByTestId('conversation').filter({ hasText: 'Bob ✔' }).waitFor();

    // A group with a third person.
    const carol = await person('carol');
    const carolId = await register(carol.page);
    await addContact(alice.page, carolId, 'Carol');
    await alice.page.getByTestId('new-group').click();
    await alice.page.getByTestId('group-name').fill('lunch');
    await alice.page.locator('[data-testid=group-member][data-name=Bob]').check();
    await alice.page.locator('[data-testid=group-member][data-name=Carol]').check();
    await alice.page.getByTestId('group-save').click();
    await alice.page.getByTestId('chat-title').filter({ hasText: '# lunch (3 members)' }).waitFor();
    await send(alice.page, 'noon at the usual place?');
    for (const p of [bob.page, carol.page]) {
      await openConversation(p, '# lunch');
      await message(p, 'noon at the usual place?').waitFor();
    }
    await send(carol.page, 'yes!');
    await message(alice.page, 'yes!').waitFor();
    await message(bob.page, 'yes!').waitFor();

    // A picture, shown inline (decoded by the browser) to everyone in the group.
    await alice.page.getByTestId('file-input').setInputFiles({ name: 'dots.png', mimeType: 'image/png', buffer: PNG });
    for (const p of [alice.page, bob.page, carol.page]) {
      const img = p.getByTestId('inline-image').last();
      await img.waitFor();
      await expect.poll(() => img.evaluate((el) => (el as HTMLImageElement).naturalWidth), { timeout: WAIT_MS }).toBe(PNG_WIDTH);
    }
    await bob.page.screenshot({ path: join(SHOTS, 'group-chat.png') });

    // A short video (WebM recorded from a canvas in Carol's page), playable inline for the others.
    const webm = await carol.page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = 64;
      canvas.height = 48;
      const g = canvas.getContext('2d') as CanvasRenderingContext2D;
      const recorder = new MediaRecorder(canvas.captureStream(10), { mimeType: 'video/webm' });
      const chunks: Blob[] = [];
      recorder.ondataavailable = (e) => chunks.push(e.data);
      const stopped = new Promise((r) => {
        recorder.onstop = r;
      });
      recorder.start();
      for (let i = 0; i < 8; i++) {
        g.fillStyle = `hsl(${i * 40} 80% 50%)`;
        g.fillRect(0, 0, 64, 48);
        await new Promise((r) => setTimeout(r, 60));
      }
      recorder.stop();
      await stopped;
      return [...new Uint8Array(await new Blob(chunks).arrayBuffer())];
    });
    await carol.page.getByTestId('file-input').setInputFiles({ name: 'clip.webm', mimeType: 'video/webm', buffer: Buffer.from(webm) });
    for (const p of [alice.page, bob.page]) {
      const video = p.getByTestId('inline-video').last();
      await video.waitFor();
      // HAVE_METADATA or more: the browser parsed the decrypted bytes as a video.
      await expect.poll(() => video.evaluate((el) => (el as HTMLVideoElement).readyState), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(1);
    }

    // Bob reloads: keys and history come back from IndexedDB.
    await bob.page.reload();
    await bob.page.locator('[data-testid=connection].drained').waitFor();
    expect(await bob.page.getByTestId('my-id').textContent()).toBe(bobId);
    await openConversation(bob.page, 'Alice');
    await message(bob.page, 'hello Bob').waitFor();
    await message(bob.page, 'hi Alice').waitFor();
    await openConversation(bob.page, '# lunch');
    await bob.page.getByTestId('inline-image').waitFor();

    // Alice goes offline, writes, and comes back: the queued message goes out and reaches Bob.
    await openConversation(alice.page, 'Bob');
    await alice.setOffline(true);
    await send(alice.page, 'written while offline');
    await alice.page.locator('[data-testid=message][data-status=queued]').filter({ hasText: 'written while offline' }).waitFor();
    await alice.page.getByTestId('toast').filter({ hasText: 'Offline' }).waitFor();
    await alice.page.screenshot({ path: join(SHOTS, 'offline-queued.png') });
    await alice.setOffline(false);
    await openConversation(bob.page, 'Alice');
    await message(bob.page, 'written while offline').waitFor();
    await alice.page.getByTestId('toast').filter({ hasText: 'queued messages went out' }).waitFor();
    await alice.page.locator('[data-testid=message][data-status=read]').filter({ hasText: 'written while offline' }).waitFor();
    await alice.page.screenshot({ path: join(SHOTS, 'chat.png') });

    // Disappearing messages: Bob sets a timer; Alice's screen follows, and new messages carry their expiry on both sides.
    await bob.page.getByTestId('timer').selectOption('300');
    await expect.poll(() => alice.page.getByTestId('timer').inputValue(), { timeout: WAIT_MS }).toBe('300');
    await send(alice.page, 'a vanishing note');
    await message(bob.page, 'a vanishing note').filter({ hasText: 'disappears' }).waitFor();
    await message(alice.page, 'a vanishing note').filter({ hasText: 'disappears' }).waitFor();

    // Alice links a second browser to her account.
    const laptop = await person('alice-laptop');
    await laptop.page.getByTestId('start-link').click();
    const request = await laptop.page.getByTestId('link-request').inputValue();
    await alice.page.getByTestId('link-device').click();
    await alice.page.getByTestId('link-request-input').fill(request);
    await alice.page.getByTestId('link-approve').click();
    await expect.poll(() => alice.page.getByTestId('link-response').inputValue(), { timeout: WAIT_MS }).not.toBe('');
    const response = await alice.page.getByTestId('link-response').inputValue();
    await laptop.page.getByTestId('link-response-input').fill(response);
    await laptop.page.getByTestId('finish-link').click();
    await laptop.page.locator('[data-testid=connection].drained').waitFor();
    expect(await laptop.page.getByTestId('my-id').textContent()).toBe(aliceId);
    // Bob's next message reaches both of Alice's browsers.
    await send(bob.page, 'to both your browsers');
    await message(alice.page, 'to both your browsers').waitFor();
    await laptop.page.locator(`[data-testid=conversation][data-id="${bobId}"]`).click();
    await message(laptop.page, 'to both your browsers').waitFor();

    // A second tab on the same profile is refused (two copies of one device's state would diverge).
    const secondTab = await alice.context.newPage();
    await secondTab.goto(run.url);
    await secondTab.getByTestId('fatal').filter({ hasText: 'STORE_IN_USE' }).waitFor();

    expect(run.errors).toEqual([]);
  });
});
