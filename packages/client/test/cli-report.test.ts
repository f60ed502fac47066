/**
 * `/report` in the terminal chat, under a real terminal (tmux) against a
 * relay on loopback (issue 19): the user lists the received messages, picks
 * one and a context message, sees the screen of exactly what will be sent,
 * confirms, and reads the outcome; "no" sends nothing; a second report of
 * the same message is the relay's REPORT_DUPLICATE, said in words; a message
 * without franked material says it cannot be reported. The relay queues one
 * report and the reported sender receives nothing (the "yes" is never sent
 * as a chat message).
 *
 * Bob's franked messages come from a raw sender through the real relay
 * (support/franked.ts). Panes are polled with bounded deadlines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultProvider } from '@parley/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';
import { MessageStatus, addMessage } from '../src/state/history.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { type RawDevice, deliverFranked, queuedReports, rawDevice, recipientOf, textContent } from './support/franked.ts';
import { type LoopbackRelay, loopbackRelay } from './support/loopback-relay.ts';
import { Tmux, hasTmux } from './support/tmux.ts';

const BIN_SOURCE = resolve(import.meta.dirname, '../src/cli/bin.ts');
const NODE_ARGS = ['--conditions=parley:source', '--import', 'tsx'];
const dir = mkdtempSync(join(tmpdir(), 'pr-'));
const bobHome = join(dir, 'bob');
let relay: LoopbackRelay;
let mallory: RawDevice;
const tmux = new Tmux(join(dir, 'tmux.sock'));

async function parley(...args: string[]): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    lines.push(parts.join(' '));
  });
  try {
    expect(await main(['--home', bobHome, '--relay', relay.url, ...args])).toBe(0);
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

describe.skipIf(!hasTmux() && !process.env['CI'])('/report in the terminal chat (tmux)', () => {
  relay = loopbackRelay('cli-report', { scope: 'all' });
  beforeAll(async () => {
    await parley('register');
    mallory = await rawDevice(relay.url);
    await parley('add', mallory.id, 'mallory');
    // Bob's home store gets three received messages: two franked through the relay, one from a v1 sender.
    const store = new SqliteStore(join(bobHome, 'parley.sqlite'));
    try {
      const bob = recipientOf(store, relay.url);
      const now = Date.now() - 60_000;
      await deliverFranked(mallory, bob, textContent('hello bob'), now);
      await deliverFranked(mallory, bob, textContent('you will regret this'), now + 1000);
      const plain = {
        messageId: defaultProvider().random(16),
        sentAt: now + 2000,
        expireTimer: 0,
        group: null,
        deviceList: null,
        body: { type: 'text' as const, text: 'an old app says hi' },
      };
      store.transaction(() =>
        addMessage(store, {
          conversation: mallory.id,
          outgoing: false,
          sender: { accountKey: mallory.account.publicKey, deviceId: 1 },
          content: plain,
          storedAt: now + 2000,
          status: MessageStatus.delivered,
          expiresAt: null,
        }),
      );
    } finally {
      store.close();
    }
  }, 60_000);

  afterAll(async () => {
    await tmux.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists, previews exactly what is sent, asks, sends, and prints the outcome', async () => {
    await tmux.start('bob', [process.execPath, ...NODE_ARGS, BIN_SOURCE, '--home', bobHome, '--relay', relay.url, 'chat', 'mallory']);
    await tmux.waitFor('bob', /chatting with mallory/, 30_000);

    await tmux.type('bob', '/report');
    const listed = await tmux.waitFor('bob', /then: \/report <n> <reason>/);
    expect(listed).toMatch(/ 1 {2}\[.*\] mallory: "hello bob"\n/);
    expect(listed).toMatch(/ 2 {2}\[.*\] mallory: "you will regret this"\n/);
    expect(listed).toMatch(
      / 3 {2}\[.*\] mallory: "an old app says hi" {3}\(This message cannot be reported: it was sent by an app version without verifiable reports\.\)/,
    );

    // "no" sends nothing.
    await tmux.type('bob', '/report 1 spam');
    await tmux.waitFor('bob', /send this report\? \(yes\/no\)/);
    await tmux.type('bob', 'no');
    await tmux.waitFor('bob', /\(report not sent\)/);
    expect(await queuedReports(relay.dbPath)).toHaveLength(0);

    await tmux.type('bob', '/report 2 threat +1 he knows my school');
    const screen = await tmux.waitFor('bob', /send this report\? \(yes\/no\)\s*\n.*mallory> $/m);
    expect(screen).toContain("this is exactly what will be sent to the relay's moderators");
    expect(screen).toContain('reason:   Threats or violence');
    expect(screen).toContain('comment:  "he knows my school"');
    expect(screen).toMatch(/REPORTED \[.*\] you will regret this/);
    expect(screen).toMatch(/context {2}\[.*\] hello bob/);
    expect(screen).toContain('mallory is not told.');
    await tmux.type('bob', 'yes');
    await tmux.waitFor('bob', /report sent: 2 messages queued for the moderators/);

    const [filed] = await queuedReports(relay.dbPath);
    expect(filed?.reason).toBe(3);
    expect(filed?.comment).toBe('he knows my school');
    expect(filed?.items.map((i) => i.role)).toEqual([1, 2]);

    await tmux.type('bob', '/report 2 threat');
    await tmux.waitFor('bob', /send this report\? \(yes\/no\)\s*\n.*mallory> $/m);
    await tmux.type('bob', 'y');
    await tmux.waitFor('bob', /report refused: you already reported this message \(REPORT_DUPLICATE\)/);
    await tmux.type('bob', '/report 3 spam');
    await tmux.waitFor('bob', /cannot report: This message cannot be reported: it was sent by an app version/);

    expect(await queuedReports(relay.dbPath)).toHaveLength(1);
    // The reported sender received nothing: no report notice, and no "yes" sent as a message.
    expect((await mallory.relay.fetchMessages()).messages).toEqual([]);
    await tmux.type('bob', '/quit');
    await tmux.waitFor('bob', /\[exit 0\]/);
  }, 90_000);
});
