/**
 * The terminal chat under a real terminal (tmux), against a relay on
 * loopback: what a person does with two terminals open. Issue 14.
 *
 *   - a chat stays live while one-shot commands run for the same home
 *     (they run inside it, over the home's socket: one connection per device);
 *   - incoming lines print above the prompt, keeping what is being typed;
 *   - a /file error is shown and the chat goes on;
 *   - a 50 MiB file arrives whole through `inbox` (no `.part` left);
 *   - typing is sent; a linked device knows the primary's contacts.
 * (Help, typos and a failed register are checked in-process in cli.test.ts.)
 *
 * Panes are polled with bounded deadlines; no fixed sleep is an assertion.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoopbackRelay, loopbackRelay } from './support/loopback-relay.ts';
import { Tmux, hasTmux } from './support/tmux.ts';

// The command's source through tsx, as `npm run parley` runs it (the compiled
// dist/cli/bin.js is what an install gets; test/packaging.test.ts covers that).
const BIN_SOURCE = resolve(import.meta.dirname, '../src/cli/bin.ts');
const NODE_ARGS = ['--conditions=parley:source', '--import', 'tsx'];
const dir = mkdtempSync(join(tmpdir(), 'pt-'));
const home = (name: string) => join(dir, name);
let relay: LoopbackRelay;
const tmux = new Tmux(join(dir, 'tmux.sock'));

/** Runs one `parley` process (not under tmux) and collects its output. */
function parley(
  who: string | null,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [...NODE_ARGS, BIN_SOURCE, ...(who ? ['--home', home(who), '--relay', relay.url] : []), ...args];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr });
    });
  });
}

function chatArgv(who: string, ...args: string[]): string[] {
  return [process.execPath, ...NODE_ARGS, BIN_SOURCE, '--home', home(who), '--relay', relay.url, ...args];
}

