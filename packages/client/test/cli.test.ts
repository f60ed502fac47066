/**
 * The command-line chat against a real relay on loopback: what the README's
 * five-minute walk-through does, in-process.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tryLock } from '../src/cli/device-socket.ts';
import { main } from '../src/cli/main.ts';
import { ParleyClient } from '../src/client.ts';
import { connectRelayNode } from '../src/node.ts';
import { SqliteStore } from '../src/store/sqlite.ts';
import { loopbackRelay } from './support/loopback-relay.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
const relay = loopbackRelay('cli', { scope: 'all' });

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs one `parley` command and returns what it printed. */
function parley(home: string, ...args: string[]): Promise<string> {
  return parleyWith(home, relay.url, ...args);
}

async function parleyWith(home: string, relayUrl: string, ...args: string[]): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    lines.push(parts.join(' '));
  });
  try {
    expect(await main(['--home', join(dir, home), '--relay', relayUrl, ...args])).toBe(0);
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

describe('parley (command line)', () => {
  it('registers two people who add each other, chat, and send a file', async () => {
    const alice = /\n\s+(\S{43})/.exec(await parley('alice', 'register'))?.[1] as string;
    const bob = /\n\s+(\S{43})/.exec(await parley('bob', 'register'))?.[1] as string;
    expect(alice).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await parley('alice', 'id')).toContain(alice);

    const added = await parley('alice', 'add', bob, 'bob');
    await parley('bob', 'add', alice, 'alice');
    const digits = /safety number: ([\d ]+)/.exec(added)?.[1];
    expect(digits).toMatch(/^(\d{5} ){11}\d{5}$/);
    expect(await parley('bob', 'safety', 'alice')).toBe(digits);

    expect(await parley('alice', 'send', 'bob', 'hello', 'from', 'the', 'terminal')).toBe('message: sent');
    const file = join(dir, 'clip.mp4');
    writeFileSync(
      file,
      Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff),
    );
    expect(await parley('alice', 'send-file', 'bob', file, '--caption', 'a clip')).toBe('file: sent');

    const inbox = await parley('bob', 'inbox');
    expect(inbox).toMatch(/alice: hello from the terminal/);
    expect(inbox).toMatch(/alice: \[file clip\.mp4, 196 KiB\] a clip/);
    expect(readFileSync(join(dir, 'bob', 'downloads', 'clip.mp4'))).toEqual(readFileSync(file));
    expect(
      existsSync(join(dir, 'bob', 'pending-downloads.json')) ? readFileSync(join(dir, 'bob', 'pending-downloads.json'), 'utf8') : '[]',
    ).toBe('[]');

    // A download an earlier process did not finish (killed mid-file) is resumed by the next command that goes online.
    const store = new SqliteStore(join(dir, 'bob', 'parley.sqlite'));
    const bobClient = await ParleyClient.open({ store, relay: connectRelayNode(relay.url) });
    const conversation = bobClient.resolveName('alice') as string;
    const withFile = bobClient.history(conversation).find((m) => m.content.body.type === 'attachment');
    await bobClient.close();
    store.close();
    const messageId = Buffer.from(withFile?.content.messageId ?? []).toString('base64url');
    rmSync(join(dir, 'bob', 'downloads', 'clip.mp4'));
    writeFileSync(join(dir, 'bob', 'pending-downloads.json'), JSON.stringify([{ conversation, messageId }]));
    expect(await parley('bob', 'inbox')).toMatch(/saved to .+clip\.mp4/);
    expect(readFileSync(join(dir, 'bob', 'downloads', 'clip.mp4'))).toEqual(readFileSync(file));
    expect(readFileSync(join(dir, 'bob', 'pending-downloads.json'), 'utf8')).toBe('[]');
    // And a command downloads it again while the relay holds it.
    expect(await parley('bob', 'download', 'alice')).toMatch(/saved to .+clip \(1\)\.mp4/);
    expect(readFileSync(join(dir, 'bob', 'downloads', 'clip (1).mp4'))).toEqual(readFileSync(file));

    // One-shot commands now print what happens while they are online (the group-change too).
    // Sent while the relay is unreachable: queued, and announced when it goes out.
    const down = await parleyWith('alice', 'http://127.0.0.1:9', 'send', 'bob', 'while the relay was down');
    expect(down).toContain('queued');
    const later = await parley('alice', 'inbox');
    expect(later).toContain('(queued message to bob went out: "while the relay was down")');
    expect(await parley('bob', 'inbox')).toContain('alice: while the relay was down');

    // Another process holds bob's home for a one-shot command: this one says so, waits, then runs.
    const held = await tryLock(join(dir, 'bob'));
    held?.serve(
      () => 'busy',
      () => 'send-file',
    );
    const lines: string[] = [];
    const waiting = main(['--home', join(dir, 'bob'), '--relay', relay.url, 'contacts'], {
      print: (t) => lines.push(t),
      error: (t) => lines.push(t),
    });
    await vi.waitFor(() => expect(lines.join('\n')).toContain('waiting: another parley (send-file) is using'), { timeout: 10_000 });
    expect(lines.join('\n')).not.toContain('alice');
    await held?.release();
    expect(await waiting).toBe(0);
    expect(lines.join('\n')).toMatch(/^alice\s/m);

    expect(await parley('alice', 'group', 'create', 'pair', 'bob')).toMatch(/^created #pair$/m);
    await parley('alice', 'send', 'pair', 'to the group');
    expect(await parley('bob', 'inbox')).toMatch(/#pair alice: to the group/);
    expect(await parley('bob', 'history', 'alice')).toMatch(/alice: hello from the terminal/);
    expect(await parley('alice', 'history', 'bob')).toMatch(/me: hello from the terminal {2}\((delivered|read)\)/);
  });
});

describe('parley help, typos and a failed register', () => {
  /** Runs `parley` in-process; returns its exit status (1 for a thrown error) and what it printed. */
  async function run(...argv: string[]): Promise<{ code: number; text: string }> {
    const lines: string[] = [];
    const out = { print: (t: string) => lines.push(t), error: (t: string) => lines.push(t) };
    try {
      return { code: await main(argv, out), text: lines.join('\n') };
    } catch (e) {
      return { code: 1, text: [...lines, (e as Error).message].join('\n') };
    }
  }

  it('help per command, and neither help nor a typo creates a home', async () => {
    const fresh = join(dir, 'nobody');
    const h = ['--home', fresh];
    const help = await run(...h, 'help');
    expect(help.code).toBe(0);
    expect(help.text).toMatch(/send-file\s+send a file/);
    const chatHelp = await run(...h, 'chat', '--help');
    expect(chatHelp.text).toContain('usage: parley chat <name|#group>');
    expect(chatHelp.text).toMatch(/example:\n\s+parley chat bob/);
    expect((await run(...h, 'help', 'send-file')).text).toContain('--caption');
    const bogus = await run(...h, 'bogus');
    expect(bogus).toMatchObject({ code: 1 });
    expect(bogus.text).toContain('unknown command: bogus');
    expect((await run(...h, 'send', 'bob')).text).toContain('usage: parley send <to> <text...>');
    expect((await run(...h, 'id')).text).toContain('no account in');
    // An account id may begin with "-": it is an argument, not an option.
    expect((await run(...h, 'add', `-${'A'.repeat(41)}A`, 'x')).text).toContain('no account in');
    expect((await run(...h, '--bogus', 'id')).text).toContain('unknown option --bogus');
    expect(existsSync(fresh)).toBe(false);
  });

  it('a failed register leaves nothing behind and can be retried', async () => {
    const where = join(dir, 'retry');
    // Nothing listens on port 9: registration fails.
    const failed = await run('--home', where, '--relay', 'http://127.0.0.1:9', 'register');
    expect(failed.code).toBe(1);
    expect(existsSync(where)).toBe(false);
    const again = await run('--home', where, '--relay', relay.url, 'register');
    expect(again).toMatchObject({ code: 0 });
    expect(again.text).toContain('registered on');
  });
});
