/**
 * One process per home (src/cli/device-socket.ts): the socket is the lock;
 * a live holder runs forwarded commands and streams their output; a busy
 * holder says so; a socket left by a dead process is taken over; a hostile
 * or oversized request is dropped without disturbing the holder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_REQUEST_BYTES, type Out, forward, socketPath, tryLock } from '../src/cli/device-socket.ts';

const dir = mkdtempSync(join(tmpdir(), 'pds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function collect(): Out & { lines: string[] } {
  const lines: string[] = [];
  return { lines, print: (t) => lines.push(`out:${t}`), error: (t) => lines.push(`err:${t}`) };
}

describe('the home lock socket', () => {
  it('one holder; a second is refused; forwarded commands run in the holder, one at a time', async () => {
    const first = await tryLock(dir);
    expect(first).not.toBeNull();
    expect(await tryLock(dir)).toBeNull();

    // Holding for a one-shot command: others hear "busy".
    first?.serve(
      () => 'busy',
      () => 'send',
    );
    expect(await forward(dir, { argv: ['id'], cwd: '/' }, collect())).toEqual({ busy: 'send' });

    // Holding for a chat: the command runs here and its lines go back.
    const seen: string[][] = [];
    first?.serve(
      async (request, out) => {
        seen.push([...request.argv]);
        out.print(`ran ${request.argv.join(' ')} in ${request.cwd}`);
        out.error('a warning');
        return 7;
      },
      () => 'chat',
    );
    const out = collect();
    const [a, b] = await Promise.all([
      forward(dir, { argv: ['send', 'bob', 'hi'], cwd: '/tmp' }, out),
      forward(dir, { argv: ['contacts'], cwd: '/tmp' }, collect()),
    ]);
    expect([a, b]).toEqual([7, 7]);
    expect(out.lines).toEqual(['out:ran send bob hi in /tmp', 'err:a warning']);
    expect(seen).toHaveLength(2);

    await first?.release();
    expect(await forward(dir, { argv: ['id'], cwd: '/' }, collect())).toBe('gone');
  });

  it('a socket left by a dead process is taken over', async () => {
    const home = mkdtempSync(join(dir, 'stale-'));
    // A listener that is closed without removing its file (as a killed process leaves it).
    const server = createServer();
    await new Promise<void>((r) => server.listen(socketPath(home), r));
    const unlinkless = server as unknown as { _handle: { close(): void } | null };
    unlinkless._handle?.close();
    unlinkless._handle = null;
    const lock = await tryLock(home);
    expect(lock).not.toBeNull();
    await lock?.release();
  });

  it('garbage and oversized requests are dropped; the holder keeps serving', async () => {
    const home = mkdtempSync(join(dir, 'hostile-'));
    const lock = await tryLock(home);
    let runs = 0;
    lock?.serve(
      async () => {
        runs++;
        return 0;
      },
      () => 'chat',
    );
    const send = (payload: string | Buffer) =>
      new Promise<void>((resolve) => {
        const s = connect(socketPath(home));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.on('connect', () => s.end(payload));
      });
    await send('not json\n');
    await send(`${JSON.stringify({ argv: [1, 2], cwd: '/' })}\n`);
    await send(Buffer.alloc(MAX_REQUEST_BYTES + 10, 0x61));
    expect(runs).toBe(0);
    expect(await forward(home, { argv: ['id'], cwd: '/' }, collect())).toBe(0);
    expect(runs).toBe(1);
    await lock?.release();
  });
});