// CI installs tmux (.ci/install-tmux.sh); elsewhere a machine without it skips these.
describe.skipIf(!hasTmux() && !process.env['CI'])('parley in a terminal (tmux)', () => {
  relay = loopbackRelay('cli-terminal', { scope: 'all' });
  let aliceId = '';
  let bobId = '';

  beforeAll(async () => {
    const [a, b] = await Promise.all([parley('alice', ['register']), parley('bob', ['register'])]);
    aliceId = /\n\s+(\S{43})/.exec(a.stdout)?.[1] as string;
    bobId = /\n\s+(\S{43})/.exec(b.stdout)?.[1] as string;
    expect(aliceId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const added = await Promise.all([parley('alice', ['add', bobId, 'bob']), parley('bob', ['add', aliceId, 'alice'])]);
    for (const a of added) expect(a).toMatchObject({ code: 0, stderr: '' });
  }, 60_000);

  afterAll(async () => {
    await tmux.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a chat stays live while one-shot commands run for the same home; a /file error leaves it running', async () => {
    await tmux.start('alice', chatArgv('alice', 'chat', 'bob'));
    await tmux.waitFor('alice', /chatting with bob/);

    // A one-shot command for the same home runs inside the chat (its connection stays).
    const sent = await parley('alice', ['send', 'bob', 'sent from a second terminal']);
    expect(sent).toMatchObject({ code: 0 });
    expect(sent.stdout).toContain('message: sent');

    // Half a line typed; a message arrives; the typed text is still on the prompt line.
    await tmux.type('alice', 'half a li', false);
    await tmux.waitFor('alice', /bob> half a li$/m);
    // Bob's one-shot receives what waited for him, and prints it (not only stores it).
    const bobSend = await parley('bob', ['send', 'alice', 'are you there?']);
    expect(bobSend.code).toBe(0);
    const pane = await tmux.waitFor('alice', /bob: are you there\?/);
    expect(pane.trimEnd().split('\n').at(-1)).toBe('bob> half a li');
    await tmux.type('alice', 'ne');

    // Errors are lines in the chat, not an exit.
    await tmux.type('alice', '/file /no/such/clip.mp4');
    await tmux.waitFor('alice', /error: no such file: \/no\/such\/clip\.mp4/);
    // A file above the relay's limit (sparse: the relay refuses it by its announced size, nothing is read).
    const huge = join(dir, 'huge.bin');
    writeFileSync(huge, '');
    truncateSync(huge, 110 * 1024 * 1024);
    await tmux.type('alice', `/file ${huge}`);
    await tmux.waitFor('alice', /error: too large: this relay takes files up to 100\.0 MiB \(104857600 bytes, encrypted\)/);
    await tmux.type('alice', 'still here after the error');

    // 50 MiB through the chat, then through bob's inbox.
    const big = join(dir, 'big.bin');
    const bytes = Buffer.alloc(50 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes.writeUInt32LE(i, i);
    writeFileSync(big, bytes);
    await tmux.type('alice', `/file ${big} fifty`);
    await tmux.waitFor('alice', /\(file big\.bin sent\)/, 60_000);
    const alicePane = await tmux.capture('alice');
    expect(alicePane).not.toContain('[exit');
    expect(alicePane).not.toMatch(/message: sent/);

    const inbox = await parley('bob', ['inbox']);
    expect(inbox.code).toBe(0);
    expect(inbox.stdout).toContain('alice: half a line');
    expect(inbox.stdout).toContain('alice: still here after the error');
    expect(inbox.stdout).toMatch(/alice: \[file big\.bin, 50\.0 MiB\] fifty/);
    const saved = /saved to (.+big\.bin)/.exec(inbox.stdout)?.[1] as string;
    expect(saved).toBeTruthy();
    expect(readFileSync(saved).equals(bytes)).toBe(true);
    expect(readdirSync(join(home('bob'), 'downloads')).filter((f) => f.endsWith('.part'))).toEqual([]);

    // History: by message time, with dates.
    const history = await parley('bob', ['history', 'alice']);
    expect(history.stdout).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d\] alice: sent from a second terminal/m);
  }, 120_000);

  it('a listen stays live under one-shot commands, and sees typing', async () => {
    await tmux.start('bob', chatArgv('bob', 'listen'));
    await tmux.waitFor('bob', /listening as/);
    // A one-shot for bob's home runs inside the listen.
    const contacts = await parley('bob', ['contacts']);
    expect(contacts.stdout).toContain('alice');
    const inbox = await parley('bob', ['inbox']);
    expect(inbox.stdout).toContain('online in "parley listen"');

    await tmux.type('alice', 'typing now', false);
    await tmux.waitFor('bob', /\(alice is typing\)/);
    await tmux.type('alice', '');
    await tmux.waitFor('bob', /alice: typing now/);
    // A send from bob's second terminal goes out through the listen; alice's chat shows it.
    expect((await parley('bob', ['send', 'alice', 'through the listen'])).code).toBe(0);
    await tmux.waitFor('alice', /bob: through the listen/);
    expect(await tmux.capture('bob')).not.toContain('[exit');
  }, 60_000);

  it('a linked device knows the primary contacts (approved through the running chat)', async () => {
    await tmux.start('alice2', chatArgv('alice2', 'link'));
    const shown = await tmux.waitFor('alice2', /parley approve (\S+)/);
    const request = /parley approve (\S+)/.exec(shown)?.[1] as string;
    // Alice's chat still holds her home: the approval runs inside it.
    const approved = await parley('alice', ['approve', request]);
    expect(approved.code).toBe(0);
    const response = /paste this on the new device:\n(\S+)/.exec(approved.stdout)?.[1] as string;
    expect(response).toBeTruthy();
    await tmux.type('alice2', response);
    await tmux.waitFor('alice2', /linked as device 2/);
    // The contact list waits in the primary's outbox until the new device registered; poll with a deadline.
    const deadline = Date.now() + 30_000;
    let contacts = '';
    for (;;) {
      await parley('alice2', ['inbox']);
      contacts = (await parley('alice2', ['contacts'])).stdout;
      if (/^bob\s/m.test(contacts) || Date.now() > deadline) break;
    }
    expect(contacts).toContain(bobId);
    // A verification mark made on the primary reaches the linked device too.
    await tmux.type('alice', '/verify');
    await tmux.waitFor('alice', /bob is marked verified/);
    const until = Date.now() + 30_000;
    for (;;) {
      await parley('alice2', ['inbox']);
      contacts = (await parley('alice2', ['contacts'])).stdout;
      if (/\(verified\)/.test(contacts) || Date.now() > until) break;
    }
    expect(contacts).toMatch(/^bob\s+\S+\s+\(verified\)/m);
  }, 90_000);
});
