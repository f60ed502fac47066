/**
 * The command-line chat against a real relay on loopback: what the README's
 * five-minute walk-through does, in-process.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningRelay, startServer, withDefaults } from '@parley/relay';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.ts';

const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
let relay: RunningRelay;

beforeAll(async () => {
  relay = await startServer(withDefaults({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'relay'), logLevel: 'silent' }));
});
afterAll(async () => {
  await relay.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs one `parley` command and returns what it printed. */
async function parley(home: string, ...args: string[]): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    lines.push(parts.join(' '));
  });
  try {
    expect(await main(['--home', join(dir, home), '--relay', relay.url, ...args])).toBe(0);
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

    expect(await parley('alice', 'group', 'create', 'pair', 'bob')).toBe('created #pair');
    await parley('alice', 'send', 'pair', 'to the group');
    expect(await parley('bob', 'inbox')).toMatch(/#pair alice: to the group/);
    expect(await parley('bob', 'history', 'alice')).toMatch(/alice: hello from the terminal/);
    expect(await parley('alice', 'history', 'bob')).toMatch(/me: hello from the terminal {2}\((delivered|read)\)/);
  });
});
